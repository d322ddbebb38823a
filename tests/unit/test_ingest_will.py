"""An agent's last-will is dated by its arrival, and stored once however often it is re-sent."""

from common import protocol
from server.live import LiveFleet
from server.ingest import Ingest
from server.inventory import Inventory

CONNECTED_MS = 1_790_000_000_000
NOW_S = 1_790_000_600.0  # ten minutes after the agent connected


def ingest():
    lines = []
    return Ingest(Inventory(), LiveFleet(Inventory()), lines.append, clock=lambda: NOW_S), lines


def agent_status(state, ts, will=False):
    msg = protocol.AgentStatus(v=1, ts=ts, agent="pi-1", state=state, will=will)
    return protocol.agent_topic("pi-1"), protocol.encode(msg)


def test_a_will_is_stored_at_its_arrival_not_at_the_connect_time_it_carries():
    ing, lines = ingest()
    ing.handle(*agent_status("online", CONNECTED_MS))
    ing.handle(*agent_status("offline", CONNECTED_MS, will=True))
    assert lines[-1].endswith(f" {int(NOW_S * 1000)}") and 'state="offline"' in lines[-1]
    assert ing.fleet.agents["pi-1"].state == "offline"


def test_a_retained_will_delivered_again_is_not_stored_twice():
    ing, lines = ingest()
    ing.handle(*agent_status("online", CONNECTED_MS))
    ing.handle(*agent_status("offline", CONNECTED_MS, will=True))
    ing.handle(*agent_status("offline", CONNECTED_MS, will=True))
    assert sum('state="offline"' in line for line in lines) == 1


def test_a_clean_offline_keeps_its_own_time():
    ing, lines = ingest()
    ing.handle(*agent_status("offline", CONNECTED_MS + 5))
    assert lines[-1].endswith(f" {CONNECTED_MS + 5}")

"""Ingest is the one place a user name becomes its pseudonym: before storing, showing or alerting."""

from common import protocol as p
from server.ingest import Ingest
from server.inventory import Inventory
from server.live import LiveFleet
from server.privacy import UserNames
from server.pseudonyms import Pseudonyms

NOW_MS = 1_790_000_000_000
PSEUDONYMS = Pseudonyms("0123456789abcdef0123456789abcdef")
ANNA = PSEUDONYMS.of("lab", "anna")


def run(shown="pseudonym", keep_raw=False):
    inventory = Inventory(sites={}, printers={})
    lines, heard = [], []
    ingest = Ingest(inventory, LiveFleet(inventory), lines.append, clock=lambda: NOW_MS / 1000,
                    users=UserNames(PSEUDONYMS, shown, keep_raw))
    ingest.listeners.append(lambda msg, tags, state: heard.append(getattr(msg, "user", None)))
    ingest.handle(p.printer_topic("lab", "p1", "telemetry"), p.encode(p.Telemetry(
        v=1, ts=NOW_MS, printer="p1", site="lab", seq=1, state="printing", user="anna", file="a.gcode")))
    ingest.handle(p.printer_topic("lab", "p1", "event"), p.encode(p.Event(
        v=1, ts=NOW_MS, printer="p1", site="lab", seq=2, kind="started", user="anna", file="a.gcode")))
    return lines, heard, ingest.fleet.snapshot()["printers"][0]["user"]


def test_points_hold_the_pseudonym_and_no_raw_name_by_default():
    lines, heard, shown = run()
    assert len(lines) == 2 and all(f'user="{ANNA}"' in line for line in lines)
    assert not any("anna" in line for line in lines)
    assert heard == [ANNA, ANNA] and shown == ANNA  # alert rules and the status page get the pseudonym


def test_raw_names_go_to_job_user_only_when_kept():
    lines, _, _ = run(keep_raw=True)
    raw = [line for line in lines if line.startswith("job_user")]
    assert len(raw) == 1 and 'user_name="anna"' in raw[0] and ",kind=started" in raw[0]
    assert all("anna" not in line for line in lines if not line.startswith("job_user"))


def test_hidden_shows_no_user_and_name_shows_the_name_but_stores_the_pseudonym():
    lines, heard, shown = run("hidden")
    assert shown is None and heard == [None, None] and f'user="{ANNA}"' in lines[0]
    lines, heard, shown = run("name")
    assert shown == "anna" and f'user="{ANNA}"' in lines[0]

"""Ingest is the one place a user name becomes its pseudonym: before storing, showing or alerting."""

from common import protocol as p
from server.ingest import Ingest
from server.inventory import Inventory, PrinterEntry, Site
from server.live import LiveFleet
from server.privacy import UserNames
from common.pseudonyms import Pseudonyms

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


def test_a_listed_printers_route_gives_what_its_first_message_gave_in_every_mode():
    """The first message of a listed printer's topic takes the full path, the next ones its route
    (pseudonym from memory, LiveFleet entry held): lines, listeners and the live view agree."""
    inventory = Inventory(sites={"lab": Site("Lab", "T")}, printers={"p1": PrinterEntry("lab")})
    for shown, expected in (("pseudonym", ANNA), ("hidden", None), ("name", "anna")):
        lines, heard, live = [], [], []
        fleet = LiveFleet(inventory)
        ingest = Ingest(inventory, fleet, lines.append, clock=lambda: NOW_MS / 1000, users=UserNames(PSEUDONYMS, shown))
        ingest.listeners.append(lambda msg, tags, state: heard.append((msg.user, state is fleet.printers["lab", "p1"])))
        for seq, state in ((1, "printing"), (2, "printing"), (3, "paused")):
            ingest.handle(p.printer_topic("lab", "p1", "telemetry"), p.encode(p.Telemetry(
                v=1, ts=NOW_MS + seq, printer="p1", site="lab", seq=seq, state=state, user="anna", file="a.gcode")))
            live.append({k: fleet.snapshot()["printers"][0][k] for k in ("user", "state", "since", "last_seen")})
        assert len(ingest._routes) == 1  # the second and third took the route
        assert [line.split(" ")[1].split(",user=")[1].split(",")[0] for line in lines] == [f'"{ANNA}"'] * 3
        assert heard == [(expected, True)] * 3
        assert live == [{"user": expected, "state": "printing", "since": NOW_MS + 1, "last_seen": NOW_MS + 1},
                        {"user": expected, "state": "printing", "since": NOW_MS + 1, "last_seen": NOW_MS + 2},
                        {"user": expected, "state": "paused", "since": NOW_MS + 3, "last_seen": NOW_MS + 3}]


def test_an_older_telemetry_on_the_route_leaves_the_live_view_as_it_was():
    inventory = Inventory(sites={"lab": Site("Lab", "T")}, printers={"p1": PrinterEntry("lab")})
    fleet = LiveFleet(inventory)
    ingest = Ingest(inventory, fleet, [].append, clock=lambda: NOW_MS / 1000, users=UserNames(PSEUDONYMS))
    for seq, ts, state in ((1, NOW_MS, "printing"), (2, NOW_MS + 10, "paused"), (3, NOW_MS + 5, "idle")):
        ingest.handle(p.printer_topic("lab", "p1", "telemetry"), p.encode(p.Telemetry(
            v=1, ts=ts, printer="p1", site="lab", seq=seq, state=state)))
    entry = fleet.printers["lab", "p1"]
    assert (entry.state, entry.last_seen, entry.since) == ("paused", NOW_MS + 10, NOW_MS + 10)


def _holders_of(needle: str) -> list[str]:
    """Containers the garbage collector tracks (caches, dicts, tuples, lists, objects' __dict__)
    that hold a string containing ``needle``."""
    import gc

    def strings(obj):
        if isinstance(obj, dict):
            return [*obj.keys(), *obj.values()]
        if isinstance(obj, (list, tuple, set, frozenset)):
            return obj
        return ()

    return [type(obj).__name__ for obj in gc.get_objects()
            if any(isinstance(s, str) and needle in s for s in strings(obj))]


def test_no_raw_user_name_stays_in_the_collectors_memory_after_its_messages():
    """docs/privacy.md: the raw name is in memory only while one message is handled."""
    import secrets

    token = secrets.token_hex(8)  # made now, so no code object's constants hold it
    payloads = [p.encode(p.Telemetry(v=1, ts=NOW_MS + n, printer="p1", site="lab", seq=n, state="printing",
                                     user="anna-" + token, file="a.gcode")) for n in range(3)]
    inventory = Inventory(sites={"lab": Site("Lab", "T")}, printers={"p1": PrinterEntry("lab")})
    ingest = Ingest(inventory, LiveFleet(inventory), [].append, clock=lambda: NOW_MS / 1000,
                    users=UserNames(Pseudonyms("0123456789abcdef0123456789abcdef")))
    # Positive control: while a message is decoded, the raw name is found where it is held.
    decoded = p.decode(p.parse_topic(p.printer_topic("lab", "p1", "telemetry")), payloads[0], NOW_MS)
    assert _holders_of(token) == [] and decoded.user.endswith(token)
    held = [decoded.user]
    assert _holders_of(token) == ["list"]
    del held, decoded
    for payload in payloads:
        ingest.handle(p.printer_topic("lab", "p1", "telemetry"), payload)
    assert ingest.fleet.snapshot()["printers"][0]["user"].startswith("u-")
    assert _holders_of(token) == []


def test_a_pseudonym_an_agent_made_is_stored_as_it_came_and_gives_no_raw_name_to_keep():
    """Agents pseudonymise at the source (agent/sharing.py) with the collector's secret: the
    collector must not hash the pseudonym again, and has no raw name for job_user."""
    inventory = Inventory(sites={}, printers={})
    lines = []
    ingest = Ingest(inventory, LiveFleet(inventory), lines.append, clock=lambda: NOW_MS / 1000,
                    users=UserNames(PSEUDONYMS, "pseudonym", keep_raw=True))
    ingest.handle(p.printer_topic("lab", "p1", "event"), p.encode(p.Event(
        v=1, ts=NOW_MS, printer="p1", site="lab", seq=1, kind="started", user=ANNA, file="a.gcode")))
    assert len(lines) == 1 and f'user="{ANNA}"' in lines[0]


def test_an_agent_pseudonymising_with_another_secret_is_warned_about_once(caplog):
    inventory = Inventory(sites={}, printers={})
    ingest = Ingest(inventory, LiveFleet(inventory), lambda line: None, clock=lambda: NOW_MS / 1000,
                    users=UserNames(PSEUDONYMS))

    def online(key_id, seq=0):
        ingest.handle(p.agent_topic("pi-1"), p.encode(p.AgentStatus(v=1, ts=NOW_MS + seq, agent="pi-1",
                                                                     state="online", key_id=key_id)))

    online(PSEUDONYMS.key_id())
    assert not caplog.records  # its own secret: nothing to say
    other = Pseudonyms("another-secret-0123456789abcdef").key_id()
    online(other, 1)
    online(other, 2)
    warnings = [r.getMessage() for r in caplog.records if "another secret" in r.getMessage()]
    assert len(warnings) == 1 and other in warnings[0] and "pi-1" in warnings[0]

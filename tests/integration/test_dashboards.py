"""Every query in the shipped dashboards, run against data that came through the real pipeline.

Two OctoPrint virtual printers at two sites (two counties, two organisations, one with regex
metacharacters in its name) -> two agents -> Mosquitto -> collector (with its alerts engine) ->
InfluxDB (authentication on). The printers finish one job, fail one and cancel one, and one is still printing when
the queries run. Then each template-variable, panel and annotation query in dashboards/json/ is
expanded the way Grafana expands it and must return rows with every column it selects, each
non-null somewhere: a panel added later without data behind it fails here.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from dashboards import macros
from server.grafana import datasource
from server.tenancy import NETWORK_READER, org_database, org_id, org_reader
from devkit.pipeline import (
    DB, RunningCollector, agent_config_for, collector_config, start_agent, wait_for, write_inventory,
)
from devkit.servers import InfluxDB, Mosquitto, OctoPrint, make_gcode

pytestmark = pytest.mark.integration

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "dashboards" / "json"
INTERVAL = 0.5
SITES = {
    "north-lab": ("Luleå tekniska universitet (LTU)", "Norrbotten"),
    "south-lab": ("Umeå universitet", "Västerbotten"),
}
PRINTERS = {"vp-1": "north-lab", "vp-2": "south-lab"}
# vp-1's two jobs are for a small and a large company (file-name tags): the funder's customer panels.
CUSTOMERS = """
[customers.acme]
name = "Acme Verktyg AB"
kind = "company"
size = "small_medium"
county = "Norrbotten"

[customers.bigco]
name = "Bigco Gjuteri AB"
kind = "company"
size = "large"
county = "Västerbotten"
"""
CUBE, DOOMED = "cube[acme].gcode", "doomed[bigco].gcode"
# The maintenance panel: vp-1 is due after its jobs, vp-2 is not (docs/maintenance.md).
MAINTENANCE = """
[maintenance.printers.vp-1]
service_jobs = 1

[maintenance.printers.vp-2]
service_hours = 1000
"""
PANEL_TYPES_WITHOUT_QUERIES = {"row", "text", "dashlist", "news"}
ADMIN = ("admin", "admin-pw-dashboards")


# -- the data ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """InfluxDB after a done, a failed and a cancelled job, alerts, and one print still running."""
    tmp = tmp_path_factory.mktemp("dashboards")
    servers, agents = [], []
    try:
        broker = Mosquitto(tmp / "mosquitto").start()
        influx = InfluxDB(tmp / "influxdb", admin=ADMIN).start()  # authentication on
        servers += [broker, influx]
        first, second = OctoPrint(tmp / "op1").start(), OctoPrint(tmp / "op2").start()
        servers += [first, second]
        inventory = write_inventory(tmp / "fleet.toml", PRINTERS, SITES)
        inventory.write_text(inventory.read_text() + CUSTOMERS + MAINTENANCE)
        (tmp / "influx-password").write_text(ADMIN[1] + "\n")
        cfg = collector_config(tmp, broker, influx, inventory, username=ADMIN[0],
                               password_file=str(tmp / "influx-password"))
        cfg.alerts = {"tick_interval": 0.2, "rules": {"printer_down": {"grace": 1},
                                                      "service_due": {"check_interval": 0.3}}}
        cfg.rollups.interval = cfg.rollups.current_every = 0.3
        collector = RunningCollector(cfg)
        collector.wait_connected()
        for n, (op, printer) in enumerate(((first, "vp-1"), (second, "vp-2")), start=1):
            agents.append(start_agent(agent_config_for(
                tmp, broker, [(printer, op.url, op.api_key)], site=PRINTERS[printer],
                interval=INTERVAL, timeout=INTERVAL, agent_id=f"pi-{n}")))
        _run_jobs(influx, first, second)
        _wait_for_a_rollup(collector.collector.rollups)
        started = time.time()
        yield influx, started
    finally:
        for agent in agents:
            agent.stop()
        if "collector" in locals():
            collector.stop()
        for server in reversed(servers):
            server.stop()


def _wait_for_a_rollup(job) -> None:
    """The utilisation panels read the rollups: wait for a run that began after the data."""
    after = time.time() * 1000
    wait_for(lambda: (job.last_ok or 0) > after, 30, "a rollup run after the jobs", interval=0.1)


def _rows(influx, q):
    return influx.query(q, db=DB)


def _wait_rows(influx, q, what, timeout=60):
    return wait_for(lambda: _rows(influx, q), timeout, what, interval=0.2)


def _upload_analysed(op: OctoPrint, files: dict[str, int]) -> None:
    """Upload without printing and wait for OctoPrint's analysis (it pauses while printing),
    so jobs carry the filament estimate a sliced file would."""
    for name, lines in files.items():
        reply = op.api("POST", "/api/files/local", files={"file": (name, make_gcode(lines).encode())})
        assert reply.status_code == 201, reply.text

    def analysed() -> bool:
        for name in files:
            info = op.api("GET", f"/api/files/local/{name}").json()
            if not (info.get("gcodeAnalysis") or {}).get("filament"):
                return False
        return True
    wait_for(analysed, 30, "OctoPrint's file analysis", interval=0.1)


def _print(op: OctoPrint, name: str) -> None:
    reply = op.api("POST", f"/api/files/local/{name}", json={"command": "select", "print": True})
    assert reply.status_code == 204, reply.text
    op.wait_for_job(lambda job: job["job"]["file"]["name"] == name and job["state"] != "Operational",
                    timeout=10, what=f"printing {name}")


def _run_jobs(influx, first: OctoPrint, second: OctoPrint) -> None:
    _upload_analysed(first, {CUBE: 300, DOOMED: 1500})
    _upload_analysed(second, {"long.gcode": 1500, "running.gcode": 3000})
    _wait_rows(influx, "SELECT * FROM state WHERE printer = 'vp-2'", "both printers' first state")
    _print(first, CUBE)                                            # vp-1: done
    _print(second, "long.gcode")                                   # vp-2: cancelled
    _wait_rows(influx, "SELECT * FROM job WHERE kind = 'started' AND printer = 'vp-2'", "vp-2 started")
    _wait_rows(influx, "SELECT * FROM telemetry WHERE printer = 'vp-2' AND progress > 0", "vp-2 under way")
    second.cancel()
    _wait_rows(influx, "SELECT * FROM job WHERE kind = 'done'", "the done job")
    _print(first, DOOMED)                                          # vp-1: failed
    _wait_rows(influx, f"SELECT * FROM job WHERE kind = 'started' AND file = '{DOOMED}'", "doomed started")
    first.command("!!DEBUG:send Error:nozzle fell off")
    _wait_rows(influx, "SELECT * FROM job WHERE kind = 'failed'", "the failed job")
    _wait_rows(influx, "SELECT * FROM job WHERE kind = 'cancelled'", "the cancelled job")
    second.wait_for_state("Operational")
    _print(second, "running.gcode")                                # vp-2: still printing
    _wait_rows(influx, "SELECT * FROM telemetry WHERE file = 'running.gcode' AND progress > 0",
               "progress of the running print")
    # The alerts engine writes "firing" for the failed print (and for the printer in error).
    _wait_rows(influx, "SELECT * FROM alert WHERE state = 'firing'", "an alert point", timeout=30)
    _wait_rows(influx, "SELECT * FROM \"autogen\".\"service_counters\" WHERE \"due\" != 'no'",
               "the maintenance check's counters of vp-1, due", timeout=30)
    # A few samples while vp-2 prints, so per-interval panels have several.
    wait_for(lambda: len(_rows(influx, "SELECT progress FROM telemetry WHERE file = 'running.gcode' AND progress > 0"))
             >= 4, 30, "four samples of the running print", interval=0.2)


# -- expanding queries the way Grafana does ------------------------------------------------------

def _dashboards() -> dict[str, dict]:
    files = sorted(DASHBOARD_DIR.rglob("*.json"))
    assert files, f"no dashboards in {DASHBOARD_DIR}"
    return {f.relative_to(DASHBOARD_DIR).as_posix(): json.loads(f.read_text()) for f in files}


def _range(started: float, time_from: str | None) -> tuple[int, int]:
    """From before the data to a minute from now; without a panel's own range, from the hour the
    data began in: rollup points stand at the start of their hour."""
    to_ms = int(time.time() * 1000) + 60_000
    begin = int((started - 600) * 1000)
    span = macros.parse_duration_ms(time_from) if time_from else to_ms - (begin - begin % 3_600_000)
    return to_ms - span, to_ms


def _variable_values(influx, board: dict, started: float, chosen: dict[str, str]) -> dict[str, str]:
    from_ms, to_ms = _range(started, None)
    try:
        return macros.variable_values(board, lambda q: _rows(influx, q), from_ms, to_ms, chosen)
    except ValueError as exc:
        raise AssertionError(str(exc)) from None


def _split_top_level(text: str, sep: str = ",") -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == sep and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [p.strip() for p in parts + [current] if p.strip()]


def _outer_clause(query: str, start: str, end: str) -> str:
    """The text between top-level keywords ``start`` and ``end`` (subqueries skipped)."""
    depth, i, found = 0, 0, None
    upper = query.upper()
    while i < len(query):
        depth += query[i] == "("
        depth -= query[i] == ")"
        if depth == 0:
            if found is None and upper.startswith(start, i):
                found = i + len(start)
            elif found is not None and upper.startswith(end, i):
                return query[found:i]
        i += 1
    return query[found:] if found is not None else ""


def expected_columns(query: str) -> set[str]:
    """Column names a query must return: its outer SELECT items and its GROUP BY tags."""
    columns = set()
    for item in _split_top_level(_outer_clause(query, "SELECT ", " FROM ")):
        alias = re.search(r'\sAS\s+"([^"]+)"\s*$', item, re.I)
        func = re.match(r"(\w+)\(", item)
        columns.add(alias.group(1) if alias else func.group(1) if func else item.strip('"'))
    # Tags of the top-level GROUP BY come back as columns too (time(...) and fill(...) do not).
    group_by = _outer_clause(query, " GROUP BY ", "\0")
    columns |= set(re.findall(r'"([^"]+)"', group_by))
    return columns


def _check(influx, where: str, query: str, extra_columns: set[str] = frozenset(),
           strict: bool = True) -> int:
    """Rows, with every expected column; ``strict``: each column non-null in some row."""
    rows = _rows(influx, query)
    assert rows, f"{where}: no rows for\n{query}"
    for column in expected_columns(query) | extra_columns:
        assert all(column in row for row in rows), f"{where}: no column {column!r} in {rows[0]}\n{query}"
        if strict:
            assert any(row[column] is not None for row in rows), f"{where}: {column!r} is always null\n{query}"
    return len(rows)


def _expanded(influx, board: dict, started: float, chosen: dict[str, str]):
    """(where, query, extra columns wanted) for every panel and annotation query of ``board``,
    expanded as Grafana expands it (variables from ``influx``'s data)."""
    variables = _variable_values(influx, board, started, chosen)
    for panel in macros.panels(board):
        where = f"{board['title']} / {panel.get('title')}"
        if panel["type"] in PANEL_TYPES_WITHOUT_QUERIES:
            continue
        assert panel.get("targets"), f"{where}: a data panel without queries"
        from_ms, to_ms = _range(started, panel.get("timeFrom"))
        for target in panel["targets"]:
            query = macros.substitute(target["query"], from_ms, to_ms, variables,
                                      max_data_points=panel.get("maxDataPoints") or 1000)
            yield f"{where} [{target['refId']}]", query, frozenset()
    for annotation in board.get("annotations", {}).get("list", []):
        target = annotation["target"]
        from_ms, to_ms = _range(started, None)
        query = macros.substitute(target["query"], from_ms, to_ms, variables)
        wanted = {target["textColumn"], *filter(None, target.get("tagsColumn", "").split(","))}
        yield f"{board['title']} / annotation {annotation['name']}", query, frozenset(wanted)


def _run_dashboard(influx, board: dict, started: float, chosen: dict[str, str]) -> int:
    # With everything selected the data has a value for every column; one printer (in error
    # after its failed job) need not have, e.g. no progress.
    strict = not chosen
    checked = 0
    for where, query, wanted in _expanded(influx, board, started, chosen):
        _check(influx, where, query, wanted, strict)
        checked += 1
    return checked


# -- the tests ---------------------------------------------------------------------------------

def test_every_dashboard_query_returns_rows_of_its_shape_with_all_selected(filled):
    influx, started = filled
    boards = _dashboards()
    assert len(boards) >= 6
    counts = {name: _run_dashboard(influx, board, started, {}) for name, board in boards.items()}
    assert all(counts.values()), counts


def test_every_dashboard_query_returns_rows_for_one_chosen_printer(filled):
    """A single selection (no regex alternation), in a county whose organisation needs escaping."""
    influx, started = filled
    chosen = {"county": "Norrbotten", "organisation": SITES["north-lab"][0], "site": "north-lab",
              "printer": "vp-1"}
    for board in _dashboards().values():
        _run_dashboard(influx, board, started, chosen)


def test_filters_narrow_to_the_chosen_site(filled):
    influx, started = filled
    board = _dashboards()["organisation/fleet-overview.json"]
    variables = _variable_values(influx, board, started, {"site": "south-lab"})
    panel = next(p for p in board["panels"] if p["title"] == "Printers now")
    from_ms, to_ms = _range(started, None)
    rows = _rows(influx, macros.substitute(panel["targets"][0]["query"], from_ms, to_ms, variables))
    assert [(r["printer"], r["state"]) for r in rows] == [("vp-2", "printing")]
    assert rows[0]["file"] == "running.gcode" and 0 < rows[0]["progress"] < 100


def test_utilisation_counts_the_printing_time_of_the_finished_job(filled):
    influx, started = filled
    board = _dashboards()["network/regional-utilisation.json"]
    variables = _variable_values(influx, board, started, {})
    panel = next(p for p in board["panels"] if p["title"] == "Utilisation by site")
    from_ms, to_ms = _range(started, None)
    hours = {r["site"]: r["printing_h"] for r in _rows(
        influx, macros.substitute(panel["targets"][0]["query"], from_ms, to_ms, variables))}
    done = _rows(influx, "SELECT \"duration\" FROM job WHERE kind = 'done'")[0]["duration"]
    # north-lab printed the done job and part of the failed one: at least the done job's time.
    assert hours["north-lab"] * 3600 >= done - 2 * INTERVAL
    assert 0 < hours["south-lab"] * 3600 < 600


def test_a_panel_added_without_data_behind_it_fails_the_check(filled):
    influx, started = filled
    board = _dashboards()["organisation/printer-detail.json"]
    template = next(p for p in board["panels"] if p["type"] == "timeseries")
    for query in ('SELECT mean("chamber_actual") FROM "telemetry" WHERE $timeFilter GROUP BY time($__interval)',
                  'SELECT last("state") AS "state", "nozzle_wobble" FROM "telemetry" WHERE $timeFilter',
                  'SELECT count("state") FROM "alerts" WHERE $timeFilter'):
        broken = json.loads(json.dumps(board))
        broken["panels"].append({**template, "id": 99, "title": "New panel",
                                 "targets": [{**template["targets"][0], "query": query}]})
        with pytest.raises(AssertionError, match="New panel"):
            _run_dashboard(influx, broken, started, {})


# -- each organisation's dashboards, as its own InfluxDB reader ---------------------------------
#
# The collector's routing of each organisation's detail into a database of its own is built
# beside this (issue 22); until then this fixture makes that layout itself from what the
# pipeline wrote: per organisation a database named by server.tenancy, holding the points of its
# sites (and of its agents), copied by SELECT INTO as the admin, and a reader that may read it
# and nothing else; the network reader reads the network database.

AGENT_SITES = {"pi-1": "north-lab", "pi-2": "south-lab"}
ORG_DASHBOARDS = ("organisation/fleet-overview.json", "organisation/printer-detail.json",
                  "organisation/regional-utilisation.json", "organisation/alerts-events.json")
NETWORK_DASHBOARDS = ("network/regional-utilisation.json", "network/funder.json")


class _Reader:
    """Queries as one InfluxDB user on one database, as that user's Grafana data source does."""

    def __init__(self, influx, database: str, user: str, password: str) -> None:
        self.influx, self.database, self.auth = influx, database, (user, password)

    def query(self, q: str, db: str | None = None) -> list[dict]:
        return self.influx.query(q, db=self.database, auth=self.auth)


@pytest.fixture(scope="module")
def tenants(filled):
    """org id -> (its Reader, its organisation's name); "network" -> the network's Reader."""
    influx, _ = filled
    readers = {}
    for site, (organisation, _county) in SITES.items():
        org = org_id(organisation)
        database, user = org_database(DB, org), org_reader(org)
        influx.query(f'CREATE DATABASE "{database}"')
        influx.query(f'CREATE RETENTION POLICY "rollups" ON "{database}" DURATION INF REPLICATION 1')
        for rp in ("autogen", "rollups"):
            influx.query(f'SELECT * INTO "{database}"."{rp}".:MEASUREMENT FROM "{DB}"."{rp}"./.*/ '
                         f"WHERE \"organisation\" = '{organisation}' GROUP BY *", db=DB)
        for agent in (a for a, s in AGENT_SITES.items() if s == site):
            influx.query(f'SELECT * INTO "{database}"."autogen"."agent" FROM "{DB}"."autogen"."agent" '
                         f"WHERE \"agent\" = '{agent}' GROUP BY *", db=DB)
        password = f"pw-{user}"
        influx.query(f"CREATE USER \"{user}\" WITH PASSWORD '{password}'")
        influx.query(f'GRANT READ ON "{database}" TO "{user}"')
        readers[org] = (_Reader(influx, database, user, password), organisation)
    influx.query(f"CREATE USER \"{NETWORK_READER}\" WITH PASSWORD 'pw-network'")
    influx.query(f'GRANT READ ON "{DB}" TO "{NETWORK_READER}"')
    readers["network"] = _Reader(influx, DB, NETWORK_READER, "pw-network")
    return readers


def _organisations(tenants) -> dict:
    return {org: value for org, value in tenants.items() if org != "network"}


def test_the_provisioned_data_sources_name_the_databases_and_readers_the_queries_run_as(tenants):
    """What each organisation's queries run as below is what its generated data source says."""
    for org, (reader, _) in _organisations(tenants).items():
        source = datasource.definition("http://influxdb:8086", DB, org, "x")
        assert (source["user"], source["jsonData"]["dbName"]) == (reader.auth[0], reader.database)
    network = datasource.definition("http://influxdb:8086", DB, None, "x")
    assert (network["user"], network["jsonData"]["dbName"]) == (NETWORK_READER, DB)


def test_every_query_of_the_organisation_dashboards_runs_as_each_organisation_and_shows_only_its_own(
        filled, tenants):
    """Each organisation's reader runs every panel, variable and annotation query of the
    organisation dashboards on its own database: none is refused, every one returns rows of its
    shape for some organisation (each organisation has only part of the jobs), and no row names
    another organisation's organisation, site, printer or file."""
    _, started = filled
    boards = _dashboards()
    files = {"north-lab": {CUBE, DOOMED}, "south-lab": {"long.gcode", "running.gcode"}}
    for name in ORG_DASHBOARDS:
        results: dict[str, list[dict]] = {}
        for org, (reader, organisation) in _organisations(tenants).items():
            site = next(s for s, (o, _) in SITES.items() if o == organisation)
            others = [s for s in SITES if s != site]
            foreign = {*others, *(p for p, s in PRINTERS.items() if s != site),
                       *(f for s in others for f in files[s]), *(SITES[s][0] for s in others)}
            for where, query, wanted in _expanded(reader, boards[name], started, {}):
                rows = reader.query(query)  # raises if the reader were refused
                shown = {str(v) for row in rows for v in row.values()}
                assert not shown & foreign, f"{org} sees {shown & foreign} in {where}"
                results.setdefault(where, []).extend(rows)
                results[where + " columns"] = expected_columns(query) | wanted
        for where in [w for w in results if not w.endswith(" columns")]:
            rows = results[where]
            assert rows, f"{where}: no rows for any organisation"
            for column in results[where + " columns"]:
                assert any(row.get(column) is not None for row in rows), f"{where}: {column!r} always null"


def test_every_query_of_the_network_dashboards_runs_as_the_network_reader(filled, tenants):
    _, started = filled
    boards = _dashboards()
    for name in NETWORK_DASHBOARDS:
        assert _run_dashboard(tenants["network"], boards[name], started, {}) > 0


def test_an_organisations_credentials_are_refused_every_other_database(tenants):
    (a, (reader_a, _)), (b, (reader_b, _)) = _organisations(tenants).items()
    assert reader_a.query('SELECT count(*) FROM "autogen"."job"')  # its own: allowed
    for reader, other in ((reader_a, reader_b), (reader_b, reader_a)):
        for database in (other.database, DB):
            with pytest.raises(RuntimeError, match="not authorized"):
                reader.influx.query('SELECT count(*) FROM "autogen"."job"', db=database, auth=reader.auth)
    with pytest.raises(RuntimeError, match="not authorized"):
        tenants["network"].influx.query('SELECT * FROM "telemetry" LIMIT 1', db=reader_a.database,
                                        auth=tenants["network"].auth)

"""User names through the real broker, collector and InfluxDB: pseudonyms everywhere by default.

The scripted agents send real-looking account names. With a default configuration none of them
may come out anywhere: the status page's JSON, the alert API and notifications, InfluxDB, the
dashboards' queries, the collector's log, and every report format. The same account keeps its
pseudonym across collector runs and reports with the same secret, and gets another with another
secret. Purging raw names (kept with ``raw_user_days``, and left by an older collector in old
points) changes no report figure.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from common import protocol
from dashboards import macros
from devkit.pipeline import RunningCollector, collector_config, wait_for
from devkit.receivers import WebhookReceiver
from devkit.servers import InfluxDB, Mosquitto
from server import lineproto, tokens
from server.__main__ import main as server_main
from server.inventory import Tags
from common.pseudonyms import Pseudonyms, is_pseudonym
from tests.integration.scripted_fleet import Q3_START, Job, Printer, Session, publish, send_order

pytestmark = pytest.mark.integration

NAMES = ("Annika.Svensson", "bertil.berg", "Cecilia Carlsson")
SITE = "lab"
DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "dashboards" / "json"
INVENTORY = """
[sites.lab]
name = "Örebro universitet, Makerspace"
organisation = "Örebro universitet"
county = "Örebro"

[printers.p1]
site = "lab"

[printers.p2]
site = "lab"

[customers.kilsberg]
name = "Kilsbergens Verktyg AB"
kind = "company"
size = "small_medium"
county = "Örebro"

[[attribution.accounts]]
site = "lab"
user = "Annika.Svensson"
customer = "kilsberg"
"""


def q3_script(printer: str = "p1", user: str = NAMES[0], day: str = "07-10") -> list[tuple[str, bytes]]:
    """One finished job by ``user`` in 2026-Q3."""
    p = Printer(SITE, printer, "pi-lab", [Session(f"{day} 00:00", f"{day} 23:00", [
        (f"{day} 00:00", "idle"), (f"{day} 08:00", "printing"), (f"{day} 10:00", "idle")], [
        Job("started", f"{day} 08:00", user), Job("done", f"{day} 10:00", user, f"{day} 08:00", 1_000.0)])])
    return send_order(p)


def live_script() -> list[tuple[str, bytes]]:
    """Now: p2 fails a job (an alert) and then prints for the third account (the status page)."""
    now = int(time.time() * 1000)
    topic = lambda channel: protocol.printer_topic(SITE, "p2", channel)  # noqa: E731
    msgs = [
        ("status", protocol.Status(v=1, ts=now - 60_000, printer="p2", site=SITE, seq=1, state="printing", agent="pi")),
        ("event", protocol.Event(v=1, ts=now - 59_000, printer="p2", site=SITE, seq=2, kind="started",
                                 user=NAMES[1], file="bracket.gcode")),
        ("status", protocol.Status(v=1, ts=now - 30_000, printer="p2", site=SITE, seq=3, state="error",
                                   prev_state="printing", error="nozzle clogged", agent="pi")),
        ("event", protocol.Event(v=1, ts=now - 30_000, printer="p2", site=SITE, seq=4, kind="failed",
                                 user=NAMES[1], file="bracket.gcode", error="nozzle clogged",
                                 job_started=now - 59_000)),
        ("status", protocol.Status(v=1, ts=now - 10_000, printer="p2", site=SITE, seq=5, state="printing",
                                   prev_state="error", agent="pi")),
        ("event", protocol.Event(v=1, ts=now - 10_000, printer="p2", site=SITE, seq=6, kind="started",
                                 user=NAMES[2], file="gear.gcode")),
        ("telemetry", protocol.Telemetry(v=1, ts=now - 5_000, printer="p2", site=SITE, seq=7, state="printing",
                                         user=NAMES[2], file="gear.gcode", progress=12.5)),
    ]
    return [(topic(channel), protocol.encode(msg)) for channel, msg in msgs]


class Captured(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("privacy")
    with Mosquitto(tmp / "mosquitto") as broker, InfluxDB(tmp / "influxdb") as influx:
        hook = WebhookReceiver()
        try:
            yield tmp, broker, influx, hook
        finally:
            hook.close()


class Site:
    """A collector config with its own database, and what it takes to run it and report."""

    def __init__(self, servers, name: str, **privacy):
        self.tmp, self.broker, self.influx, self.hook = servers
        self.dir = self.tmp / name
        self.dir.mkdir()
        self.db = name
        inventory = self.dir / "fleet.toml"
        inventory.write_text(INVENTORY)
        self.cfg = collector_config(self.dir, self.broker, self.influx, inventory, database=name)
        self.cfg.privacy = type(self.cfg.privacy)(**privacy)
        self.cfg.alerts = {"receivers": {"hook": {"type": "webhook", "url": self.hook.url, "retry_min": 0.2}},
                           "tick_interval": 0.2, "cooldown": 0}
        self.config = self.dir / "server.toml"
        lines = [f'inventory = "{inventory}"', f'state_dir = "{self.cfg.state_dir}"', "[influx]",
                 f'url = "{self.influx.url}"', f'database = "{name}"', f'spool_dir = "{self.dir / "spool"}"']
        lines += ["[privacy]"] + [f"{k} = {json.dumps(v)}" for k, v in privacy.items()]
        self.config.write_text("\n".join(lines) + "\n")

    def run(self, items: list[tuple[str, bytes]], jobs: int, then=None):
        """A collector run that stores ``items``; ``then(collector)`` runs before it stops."""
        collector = RunningCollector(self.cfg)
        try:
            collector.wait_connected()
            publish(self.broker, items)
            wait_for(lambda: self.count("job") >= jobs, 30, f"{jobs} job events in {self.db}")
            return then(collector.collector) if then else None
        finally:
            collector.stop()

    def count(self, measurement: str, field_name: str = "seq") -> int:
        found = self.influx.query(f"SELECT count({field_name}) AS n FROM {measurement}", db=self.db)
        return found[0]["n"] if found else 0

    def report(self, out: str, *extra: str, formats: str = "xlsx,csv,pdf,summary") -> Path:
        path = self.dir / out
        assert server_main(["report", "-c", str(self.config), "--out", str(path), "--no-progress",
                            "--period", "2026-Q3", "--format", formats, "--lang", "en", *extra]) == 0
        return path

    def pseudonym(self, user: str) -> str:
        return self.cfg.privacy.pseudonyms(self.cfg.state_dir).of(SITE, user)


def report_text(folder: Path) -> str:
    """Everything the report files say: CSV, every part of each XLSX, the PDFs' text."""
    out = []
    for path in sorted(folder.iterdir()):
        if path.suffix == ".csv":
            out.append(path.read_text(encoding="utf-8-sig"))
        elif path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as z:
                out += [z.read(n).decode("utf-8", "replace") for n in z.namelist()]
        elif path.suffix == ".pdf":
            out.append(subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                                      check=True, timeout=60).stdout)
    return "\n".join(out)


def leaks(text: str) -> list[str]:
    lowered = text.lower()
    return [n for n in NAMES if n.lower() in lowered or n.split(".")[0].split()[0].lower() in lowered]


def get(url: str, token: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as reply:
        return reply.read().decode()


def dashboard_rows(influx, db: str) -> list[dict]:
    """Rows of every dashboard query that shows a user, over all of the data, all variables selected."""
    rows, low, high = [], Q3_START - 86_400_000, int(time.time() * 1000) + 60_000
    for path in sorted(DASHBOARD_DIR.rglob("*.json")):
        board, variables = json.loads(path.read_text()), {}
        for var in board.get("templating", {}).get("list", []):
            query = var["query"] if isinstance(var["query"], str) else var["query"]["query"]
            values = sorted({r["value"] for r in influx.query(macros.substitute(query, low, high, variables), db=db)})
            variables[var["name"]] = macros.format_variable(values or ["none"], True)
        for panel in _panels(board.get("panels", [])):
            for target in panel.get("targets", []):
                if '"user"' in target.get("query", ""):
                    rows += influx.query(macros.substitute(target["query"], low, high, variables), db=db)
    return rows


def _panels(panels):
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])


# --- a default configuration -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_site(servers):
    """A collector with no [privacy] settings at all: what every output shows by default."""
    site = Site(servers, "default")
    log, root = Captured(), logging.getLogger()
    level = root.level
    root.addHandler(log)
    root.setLevel(logging.DEBUG)  # everything the collector says, debug included
    try:
        items = q3_script() + live_script()
        sent = b"".join(payload for _, payload in items)
        assert all(n.encode() in sent for n in NAMES)  # the names did go in

        def outputs(c):
            api = f"http://127.0.0.1:{c.api.port}"
            token, _ = tokens.issue(tokens.path_for(site.cfg), "orebro-universitet")  # the site's own: in full
            wait_for(lambda: site.hook.of("print_failed", "firing"), 20, "the failed-print notification")
            wait_for(lambda: "gear.gcode" in get(api + "/api/fleet", token), 10, "the live job on /api/fleet")
            return {"fleet": get(api + "/api/fleet", token), "alerts": get(api + "/api/alerts", token),
                    "page": get(api + "/", token)}

        seen = site.run(items, jobs=5, then=outputs)
    finally:
        root.removeHandler(log)
        root.setLevel(level)
    seen["notifications"] = json.dumps(site.hook.notes)
    seen["log"] = "\n".join(log.lines)
    return site, seen


def test_status_page_json_shows_the_pseudonym_of_the_printing_user_and_no_name(default_site):
    site, seen = default_site
    fleet = json.loads(seen["fleet"])
    p2 = next(p for p in fleet["printers"] if p["printer"] == "p2")
    assert p2["user"] == site.pseudonym(NAMES[2]) and is_pseudonym(p2["user"])
    assert leaks(seen["fleet"]) == [] and leaks(seen["page"]) == []


def test_alert_notifications_and_the_alert_api_carry_no_user_name(default_site):
    site, seen = default_site
    notes = json.loads(seen["notifications"])
    assert any(n["rule"] == "print_failed" and "bracket.gcode" in n["text"] for n in notes)  # it was sent
    assert leaks(seen["notifications"]) == [] and leaks(seen["alerts"]) == []


def test_influxdb_and_every_dashboard_query_hold_pseudonyms_only(default_site):
    site, _ = default_site
    stored = [r["user"] for m in ("job", "telemetry")
              for r in site.influx.query(f'SELECT "user" FROM {m} WHERE "user" =~ /./', db=site.db)]
    assert stored and all(is_pseudonym(u) for u in stored)
    assert site.count("job_user", "user_name") == 0  # raw names are kept only with raw_user_days
    rows = [r for r in dashboard_rows(site.influx, site.db) if r.get("user")]
    assert rows and all(is_pseudonym(r["user"]) for r in rows)
    assert leaks(json.dumps(rows)) == []


def test_the_collectors_log_names_no_user(default_site):
    _, seen = default_site
    assert "HTTP API on" in seen["log"] and "p2" in seen["log"]  # it was listening, and logged about p2
    assert leaks(seen["log"]) == []


def test_no_report_format_holds_a_user_name_and_the_job_list_holds_pseudonyms(default_site):
    site, _ = default_site
    text = report_text(site.report("out"))
    assert site.pseudonym(NAMES[0]) in text  # the user column is filled...
    assert leaks(text) == []  # ...with no name in any CSV, XLSX part or PDF
    customers = (site.dir / "out" / "printfarm-report-2026-Q3-en-customers.csv").read_text(encoding="utf-8-sig")
    assert "Kilsbergens Verktyg AB" in customers  # accounts configured by name still attribute


def test_the_same_account_keeps_its_pseudonym_across_runs_and_reports_and_another_secret_changes_it(servers,
                                                                                                   default_site):
    site, seen = default_site
    first = json.loads(seen["fleet"])
    site.run(q3_script("p1", NAMES[0], "08-12"), jobs=7)  # a second collector run, same config
    stored = {r["user"] for r in site.influx.query('SELECT "user" FROM job WHERE printer = \'p1\'', db=site.db)}
    assert stored == {site.pseudonym(NAMES[0])}
    jobs = lambda folder: (folder / "printfarm-report-2026-Q3-en-jobs.csv").read_text(encoding="utf-8-sig")  # noqa: E731
    one, two = jobs(site.report("again-1", formats="csv")), jobs(site.report("again-2", formats="csv"))
    assert one == two and one.count(site.pseudonym(NAMES[0])) == 2  # her two jobs in the quarter
    assert any(p["user"] == site.pseudonym(NAMES[2]) for p in first["printers"])

    secret = site.dir / "other-secret"
    secret.write_text("another secret, at least sixteen bytes\n")
    other = Site(servers, "other", secret_file=str(secret))
    other.run(q3_script(), jobs=2)
    other_stored = {r["user"] for r in other.influx.query('SELECT "user" FROM job', db=other.db)}
    assert other_stored == {other.pseudonym(NAMES[0])} and other_stored != stored
    assert Pseudonyms(secret.read_text().strip()).of(SITE, NAMES[0]) in other_stored


def test_a_report_made_with_another_secret_than_the_collectors_says_so(servers, default_site):
    site, _ = default_site
    wrong = site.dir / "wrong-secret"
    wrong.write_text("not the collector's secret, long enough\n")
    config = site.dir / "wrong.toml"
    config.write_text(site.config.read_text() + f'secret_file = "{wrong}"\n')  # appended to [privacy]
    out = site.dir / "wrong-out"
    assert server_main(["report", "-c", str(config), "--out", str(out), "--no-progress", "--period", "2026-Q3",
                        "--format", "xlsx,csv", "--lang", "en"]) == 0
    about = zipfile.ZipFile(out / "printfarm-report-2026-Q3-en.xlsx").read("xl/worksheets/sheet1.xml").decode()
    assert "made with another secret than this report" in about
    customers = (out / "printfarm-report-2026-Q3-en-customers.csv").read_text(encoding="utf-8-sig")
    assert "Kilsbergens" not in customers  # her account no longer matches: the note says why
    right = site.report("right", formats="xlsx")
    assert "another secret" not in zipfile.ZipFile(right / "printfarm-report-2026-Q3-en.xlsx").read(
        "xl/worksheets/sheet1.xml").decode()


# --- raw names kept for a while, and purged --------------------------------------------------------


def legacy_points(site: Site) -> None:
    """What a collector before pseudonyms wrote: the raw name in job and telemetry points."""
    tags = lineproto.tag_set(Tags("p1", SITE, "Örebro universitet", "Örebro", True))
    start, end = Q3_START + 40 * 86_400_000, Q3_START + 40 * 86_400_000 + 3_600_000
    lines = [f'state{tags} state="printing",prev_state="idle",seq=1i {start}',
             f'state{tags} state="idle",prev_state="printing",seq=2i {end}',
             f'job{tags},kind=started count=1i,user="{NAMES[0]}",file="old.gcode",seq=3i {start}',
             f'job{tags},kind=done count=1i,user="{NAMES[0]}",file="old.gcode",filament_mm=500.0,'
             f'job_started={start}i,seq=4i {end}',
             f'telemetry{tags} state="printing",user="{NAMES[0]}",seq=5i {start + 60_000}']
    urllib.request.urlopen(urllib.request.Request(
        f"{site.influx.url}/write?db={site.db}&precision=ms", data="\n".join(lines).encode(), method="POST"),
        timeout=10).read()


def csv_tables(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8-sig") for p in sorted(folder.glob("*.csv"))}


def test_purging_raw_user_names_changes_no_report_figure(servers):
    site = Site(servers, "purge", raw_user_days=30)
    site.run(q3_script(), jobs=2)
    legacy_points(site)
    assert site.count("job_user", "user_name") == 2  # the collector kept the raw names of its two job events
    real = site.report("names", "--users", "name", formats="csv")
    assert NAMES[0] in csv_tables(real)["printfarm-report-2026-Q3-en-jobs.csv"]  # the explicit option shows them
    before = csv_tables(site.report("before", formats="csv"))
    assert "Kilsbergens Verktyg AB" in before["printfarm-report-2026-Q3-en-customers.csv"]

    assert server_main(["purge-users", "-c", str(site.config), "--older-than", "0"]) == 0

    assert site.count("job_user", "user_name") == 0
    raw = site.influx.query(f'SELECT "user" FROM job, telemetry WHERE "user" = \'{NAMES[0]}\'', db=site.db)
    assert raw == [] and site.count("job") == 4  # the old points stay, with the pseudonym
    after = csv_tables(site.report("after", formats="csv"))
    assert after == before  # every table, every figure
    customers = after["printfarm-report-2026-Q3-en-customers.csv"]
    assert ",2,2,0,0," in customers  # both of her jobs (new and legacy) still count for the company

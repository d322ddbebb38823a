"""What the utilisation rollups cost (one command, ~7 minutes):

    python bench/rollup_cost.py [--printers 2000] [--rate 2000] [--seconds 60] [--rounds 3]
                                [--year-printers 100] [--year 2025] [--every 900]

(a) Two collectors (``python -m server run``, each its own process, started together) receive the
    same live 2,000 msg/s from one broker, each into its own database: one with rollups on (the
    default ``[rollups]``: a run a minute), one with them off. The stream: 2,000 printers polled once
    a second (telemetry as bench/collector_throughput.py sends it, stamped with the current time),
    each starting a session and then changing state every ~5 minutes on average. Side by side, the
    machine's other load weighs on both alike. Each one's CPU is counted from its process start to
    the end of the window (start-up, the rollups' first fill, the live load, the drain); ``--rounds``
    fresh pairs, target: median of the rounds' ratios on / off <= 1.10.
(b) A year x 100 printers (bench/report_speed.py's generator: ~300,000 state changes, ~170,000
    job events, a restart a fortnight, telemetry every ``--every`` s) rolled up from scratch by
    ``printfarm-server rollup`` in its own process, timed from that process's start to its exit,
    then checked: the year's rollups summed must equal the year's report (printing, unknown and
    in-network milliseconds of the whole network, and printing per customer kind: 60 customers,
    jobs attributed by user account, some accounts moving to another customer in July). Targets: the check holds, and the first fill of
    a year takes at most 2 minutes (what a collector's first start catches up on).

Prints the method and figures and the machine load; exits 1 on a miss.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil
import urllib3
from paho.mqtt.enums import CallbackAPIVersion

import collector_throughput as ct  # bench/ is on sys.path when run as python bench/rollup_cost.py
import report_speed as rs
from common import protocol
from devkit.servers import InfluxDB, Mosquitto
from server import inventory as inventory_mod
from server.reports import customer_rows, periods
from server.reports.generate import make_report
from server.store.influx import InfluxHTTP, rows

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.10
TARGET_YEAR_S = 120.0
CHANGE_EVERY_S = 300  # a printer changes state every ~5 min on average


def log(msg: str) -> None:
    print(msg, flush=True)


# -- (a) the live collector, rollups on and off -------------------------------------------------

def status(site: str, printer: str, state: str, prev: str | None, seq: int) -> tuple[str, bytes]:
    msg = protocol.Status(v=1, ts=int(time.time() * 1000), printer=printer, site=site, seq=seq, state=state,
                          prev_state=prev, agent=f"pi-{site}")
    return protocol.printer_topic(site, printer, "status"), protocol.encode(msg)


class LiveFleet:
    """Publishes at a steady rate: telemetry round-robin, and state changes now and then."""

    def __init__(self, broker: Mosquitto, fleet: list[tuple[str, str]], rate: int):
        self.fleet, self.rate = fleet, rate
        self.state = {p: "idle" for _, p in fleet}
        self.rng = random.Random(7)
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-rollup-live",
                                  protocol=mqtt.MQTTv311)
        self.client.max_inflight_messages_set(1000)
        self.client.connect(broker.host, broker.port, 60)
        self.client.loop_start()
        self.sent = 0

    def _publish(self, topic: str, payload: bytes) -> None:
        if self.client.publish(topic, payload, qos=1).rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError("live publish failed")
        self.sent += 1

    def session_starts(self) -> None:
        for site, printer in self.fleet:
            self._publish(*status(site, printer, "idle", None, 1))

    def run(self, seconds: float) -> None:
        if not self.sent:
            self.session_starts()  # every printer's agent starts once, in the first window
        began = time.monotonic()
        source = ct.payloads(self.fleet, int(self.rate * seconds) + 1, int(time.time() * 1000))
        done, p_change = 0, 1 / (CHANGE_EVERY_S * self.rate / len(self.fleet))
        while (elapsed := time.monotonic() - began) < seconds:
            while done < int(elapsed * self.rate):
                topic, payload = next(source)
                self._publish(topic, payload)
                done += 1
                if self.rng.random() < p_change:
                    self._change()
            time.sleep(0.005)

    def _change(self) -> None:
        site, printer = self.rng.choice(self.fleet)
        prev = self.state[printer]
        self.state[printer] = "printing" if prev == "idle" else "idle"
        self._publish(*status(site, printer, self.state[printer], prev, 2))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def pair(collectors: dict[str, ct.Collector], live: LiveFleet, seconds: float, http) -> dict:
    """Both collectors started together, the same stream to both, CPU of each from its start."""
    procs = {name: c.spawn() for name, c in collectors.items()}
    for name, c in collectors.items():
        c.wait_healthy(http, procs[name])
    sent_before = live.sent
    live.run(seconds)
    sent = live.sent - sent_before
    deadline = time.monotonic() + 60
    for c in collectors.values():
        while c.metric(http, "printfarm_messages_received") < sent and time.monotonic() < deadline:
            time.sleep(0.2)
    time.sleep(1.5)  # the last batch's write
    out = {}
    for name, proc in procs.items():
        t = psutil.Process(proc.pid).cpu_times()
        out[name] = t.user + t.system
    for proc in procs.values():
        ct.stop(proc)
    out["sent"] = sent
    return out


def contenders(tmp: Path, broker, influx, fleet) -> dict[str, ct.Collector]:
    """bench/collector_throughput.py's collector, twice: a client id and a database each."""
    inventory = ct.write_inventory(tmp, fleet)
    out = {}
    for name in ("on", "off"):
        collector = out[name] = ct.Collector(f"rollups-{name}", ct.REPO, tmp, broker, influx, inventory)
        collector.configure(f"bench_rollups_{name}")
        collector.config.write_text(collector.config.read_text()
                                    + f"[rollups]\nenabled = {'true' if name == 'on' else 'false'}\n")
    return out


def live_cost(args, tmp: Path) -> list[dict]:
    fleet = [(f"site-{i % ct.SITES}", f"p{i:04d}") for i in range(args.printers)]
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=1, read=5))
    rounds = []
    with Mosquitto(tmp / "mosquitto", extra_conf=ct.BROKER_EXTRA) as broker, InfluxDB(tmp / "influxdb") as influx:
        collectors = contenders(tmp, broker, influx, fleet)
        live = LiveFleet(broker, fleet, args.rate)  # publishes only while both collectors are connected
        try:
            for round_no in range(args.rounds):
                log(f"  round {round_no + 1}: rollups on and off side by side, {args.rate:,} msg/s for "
                    f"{args.seconds:.0f} s (load {os.getloadavg()[0]:.2f})...")
                r = pair(collectors, live, args.seconds, http)
                rounds.append(r)
                log(f"    CPU from start: on {r['on']:.2f} s, off {r['off']:.2f} s ({(r['on'] / r['off'] - 1) * 100:+.1f} %), "
                    f"{r['sent']:,} messages each")
        finally:
            live.close()
    return rounds


# -- (b) a year x 100 printers from scratch -----------------------------------------------------

def inventory_toml(inv: inventory_mod.Inventory, path: Path) -> Path:
    """The fleet, its customers and its accounts (attribution by account) as fleet.toml."""
    lines = []
    for site, s in inv.sites.items():
        lines += [f"[sites.{site}]", f'organisation = "{s.organisation}"', f'county = "{s.county}"', ""]
    for printer, p in inv.printers.items():
        lines += [f"[printers.{printer}]", f'site = "{p.site}"', ""]
    for cid, c in inv.customers.items():
        lines += [f"[customers.{cid}]", f'name = "{c.name}"', f'kind = "{c.kind}"', f'county = "{c.county}"']
        lines += [f'size = "{c.size}"', ""] if c.size else [""]
    for a in inv.attribution.accounts:
        lines += ["[[attribution.accounts]]", f'site = "{a.site}"', f'user = "{a.user}"', f'customer = "{a.customer}"']
        lines += [f'from = "{a.since}"', ""] if a.since else [""]
    path.write_text("\n".join(lines))
    return path


def year_from_scratch(args, tmp: Path) -> dict:
    inv = rs.fleet(args.year_printers, args.year)
    with InfluxDB(tmp / "influxdb-year") as server:
        client = InfluxHTTP(server.url, rs.DB, timeout=300)
        client.create_database()
        counts = rs.populate(client, inv, args.year, args.hz_days, args.every)
        cfg = tmp / "year.toml"
        cfg.write_text(f'inventory = "{inventory_toml(inv, tmp / "year-fleet.toml")}"\nstate_dir = "{tmp / "year-state"}"\n'
                       f'[influx]\nurl = "{server.url}"\ndatabase = "{rs.DB}"\nspool_dir = "{tmp / "year-spool"}"\n')
        influxd = psutil.Process(server.pid)
        before, d0 = resource.getrusage(resource.RUSAGE_CHILDREN), influxd.cpu_times()
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "server", "rollup", "-c", str(cfg), "--until", f"{args.year + 1}-01-01"],
                             cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - started
        after, d1 = resource.getrusage(resource.RUSAGE_CHILDREN), influxd.cpu_times()
        if out.returncode != 0:
            raise RuntimeError(f"rollup failed: {out.stderr[-2000:]}")
        year = periods.year(args.year)
        report = make_report(client, inv, year, now_ms=int(time.time() * 1000))
        summed = rows(client.query(
            f'SELECT sum("printing_ms") AS printing, sum("unknown_ms") AS unknown, sum("in_network_ms") AS in_network '
            f'FROM "rollups"."utilisation" WHERE time >= {year.start_ms}ms AND time < {year.end_ms}ms'))[0]
        network = report.groupings["network"][0]
        expected = {"printing": round(network["printing_h"] * 3_600_000), "unknown": round(network["unknown_h"] * 3_600_000),
                    "in_network": round(network["in_network_h"] * 3_600_000)}
        # The customer dimension: printing per customer kind (the report's customer view).
        kinds = rows(client.query(f'SELECT sum("printing_ms") AS printing FROM "rollups"."utilisation" WHERE '
                                  f'time >= {year.start_ms}ms AND time < {year.end_ms}ms GROUP BY "customer_kind"'))
        summed.update({f"printing_{r['customer_kind']}": r["printing"] for r in kinds})
        expected.update({f"printing_{r['kind']}": round(r["printing_h"] * 3_600_000)
                         for r in customer_rows.kinds(report.customers, inv) if r["printing_h"]})
        return {"counts": counts, "wall": wall, "stdout": out.stdout.strip(),
                "cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
                "cpu_influxd": (d1.user + d1.system) - (d0.user + d0.system),
                "summed": {k: summed.get(k) for k in expected}, "expected": expected}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--printers", type=int, default=2000)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rounds", type=int, default=3)  # a median of 3: one noisy pair of processes cannot decide it
    ap.add_argument("--year-printers", type=int, default=100)
    ap.add_argument("--year", type=int, default=2025)
    ap.add_argument("--hz-days", type=float, default=0.1, help="days of 1 Hz telemetry at the end of the year")
    ap.add_argument("--every", type=int, default=900, help="telemetry interval (s) for the rest of the year")
    ap.add_argument("--skip-live", action="store_true")
    ap.add_argument("--skip-year", action="store_true")
    args = ap.parse_args()
    load = os.getloadavg()
    log(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} CPUs)")
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-rollups-") as d:
        tmp = Path(d)
        live = None if args.skip_live else live_cost(args, tmp)
        year = None if args.skip_year else year_from_scratch(args, tmp)
    print()
    if live:
        ratios = [r["on"] / r["off"] for r in live]
        ratio = statistics.median(ratios)
        ok &= ratio <= TARGET
        print(f"=== (a) collectors side by side at a live {args.rate:,} msg/s, {args.printers:,} printers, "
              f"{args.seconds:.0f} s, {args.rounds} rounds ===")
        print(f"    CPU from process start, rollups on / off: {', '.join(f'{x:.3f}' for x in ratios)}; median "
              f"{(ratio - 1) * 100:+.1f} % (target <= {(TARGET - 1) * 100:+.0f} %: {'met' if ratio <= TARGET else 'MISSED'})")
        on = statistics.median(r["on"] for r in live)
        print(f"    with rollups: {on:.2f} CPU-s in {args.seconds:.0f} s ({on / args.seconds * 100:.1f} % of a core), "
              f"{on / live[0]['sent'] * 100_000:.2f} CPU-s per 100,000 messages; without: "
              f"{statistics.median(r['off'] for r in live):.2f} CPU-s")
    if year:
        c = year["counts"]
        same = year["summed"] == year["expected"]
        ok &= same and year["wall"] <= TARGET_YEAR_S
        print(f"=== (b) {args.year_printers} printers x {args.year} rolled up from scratch ===")
        print(f"    in InfluxDB: {c['state']:,} state changes, {c['job']:,} job events, {c['restarts']:,} restarts, "
              f"{c['telemetry_sparse'] + c['telemetry_1hz']:,} telemetry points")
        print(f"    printfarm-server rollup: {year['wall']:.1f} s from process start to exit "
              f"(target <= {TARGET_YEAR_S:.0f} s: {'met' if year['wall'] <= TARGET_YEAR_S else 'MISSED'}; "
              f"{year['cpu']:.1f} CPU-s, influxd {year['cpu_influxd']:.1f} CPU-s); it said: {year['stdout']}")
        print(f"    the year's rollups sum to the report's figures: {'yes' if same else 'NO'} "
              f"(rollups {year['summed']}, report {year['expected']})")
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs shared with other work")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

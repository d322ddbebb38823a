"""Collector throughput: drain a queued backlog through real Mosquitto into real InfluxDB.

    python bench/collector_throughput.py [--messages 200000] [--printers 500] [--runs 3]
                                         [--compare NAME=GITREV ...] [--live-rate 2000] [--py-spy FILE]
                                         [--engine nats-cluster]

Method (printed with the figures):
  Each round publishes N telemetry messages (500 printers, ~270 bytes) at QoS 1 while every
  consumer is stopped, so each consumer's persistent session holds its own copy. Then each
  consumer drains it alone, one after the other (the order rotates per round):
  - the baseline: a bare paho subscriber that only counts (`loop_forever()`, QoS 1, MQTT 3.1.1),
    timed from its spawn to the last message counted; CPU = the whole process (wait4 rusage);
  - the collector (`python -m server run` of this checkout), timed from its spawn to the last
    point stored (its `printfarm_points_written` reaching N); CPU = user + system of the process
    at that moment, start-up included; peak RSS = VmHWM; lost = N - points in its database;
  - each `--compare NAME=GITREV`: the collector of that git revision, timed like ours (not
    held to the targets: reported beside them).
  Figures are medians of `--runs` rounds; rates and CPU are compared as ratios within this run,
  so a busy machine slows all alike (the load average is printed).

The collector runs as configured by default (the bench's server.toml sets no [rollups] or [alerts]):
utilisation rollups on, so their ingest listener and per-burst hand-over are in the figures.

Targets (issue #16), on the medians: drain rate >= 1.2 x the counting subscriber's; CPU per
100,000 messages <= 0.5 x the counting subscriber's; peak RSS <= 80 MB (the highest of the
runs); 0 lost. The exit status is 1 when any is missed.

`--engine nats-cluster` adds, in the same run, the collector draining the same backlog from a
three-node NATS cluster's replicated JetStream stream ([nats], docs/scaling.md), timed the same
way (spawn to last point stored); the backlog is put into the stream through NATS itself, so only
the consuming side is measured. Reported beside the single Mosquitto, not held to the targets.

Beside them: InfluxDB's own bulk write rate, and the collector's CPU at a steady live rate
(`--live-rate`, 0 to skip), which is what a real fleet costs; a message lost there misses
the "0 lost" target too.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil
import urllib3
from paho.mqtt.enums import CallbackAPIVersion

from common import protocol
from devkit.servers import InfluxDB, Mosquitto, free_port

REPO = Path(__file__).resolve().parents[1]
SITES = 10
# The collector acknowledges after its write, so the broker must allow a deep in-flight window.
BROKER_EXTRA = os.environ.get("BENCH_BROKER_EXTRA", "max_inflight_messages 0\n")
TARGET_RATE, TARGET_CPU, TARGET_RSS_MB = 1.2, 0.5, 80.0

COUNTER_SCRIPT = textwrap.dedent("""
    import sys, time, paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    host, port, want = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    n = 0
    last = None
    def on_message(c, u, m):
        global n, last
        n += 1
        if n >= want:
            last = time.monotonic()
            c.disconnect()
    def on_connect(c, u, f, rc, p):
        c.subscribe("printfarm/v1/+/+/+", 1)
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-counter",
                    clean_session=False, protocol=mqtt.MQTTv311)
    c.on_message, c.on_connect = on_message, on_connect
    c.connect(host, port, 60)
    if want == 0:  # only create the session
        c.loop_start(); time.sleep(0.5); c.loop_stop(); c.disconnect(); sys.exit(0)
    c.loop_forever()
    print(n, last, flush=True)
""")


def log(msg: str) -> None:
    print(msg, flush=True)


# -- the fleet and its messages -------------------------------------------------------------------

def printers(n: int) -> list[tuple[str, str]]:
    return [(f"site-{i % SITES}", f"p{i:04d}") for i in range(n)]


def write_inventory(tmp: Path, fleet) -> Path:
    inv = tmp / "fleet.toml"
    lines = []
    for s in range(SITES):
        lines += [f"[sites.site-{s}]", f'organisation = "Org {s % 3}"', 'county = "Västerbotten"', ""]
    for site, printer in fleet:
        lines += [f"[printers.{printer}]", f'site = "{site}"', 'model = "MK4"', ""]
    inv.write_text("\n".join(lines))
    return inv


def payloads(fleet, n: int, base_ms: int):
    """n telemetry payloads, round-robin over the fleet; each one a distinct point."""
    per = {}
    for i in range(n):
        site, printer = fleet[i % len(fleet)]
        k = per[printer] = per.get(printer, 0) + 1
        msg = protocol.Telemetry(
            v=1, ts=base_ms + k * 1000, printer=printer, site=site, seq=k, state="printing",
            state_text="Printing", temps={"tool0": protocol.Temperature(215.3, 215.0),
                                          "bed": protocol.Temperature(59.8, 60.0)},
            progress=min(100.0, k / 5), print_time=float(k), time_left=3600.0 - k, file="benchy.gcode",
            user="operator", filament_mm=1234.5)
        yield protocol.printer_topic(site, printer, "telemetry"), protocol.encode(msg)


def publish(broker: Mosquitto, fleet, n: int, base_ms: int) -> float:
    acked = [0]
    done = threading.Event()

    def on_publish(c, u, mid, rc, props):
        acked[0] += 1
        if acked[0] >= n:
            done.set()

    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-publisher",
                    protocol=mqtt.MQTTv311)
    c.on_publish = on_publish
    c.max_inflight_messages_set(1000)
    c.connect(broker.host, broker.port, 60)
    c.loop_start()
    started = time.monotonic()
    for i, (topic, payload) in enumerate(payloads(fleet, n, base_ms)):
        while i - acked[0] > 20_000:  # stay far below paho's 65,535 outstanding ids
            time.sleep(0.01)
        info = c.publish(topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"publish {i} failed: {mqtt.error_string(info.rc)}")
    if not done.wait(300):
        raise RuntimeError(f"only {acked[0]} of {n} publishes acknowledged")
    c.disconnect()
    c.loop_stop()
    return time.monotonic() - started


# -- the counting baseline ------------------------------------------------------------------------

def spawn_counter(broker: Mosquitto, n: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", COUNTER_SCRIPT, broker.host, str(broker.port), str(n)],
                            stdout=subprocess.PIPE, text=True)


def counter_drain(broker: Mosquitto, n: int) -> dict:
    spawned = time.monotonic()
    proc = spawn_counter(broker, n)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    count, last = proc.stdout.read().split()
    seconds = float(last) - spawned
    return {"count": int(count), "seconds": seconds, "rate": n / seconds,
            "cpu_per_100k": (usage.ru_utime + usage.ru_stime) / n * 100_000}


# -- collectors -----------------------------------------------------------------------------------

class Collector:
    """One collector variant: a source tree (this checkout, or a git revision), its own MQTT
    session (client id) and its own database per round."""

    def __init__(self, name: str, src: Path, tmp: Path, broker: Mosquitto, influx: InfluxDB, inventory: Path):
        self.name, self.src = name, src
        self.dir = tmp / f"collector-{name}"
        self.dir.mkdir()
        self.broker, self.influx, self.inventory = broker, influx, inventory
        self.port = free_port()
        self.config = self.dir / "server.toml"

    def database(self, round_no: int) -> str:
        return f"bench_{re.sub(r'[^a-z0-9]', '_', self.name.lower())}_{round_no}"

    def configure(self, database: str, ack_after_write: bool = True) -> None:
        self._write_config(database, ack_after_write)

    def _write_config(self, database: str, ack_after_write: bool = True, extra: str = "") -> None:
        self.config.write_text(textwrap.dedent(f"""\
            inventory = "{self.inventory}"
            state_dir = "{self.dir / 'state'}"
            log_level = "WARNING"
            [mqtt]
            host = "{self.broker.host}"
            port = {self.broker.port}
            client_id = "bench-{self.name}"
            ack_after_write = {'true' if ack_after_write else 'false'}
            [influx]
            url = "{self.influx.url}"
            database = "{database}"
            batch_size = 5000
            flush_interval = 1.0
            spool_dir = "{self.dir / 'spool'}"
            [http]
            host = "127.0.0.1"
            port = {self.port}
            """) + extra)

    def spawn(self) -> subprocess.Popen:
        errlog = open(self.dir / "collector.log", "ab")
        return subprocess.Popen([sys.executable, "-m", "server", "run", "-c", str(self.config)],
                                cwd=self.src, stdout=errlog, stderr=errlog)

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join((self.dir / "collector.log").read_text(errors="replace").splitlines()[-lines:])

    def metric(self, http, name: str) -> float:
        body = http.request("GET", f"http://127.0.0.1:{self.port}/metrics").data.decode()
        m = re.search(rf"^{name}(?:_total)? ([0-9.e+]+)$", body, re.M)
        return float(m.group(1)) if m else 0.0

    def wait_healthy(self, http, proc, timeout=20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"collector {self.name} exited during start-up:\n{self.log_tail()}")
            try:
                if http.request("GET", f"http://127.0.0.1:{self.port}/healthz").status == 200:
                    return
            except urllib3.exceptions.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"collector {self.name} did not become healthy")

    def create_session(self, http) -> None:
        self.configure(self.database(0))
        proc = self.spawn()
        self.wait_healthy(http, proc)
        stop(proc)

    def drain(self, http, n: int, round_no: int, profile_to: str | None = None) -> dict:
        """From spawn to the last point stored."""
        db = self.database(round_no)
        self.configure(db)
        spawned = time.monotonic()
        proc = self.spawn()
        ps = psutil.Process(proc.pid)
        spy = None
        if profile_to:  # a sampling profile (collapsed stacks); it adds some load of its own
            spy = subprocess.Popen(["py-spy", "record", "-r", "250", "-f", "raw", "-o", profile_to, "-p", str(proc.pid)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        written = 0.0
        while written < n:
            if proc.poll() is not None:
                raise RuntimeError(f"collector {self.name} died:\n{self.log_tail()}")
            if time.monotonic() - spawned > 600:
                raise RuntimeError(f"collector {self.name}: drain did not finish: {written} written")
            # Scrape often only near the start and the end: a scrape costs the collector CPU too.
            time.sleep(0.02 if written == 0 or written >= 0.9 * n else 0.25)
            try:
                written = self.metric(http, "printfarm_points_written")
            except urllib3.exceptions.HTTPError:
                written = 0.0
        seconds = time.monotonic() - spawned
        t = ps.cpu_times()
        cpu = t.user + t.system
        hwm = vm_hwm_kb(proc.pid)
        stop(proc)
        if spy:
            spy.wait(30)
        stored = influx_count(self.influx, db)
        return {"seconds": seconds, "rate": n / seconds, "cpu_per_100k": cpu / n * 100_000,
                "peak_rss_mb": hwm / 1024, "lost": n - stored, "extra": max(0, stored - n)}


class NatsCollector(Collector):
    """The same collector consuming a NATS cluster's JetStream stream through its durable consumer."""

    def __init__(self, name: str, tmp: Path, cluster, influx: InfluxDB, inventory: Path):
        super().__init__(name, REPO, tmp, cluster.nodes[0], influx, inventory)
        self.cluster = cluster

    def configure(self, database: str, ack_after_write: bool = True) -> None:
        servers = ", ".join(f'"{url}"' for url in self.cluster.nats_urls)
        self._write_config(database, ack_after_write, f"[nats]\nservers = [{servers}]\nbatch = 5000\n")


def fill_stream(cluster, fleet, n: int, base_ms: int) -> None:
    """Put n messages where NATS keeps MQTT clients' QoS 1 messages, through NATS itself
    (JetStream publishes, 500 awaited at a time, each retried until the stream acknowledged it;
    a message ID lets the stream drop a retried one it already has): the bench measures consuming,
    not the agents' MQTT side, which stores one message at a time per connection. (Plain core
    publishes were faster but a loaded cluster dropped some of 200,000.)"""
    import asyncio

    import nats

    async def put(js, subject: str, payload: bytes, msg_id: str) -> None:
        for _ in range(20):
            try:
                await js.publish(subject, payload, headers={"Nats-Msg-Id": msg_id})
                return
            except nats.errors.TimeoutError:
                await asyncio.sleep(0.5)
        raise RuntimeError(f"the stream did not acknowledge message {msg_id}")

    async def run() -> None:
        nc = await nats.connect(cluster.nats_urls)
        js = nc.jetstream(timeout=30)  # a cluster storing a 200k backlog on a busy machine answers slowly
        window = []
        for i, (topic, payload) in enumerate(payloads(fleet, n, base_ms)):
            window.append(put(js, "$MQTT.msgs." + topic.replace("/", "."), payload, f"{base_ms}-{i}"))
            if len(window) == 500:
                await asyncio.gather(*window)
                window = []
        await asyncio.gather(*window)
        await nc.close()

    asyncio.run(run())


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(60)


def vm_hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def influx_count(influx: InfluxDB, db: str) -> int:
    rows = influx.query("SELECT count(seq) FROM telemetry", db=db)
    return int(rows[0]["count"]) if rows else 0


def export_revision(rev: str, into: Path) -> Path:
    """The tree of a git revision, to run its collector from (`python -m server` in that folder)."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


# -- extras beside the targets --------------------------------------------------------------------

def influx_bulk_rate(influx: InfluxDB, fleet, n: int, base_ms: int) -> float:
    from server import lineproto
    from server.inventory import Tags
    from server.store.influx import InfluxHTTP
    client = InfluxHTTP(influx.url, "bulk")
    client.create_database()
    lines = []
    for topic, payload in payloads(fleet, n, base_ms):
        msg = protocol.decode(protocol.parse_topic(topic), payload, base_ms + 10**9)
        tags = lineproto.tag_set(Tags(printer=msg.printer, site=msg.site, organisation="Org", county="X",
                                      listed=True))
        lines.append(lineproto.telemetry(msg, tags))
    bodies = ["\n".join(lines[i:i + 5000]).encode() for i in range(0, n, 5000)]
    started = time.monotonic()
    for body in bodies:
        client.write(body)
    return n / (time.monotonic() - started)


def live_cost(collector: Collector, http, fleet, rate: int, seconds: float, base_ms: int) -> dict:
    """The collector's CPU at a steady live rate (not a backlog): what a real fleet costs."""
    collector.configure(collector.database(99))
    proc = collector.spawn()
    collector.wait_healthy(http, proc)
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-live", protocol=mqtt.MQTTv311)
    c.max_inflight_messages_set(1000)
    c.connect(collector.broker.host, collector.broker.port, 60)
    c.loop_start()
    ps = psutil.Process(proc.pid)
    t = ps.cpu_times()
    cpu0, began, sent = t.user + t.system, time.monotonic(), 0
    source = payloads(fleet, int(rate * seconds) + 1, base_ms)
    while (elapsed := time.monotonic() - began) < seconds:
        while sent < int(elapsed * rate):
            topic, payload = next(source)
            if c.publish(topic, payload, qos=1).rc != mqtt.MQTT_ERR_SUCCESS:
                raise RuntimeError("live publish failed")
            sent += 1
        time.sleep(0.005)
    deadline = time.monotonic() + 30
    while collector.metric(http, "printfarm_points_written") < sent and time.monotonic() < deadline:
        time.sleep(0.2)
    t = ps.cpu_times()
    cpu = t.user + t.system - cpu0
    c.loop_stop()
    c.disconnect()
    stop(proc)
    # Telemetry points in its database: the collector writes a few points of its own (its
    # pseudonym key's id, agents' states), which its points_written counter includes.
    written = influx_count(collector.influx, collector.database(99))
    return {"rate": rate, "sent": sent, "written": written, "cpu_per_100k": cpu / sent * 100_000,
            "core_share": cpu / (time.monotonic() - began)}


# -- the run --------------------------------------------------------------------------------------

def rollups_state() -> str:
    """The bench's server.toml sets no [rollups]: the collector runs them as its default says."""
    from server.rollups.config import RollupsConfig
    return "ON (the default: their ingest listener and per-burst hand-over run)" if RollupsConfig().enabled else "off"


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def report(n: int, fleet, args, results: dict, bulk: float, live, loads) -> bool:
    """Print the method and the figures; True when every target is met."""
    base = results["counter"]
    base_rate, base_cpu = median(base, "rate"), median(base, "cpu_per_100k")
    print()
    print(f"=== collector throughput: {n:,} queued QoS 1 telemetry messages, {len(fleet)} printers, "
          f"median of {args.runs} rounds ===")
    print("method: each consumer drains its own copy of the backlog alone, timed from its spawn to the last "
          "message counted (baseline) or the last point stored (collectors); CPU is the whole process, "
          "start-up included")
    print(f"collectors as configured by default: utilisation rollups {rollups_state()}, alerts off (no [alerts]), "
          "ack after write")
    print(f"baseline  bare counting paho subscriber:  {base_rate:>9,.0f} msg/s   {base_cpu:5.2f} CPU-s per 100k")
    ok = True
    for name, runs in results.items():
        if name == "counter":
            continue
        rate, cpu = median(runs, "rate"), median(runs, "cpu_per_100k")
        rss, lost = max(r["peak_rss_mb"] for r in runs), sum(r["lost"] for r in runs)
        extra = sum(r["extra"] for r in runs)
        print(f"{name:<42}{rate:>9,.0f} msg/s = {rate / base_rate:4.2f} x   {cpu:5.2f} CPU-s per 100k = "
              f"{cpu / base_cpu:4.2f} x   peak RSS {rss:5.1f} MB   lost {lost}   extra points {extra}")
        print("    per round: " + "; ".join(f"{r['rate']:,.0f} msg/s, {r['cpu_per_100k']:.2f} CPU-s" for r in runs))
        if name == "collector":
            live_lost = live["sent"] - int(live["written"]) if live else 0
            checks = [(f"drain >= {TARGET_RATE} x baseline", rate / base_rate >= TARGET_RATE),
                      (f"CPU <= {TARGET_CPU} x baseline", cpu / base_cpu <= TARGET_CPU),
                      (f"peak RSS <= {TARGET_RSS_MB:.0f} MB", rss <= TARGET_RSS_MB),
                      ("0 lost (drains and live)", lost == 0 and live_lost == 0)]
            print("    targets: " + "; ".join(f"{what}: {'met' if met else 'MISSED'}" for what, met in checks))
            ok = all(met for _, met in checks)
    print("    baseline per round: " + "; ".join(f"{r['rate']:,.0f} msg/s, {r['cpu_per_100k']:.2f} CPU-s"
                                               for r in base))
    print(f"InfluxDB bulk write rate (batches of 5,000, one connection): {bulk:,.0f} points/s")
    if live:
        print(f"collector at a steady {live['rate']:,} msg/s (live, not a backlog): {live['cpu_per_100k']:.2f} CPU-s "
              f"per 100k ({live['core_share'] * 100:.0f} % of a core); {int(live['written']):,} of {live['sent']:,} written")
    print(f"load average (1-min) before {loads[0][0]:.2f} / after {loads[1][0]:.2f}; {os.cpu_count()} CPUs shared "
          f"with other work")
    print("result: all targets met" if ok else "result: TARGET MISSED")
    return ok


def nats_rounds(tmp: Path, http, influx: InfluxDB, inventory: Path, fleet, n: int, runs: int,
                base_ms: int) -> list[dict]:
    from devkit.servers.nats import NatsCluster

    results = []
    with NatsCluster(tmp / "nats") as cluster:
        collector = NatsCollector("nats", tmp, cluster, influx, inventory)
        collector.create_session(http)  # the stream and the durable consumer
        for round_no in range(1, runs + 1):
            log(f"NATS round {round_no}: {n:,} messages into the stream...")
            fill_stream(cluster, fleet, n, base_ms + (runs + 2 + round_no) * 10**7)
            r = collector.drain(http, n, 100 + round_no)
            log(f"    collector on NATS: {r['rate']:,.0f} msg/s, {r['cpu_per_100k']:.2f} CPU-s per 100k, "
                f"RSS {r['peak_rss_mb']:.1f} MB, lost {r['lost']}")
            results.append(r)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--printers", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--compare", action="append", default=[], metavar="NAME=GITREV",
                    help="also measure the collector of that git revision (e.g. main=main)")
    ap.add_argument("--live-rate", type=int, default=2000, help="also measure CPU at this steady rate (0: skip)")
    ap.add_argument("--live-seconds", type=float, default=15.0)
    ap.add_argument("--py-spy", metavar="FILE", help="profile this checkout's collector in round 1 (needs py-spy)")
    ap.add_argument("--engine", choices=["nats-cluster"], action="append", default=[],
                    help="also drain the backlog from a three-node NATS cluster's JetStream stream")
    args = ap.parse_args()
    n, fleet = args.messages, printers(args.printers)
    loads = [os.getloadavg()]
    log(f"load average before: {' '.join(f'{x:.2f}' for x in loads[0])}  ({os.cpu_count()} CPUs)")
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=1, read=5))
    with tempfile.TemporaryDirectory(prefix="bench-collector-") as d:
        tmp = Path(d)
        with Mosquitto(tmp / "mosquitto", extra_conf=BROKER_EXTRA) as broker, InfluxDB(tmp / "influxdb") as influx:
            inventory = write_inventory(tmp, fleet)
            collectors = [Collector("collector", REPO, tmp, broker, influx, inventory)]
            for spec in args.compare:
                name, rev = spec.split("=", 1)
                src = export_revision(rev, tmp / "src" / name)
                collectors.append(Collector(f"{name} ({rev})", src, tmp, broker, influx, inventory))
            log("creating the persistent sessions...")
            for c in collectors:
                c.create_session(http)
            spawn_counter(broker, 0).wait(10)
            results: dict[str, list[dict]] = {"counter": [], **{c.name: [] for c in collectors}}
            base_ms = int(time.time() * 1000) - 24 * 3600 * 1000
            for round_no in range(1, args.runs + 1):
                round_ms = base_ms + round_no * 10**7  # later timestamps each round (2.8 h apart): distinct points
                log(f"round {round_no}: publishing {n:,} messages at QoS 1...")
                publish(broker, fleet, n, round_ms)
                consumers = ["counter"] + collectors
                shift = (round_no - 1) % len(consumers)  # rotate the order: no one always goes first
                for who in consumers[shift:] + consumers[:shift]:
                    if who == "counter":
                        r = counter_drain(broker, n)
                        log(f"    counting subscriber: {r['rate']:,.0f} msg/s, {r['cpu_per_100k']:.2f} CPU-s per 100k")
                        results["counter"].append(r)
                    else:
                        profile = args.py_spy if who is collectors[0] and round_no == 1 else None
                        r = who.drain(http, n, round_no, profile)
                        log(f"    {who.name}: {r['rate']:,.0f} msg/s, {r['cpu_per_100k']:.2f} CPU-s per 100k, "
                            f"RSS {r['peak_rss_mb']:.1f} MB, lost {r['lost']}")
                        results[who.name].append(r)
            log("InfluxDB bulk write...")
            bulk = influx_bulk_rate(influx, fleet, n, base_ms)
            live = None
            if args.live_rate:
                log(f"steady live rate: {args.live_rate:,} msg/s for {args.live_seconds:.0f} s...")
                # Later than every round's points, and still in the past (ingest rejects the future).
                live_ms = base_ms + (args.runs + 1) * 10**7
                live = live_cost(collectors[0], http, fleet, args.live_rate, args.live_seconds, live_ms)
            if "nats-cluster" in args.engine:
                results["collector on a 3-node NATS cluster"] = nats_rounds(tmp, http, influx, inventory, fleet, n,
                                                                            args.runs, base_ms)
    loads.append(os.getloadavg())
    return 0 if report(n, fleet, args, results, bulk, live, loads) else 1


if __name__ == "__main__":
    sys.exit(main())

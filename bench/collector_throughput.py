"""Collector throughput: drain a queued backlog through real Mosquitto into real InfluxDB.

    python bench/collector_throughput.py [--messages 200000] [--printers 500] [--compare-ack]

Prints, from one run on this machine:
  (a) drain rate of N telemetry messages queued at QoS 1 in a persistent session while the
      consumer was stopped: the collector (a `python -m server run` subprocess) and a bare paho
      subscriber that only counts (the ceiling for a Python consumer);
  (b) InfluxDB's own bulk line-protocol write rate (batches of 5,000, one keep-alive connection);
  (c) the collector's CPU-seconds per 100,000 messages, peak resident memory (VmHWM) and the
      messages lost (counted in InfluxDB: every message is a distinct point).
`--compare-ack` also drains a second backlog with ack_after_write = false, to show what
acknowledging only after the write costs.
"""

from __future__ import annotations

import argparse
import os
import re
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
from devkit.servers import InfluxDB, Mosquitto

DB = "printfarm"
SITES = 10
# The collector acknowledges after its write, so the broker must allow a deep in-flight window.
BROKER_EXTRA = __import__("os").environ.get("BENCH_BROKER_EXTRA", "max_inflight_messages 0\n")
PROFILE_TO: str | None = None

COUNTER_SCRIPT = textwrap.dedent("""
    import sys, time, paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    host, port, want = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    n = 0
    first = last = None
    def on_message(c, u, m):
        global n, first, last
        n += 1
        last = time.monotonic()
        if first is None:
            first = last
        if n >= want:
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
    print(n, first, last, flush=True)
""")


def log(msg: str) -> None:
    print(msg, flush=True)


def printers(n: int) -> list[tuple[str, str]]:
    return [(f"site-{i % SITES}", f"p{i:04d}") for i in range(n)]


def write_setup(tmp: Path, broker: Mosquitto, influx: InfluxDB, fleet, ack_after_write: bool) -> Path:
    inv = tmp / "fleet.toml"
    lines = []
    for s in range(SITES):
        lines += [f"[sites.site-{s}]", f'organisation = "Org {s % 3}"', 'county = "Västerbotten"', ""]
    for site, printer in fleet:
        lines += [f"[printers.{printer}]", f'site = "{site}"', 'model = "MK4"', ""]
    inv.write_text("\n".join(lines))
    cfg = tmp / "server.toml"
    cfg.write_text(textwrap.dedent(f"""\
        inventory = "{inv}"
        state_dir = "{tmp / 'state'}"
        log_level = "WARNING"
        [mqtt]
        host = "{broker.host}"
        port = {broker.port}
        client_id = "bench-collector"
        ack_after_write = {'true' if ack_after_write else 'false'}
        [influx]
        url = "{influx.url}"
        database = "{DB}"
        batch_size = 5000
        flush_interval = 1.0
        spool_dir = "{tmp / 'spool'}"
        [http]
        host = "127.0.0.1"
        port = {free_port()}
        """))
    return cfg


def free_port() -> int:
    from devkit.servers import free_port as fp
    return fp()


def http_port(cfg: Path) -> int:
    return int(re.search(r"\[http\][^\[]*port = (\d+)", cfg.read_text()).group(1))


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
        if i and i % 50_000 == 0:
            log(f"    published {i:,}")
    if not done.wait(300):
        raise RuntimeError(f"only {acked[0]} of {n} publishes acknowledged")
    elapsed = time.monotonic() - started
    c.disconnect()
    c.loop_stop()
    return elapsed


def run_counter(broker: Mosquitto, n: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", COUNTER_SCRIPT, broker.host, str(broker.port), str(n)],
                            stdout=subprocess.PIPE, text=True)


def counter_drain(broker: Mosquitto, n: int) -> dict:
    proc = run_counter(broker, n)
    ps = psutil.Process(proc.pid)
    cpu = 0.0
    while proc.poll() is None:
        try:
            t = ps.cpu_times()
            cpu = t.user + t.system
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    count, first, last = proc.stdout.read().split()
    elapsed = float(last) - float(first)
    return {"count": int(count), "seconds": elapsed, "rate": int(count) / elapsed, "cpu": cpu}


def metric(http, port: int, name: str) -> float:
    body = http.request("GET", f"http://127.0.0.1:{port}/metrics").data.decode()
    m = re.search(rf"^{name}(?:_total)? ([0-9.e+]+)$", body, re.M)
    return float(m.group(1)) if m else 0.0


def start_collector(cfg: Path, tmp: Path) -> subprocess.Popen:
    errlog = open(tmp / "collector.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "server", "run", "-c", str(cfg)],
                            cwd=Path(__file__).resolve().parents[1], stdout=errlog, stderr=errlog)


def wait_healthy(port: int, http, proc, timeout=20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("collector exited during start-up; see collector.log")
        try:
            if http.request("GET", f"http://127.0.0.1:{port}/healthz").status == 200:
                return
        except urllib3.exceptions.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError("collector did not become healthy")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(60)


def create_sessions(cfg: Path, tmp: Path, broker: Mosquitto, http) -> None:
    proc = start_collector(cfg, tmp)
    wait_healthy(http_port(cfg), http, proc)
    stop(proc)
    c = run_counter(broker, 0)
    c.wait(10)


def collector_drain(cfg: Path, tmp: Path, n: int, http) -> dict:
    port = http_port(cfg)
    proc = start_collector(cfg, tmp)
    ps = psutil.Process(proc.pid)
    spy = None
    if PROFILE_TO:  # sampling profile of the drain (adds a little load of its own)
        spy = subprocess.Popen(["py-spy", "record", "-r", "250", "-f", "raw", "-o", PROFILE_TO, "-p", str(proc.pid)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    launched = time.monotonic()
    first = cpu_first = None
    last_print = launched
    while True:
        if proc.poll() is not None:
            raise RuntimeError("collector died; see collector.log")
        try:
            received = metric(http, port, "printfarm_messages_received")
            written = metric(http, port, "printfarm_points_written")
        except urllib3.exceptions.HTTPError:
            received = written = 0
        now = time.monotonic()
        if received and first is None:
            t = ps.cpu_times()
            first, cpu_first = now, t.user + t.system
        if written >= n:
            break
        if now - last_print >= 2:
            log(f"    collector: received {int(received):,}, written {int(written):,}")
            last_print = now
        if now - launched > 600:
            raise RuntimeError(f"drain did not finish: {written} written")
        # Poll often only near the start and the end: a scrape costs the collector CPU too.
        time.sleep(0.02 if first is None or written >= 0.9 * n else 0.25)
    end = time.monotonic()
    t = ps.cpu_times()
    cpu_total = t.user + t.system
    hwm = _vm_hwm(proc.pid)
    stop(proc)
    if spy:
        spy.wait(30)
    elapsed = end - first
    return {"seconds": elapsed, "rate": n / elapsed, "cpu_drain": cpu_total - cpu_first,
            "cpu_total": cpu_total, "peak_rss_mb": hwm / 1024}


def live_cost(cfg: Path, tmp: Path, broker: Mosquitto, fleet, rate: int, seconds: float, base_ms: int, http) -> dict:
    """The collector's CPU at a steady live rate (not a backlog): what a real fleet costs."""
    port = http_port(cfg)
    proc = start_collector(cfg, tmp)
    wait_healthy(port, http, proc)
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-live", protocol=mqtt.MQTTv311)
    c.max_inflight_messages_set(1000)
    c.connect(broker.host, broker.port, 60)
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
    while metric(http, port, "printfarm_points_written") < sent and time.monotonic() < deadline:
        time.sleep(0.2)
    t = ps.cpu_times()
    cpu = t.user + t.system - cpu0
    written = metric(http, port, "printfarm_points_written")
    c.loop_stop()
    c.disconnect()
    stop(proc)
    return {"rate": rate, "sent": sent, "written": written, "cpu_per_100k": cpu / sent * 100_000,
            "core_share": cpu / (time.monotonic() - began)}


def _vm_hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def influx_count(influx: InfluxDB) -> int:
    rows = influx.query("SELECT count(seq) FROM telemetry", db=DB)
    return int(rows[0]["count"]) if rows else 0


def influx_bulk_rate(influx: InfluxDB, fleet, n: int, base_ms: int) -> float:
    from server.store.influx import InfluxHTTP
    from server import lineproto
    from server.inventory import Tags
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--printers", type=int, default=500)
    ap.add_argument("--compare-ack", action="store_true", help="also drain with ack_after_write = false")
    ap.add_argument("--live-rate", type=int, default=2000, help="also measure CPU at this steady rate (0: skip)")
    ap.add_argument("--live-seconds", type=float, default=15.0)
    ap.add_argument("--py-spy", metavar="FILE", help="record a py-spy profile (collapsed stacks) of the collector's drain")
    args = ap.parse_args()
    global PROFILE_TO
    PROFILE_TO = args.py_spy
    n, fleet = args.messages, printers(args.printers)
    load_before = os.getloadavg()
    log(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}  "
        f"({os.cpu_count()} CPUs)")
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=1, read=5))
    with tempfile.TemporaryDirectory(prefix="bench-collector-") as d:
        tmp = Path(d)
        with Mosquitto(tmp / "mosquitto", extra_conf=BROKER_EXTRA) as broker, InfluxDB(tmp / "influxdb") as influx:
            cfg = write_setup(tmp, broker, influx, fleet, ack_after_write=True)
            log("creating the persistent sessions (collector + counting subscriber)...")
            create_sessions(cfg, tmp, broker, http)
            base_ms = int(time.time() * 1000) - 24 * 3600 * 1000
            log(f"publishing {n:,} telemetry messages from {len(fleet)} printers at QoS 1...")
            pub_s = publish(broker, fleet, n, base_ms)
            log(f"    published in {pub_s:.1f} s")

            log("draining: bare paho subscriber that only counts (loop_forever)...")
            counter = counter_drain(broker, n)
            log(f"    counted {counter['count']:,} in {counter['seconds']:.2f} s")
            log("draining: collector (python -m server run)...")
            coll = collector_drain(cfg, tmp, n, http)
            stored = influx_count(influx)

            log("InfluxDB bulk write (batches of 5,000, one connection)...")
            bulk = influx_bulk_rate(influx, fleet, n, base_ms)

            live = None
            if args.live_rate:
                log(f"steady live rate: {args.live_rate:,} msg/s for {args.live_seconds:.0f} s...")
                live = live_cost(cfg, tmp, broker, fleet, args.live_rate, args.live_seconds, base_ms + 2 * 10**7, http)

            manual = None
            if args.compare_ack:
                auto_cfg = write_setup(tmp, broker, influx, fleet, ack_after_write=False)
                log(f"again with ack_after_write = false: publishing {n:,} more (later timestamps)...")
                publish(broker, fleet, n, base_ms + 10**7)
                manual = collector_drain(auto_cfg, tmp, n, http)
                c = run_counter(broker, n)  # drain the counter's copy too, keeping the broker small
                c.wait(120)

    load_after = os.getloadavg()
    per100k = coll["cpu_drain"] / n * 100_000
    print()
    print(f"=== collector throughput: {n:,} queued QoS 1 telemetry messages, {len(fleet)} printers ===")
    print(f"(a) drain rate  counting paho subscriber: {counter['rate']:>9,.0f} msg/s  "
          f"({counter['cpu'] / n * 100_000:.2f} CPU-s per 100k incl. start-up)")
    print(f"                collector:                {coll['rate']:>9,.0f} msg/s  "
          f"= {coll['rate'] / counter['rate'] * 100:.0f} % of the counting subscriber (target >= 75 %)")
    print(f"(b) InfluxDB bulk write rate:             {bulk:>9,.0f} points/s")
    print(f"(c) collector CPU per 100,000 messages:   {per100k:9.2f} CPU-s while draining (target <= 2.2); "
          f"whole process incl. start-up {coll['cpu_total']:.2f} CPU-s")
    print(f"    collector peak RSS (VmHWM):           {coll['peak_rss_mb']:9.1f} MB (target <= 120)")
    print(f"    stored in InfluxDB: {stored:,} of {n:,}; lost: {n - stored:,}; duplicates: {max(0, stored - n)}")
    if live:
        print(f"    at a steady {live['rate']:,} msg/s (live, not a backlog): {live['cpu_per_100k']:.2f} CPU-s per 100k "
              f"({live['core_share'] * 100:.0f} % of a core); {int(live['written']):,} of {live['sent']:,} written")
    if manual:
        print(f"    ack_after_write = false: {manual['rate']:,.0f} msg/s, "
              f"{manual['cpu_drain'] / n * 100_000:.2f} CPU-s per 100k, peak RSS {manual['peak_rss_mb']:.1f} MB")
    print(f"load average before {load_before[0]:.2f} / after {load_after[0]:.2f} (1-min), "
          f"{os.cpu_count()} CPUs shared with other work")
    return 0 if stored == n else 1


if __name__ == "__main__":
    sys.exit(main())

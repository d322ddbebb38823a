"""Footprint of the agent: resident memory, CPU per printer, sample-to-publish latency.

    python bench/agent_footprint.py [--mix octoprint=2,moonraker=2] [--interval 1.0] [--seconds 60]
                                    [--warmup 10] [--backlog 20000] [--printers 4 --mix ""]

Starts a private Mosquitto and the printers of ``--mix API=COUNT,...`` (default 2 OctoPrint + 2
Moonraker, issue #11; ``--mix ""`` gives ``--printers`` OctoPrint printers): OctoPrint virtual
printers and Moonraker in front of Klipper's host in batch mode are real servers
(tools/devkit/servers/); PrusaLink printers are the simulator's PrusaLink face, in this process
(no real PrusaLink runs here); Bambu printers are fake X1s behind TLS stand-in brokers
(bench/footprint_bambu.py). It runs the agent as a real process (`python -m agent run -c
FILE`, as systemd would) watching each printer every `--interval` seconds, and samples it from
/proc. The agent runs as deployed on a Pi: from its own virtual environment holding only
`pip install .[agent]` (what deploy/agent/install-agent.sh installs; made fresh in a temporary
folder), with the environment of deploy/agent/printfarm-agent.service. `--agent-python current`
runs it with this interpreter and environment instead (the development venv, with the server's
and the tests' packages beside it: about 1.5 MB more).

- resident memory: VmRSS of the agent process (peak and last sample over the window);
- CPU: (utime + stime) over the measuring window, as % of one core, divided by the printers;
- latency: a subscriber in this process stamps each message on arrival and subtracts the sample
  time inside it (`ts`). Same machine, same clock: no clock skew.
  * polled printers: poll -> publish, from telemetry (`ts` taken right after OctoPrint answered
    /api/job: it covers the rest of the poll, encoding, the publish, Mosquitto and delivery);
  * push printers (Moonraker, Bambu): change -> publish, from status messages. A driver in this process
    keeps each printer changing (a print that pauses, is resumed and completes, over and over);
    `ts` is taken when the client has merged the websocket frame that changed the state
    (microseconds after it arrived), so it covers the worker, encoding, publish and delivery.

Then, beside the targets, it drains a `--backlog` of queued messages from an on-disk outbox into
the same broker and prints the replay rate (what catching up after an outage costs).

Targets (issues #3, #11): RSS <= 40 MB, CPU <= 2 % of one core per printer, p95 <= 50 ms (each
kind of latency).
The machine's load (uptime) is printed beside the figures: other work inflates them.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devkit.servers import Klipper, Moonraker, Mosquitto, OctoPrint, klipper_gcode
from devkit.sim import SimClock, Simulator
from devkit.sim.server import PrinterSpec
from footprint_bambu import BambuBench

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "deploy" / "agent" / "printfarm-agent.service"
TICKS = os.sysconf("SC_CLK_TCK")
TARGETS = {"rss_mb": 40.0, "cpu_per_printer": 2.0, "p95_ms": 50.0}
DEFAULT_MIX = "octoprint=2,moonraker=2"


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


class OctoPrintBench:
    """One OctoPrint virtual printer; ``table`` gives its agent's [[printers]] keys."""

    def __init__(self, d: Path, i: int):
        self.server = OctoPrint(d / f"octoprint{i}").start()
        self.key = d / f"key-{i}"
        self.key.write_text(self.server.api_key)

    def table(self) -> list[str]:
        return ['type = "octoprint"', f'url = "{self.server.url}"', f'api_key_file = "{self.key}"']

    def stop(self) -> None:
        self.server.stop()


class PrusaLinkBench:
    """One simulated PrusaLink printer (v1 API, digest auth), printing a long job."""

    def __init__(self, d: Path, i: int):
        self.password = d / f"prusalink-{i}"
        self.password.write_text("bench-password")
        self.sim = Simulator([PrinterSpec(f"pl-{i}", api="prusalink")], "bench-password", SimClock(), auto=False).start()
        self.url = self.sim.url(f"pl-{i}")
        self.sim.printers[f"pl-{i}"].print_file(self.sim.clock.now(), "bench.gcode", b"G1 X1\n" * 200_000, None)

    def table(self) -> list[str]:
        return ['type = "prusalink"', f'url = "{self.url}"', f'password_file = "{self.password}"']

    def stop(self) -> None:
        self.sim.stop()


class MoonrakerBench:
    """Moonraker in front of Klipper's host (batch mode); ``drive`` keeps its state changing."""

    push = True

    def __init__(self, d: Path, i: int):
        self.server = Moonraker(d / f"moonraker{i}", Klipper(d / f"klipper{i}").start()).start()

    def table(self) -> list[str]:
        return ['type = "moonraker"', f'url = "{self.server.url}"']

    def drive(self, stop: threading.Event) -> None:
        """Print, pause (PAUSE in the file), resume, complete; again, until stopped."""
        server, n = self.server, 0
        while not stop.is_set():
            n += 1
            server.print_file(f"cycle-{n % 2}.gcode", klipper_gcode(2000, "PAUSE"))
            server.wait_for(lambda: server.status()["print_stats"]["state"] == "paused", 30, "paused")
            stop.wait(0.5)
            server.resume()
            server.wait_for(lambda: server.status()["print_stats"]["state"] == "complete", 30, "complete")
            stop.wait(0.5)

    def stop(self) -> None:
        self.server.stop()
        self.server.klipper.remove()


# printer API -> how the benchmark brings up one printer of it
BENCH_PRINTERS = {"octoprint": OctoPrintBench, "prusalink": PrusaLinkBench, "moonraker": MoonrakerBench,
                  "bambu": BambuBench}


def parse_mix(text: str | None, printers: int) -> list[str]:
    """'octoprint=2,prusalink=1' -> ['octoprint', 'octoprint', 'prusalink']."""
    if not text:
        return ["octoprint"] * printers
    mix = []
    for part in text.split(","):
        api, _, count = part.partition("=")
        if api not in BENCH_PRINTERS or not count.isdigit():
            raise SystemExit(f"--mix: {part!r}: use API=COUNT with API one of {', '.join(BENCH_PRINTERS)}")
        mix += [api] * int(count)
    return mix


def agent_config(d: Path, broker: Mosquitto, printers: list, interval: float) -> Path:
    lines = ['log_level = "WARNING"', "[agent]", 'id = "bench-pi"', 'site = "bench"',
             f'state_dir = "{d / "agent-state"}"',
             "[broker]", f'host = "{broker.host}"', f"port = {broker.port}"]
    for i, printer in enumerate(printers):
        lines += ["[[printers]]", f'id = "vp-{i}"', *printer.table(),
                  f"interval = {interval}", f"timeout = {min(interval, 2.0)}"]
    path = d / "agent.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class LatencyProbe:
    """Subscribes to every printer topic; records arrival minus sample time, in ms: telemetry of
    polled printers ("poll"), status of push printers ("push")."""

    def __init__(self, broker: Mosquitto, push_printers: set[str]):
        self.samples: dict[str, list[float]] = {"poll": [], "push": []}
        self.telemetry = 0
        self.recording = False
        self._push = push_printers
        self._decoder = msgspec.json.Decoder(dict)
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-probe")
        self.client.on_connect = lambda c, *a: c.subscribe("printfarm/v1/+/+/+", 1)
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg):
        arrived = time.time() * 1000
        if not self.recording:
            return
        printer, channel = msg.topic.split("/")[3:5]
        push = printer in self._push
        self.telemetry += channel == "telemetry"
        if (channel, push) in (("telemetry", False), ("status", True)):
            self.samples["push" if push else "poll"].append(arrived - self._decoder.decode(msg.payload)["ts"])

    def stop(self):
        self.client.loop_stop()
        self.client.disconnect()


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if len(values) > 1 else values[0]


def run(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="agent-footprint-") as tmp:
        d = Path(tmp)
        print(f"load before: {load()}", flush=True)
        with Mosquitto(d / "mosquitto") as broker:
            printers = []
            try:
                for i, api in enumerate(args.mix):
                    printers.append(BENCH_PRINTERS[api](d, i))
                    print(f"  {api} {i + 1}/{len(args.mix)} up", flush=True)
                result = measure(args, d, broker, printers)
            finally:
                for printer in printers:
                    printer.stop()
            if args.backlog:
                result.update(replay_rate(d, broker, args.backlog))
            return result


def replay_rate(d: Path, broker: Mosquitto, n: int) -> dict:
    """Drain an on-disk outbox of n telemetry messages into the broker (Publisher in-process)."""
    from agent.config import BrokerConfig, OutboxConfig
    from agent.outbox import SQLiteOutbox
    from agent.publisher import Publisher

    print(f"replaying a backlog of {n} messages from the on-disk outbox", flush=True)
    box = SQLiteOutbox(d / "replay.sqlite3", OutboxConfig())
    payload = (b'{"v":1,"ts":1795716640836,"printer":"vp-1","site":"lab","seq":1,"state":"printing",'
               b'"temps":{"tool0":[200.1,200.0],"bed":[60.0,60.0]},"progress":12.5,"print_time":100.0,'
               b'"time_left":900.0,"file":"long.gcode","user":"operator"}')
    box.put_many([("printfarm/v1/lab/vp-1/telemetry", payload, False)] * n)
    publisher = Publisher("bench-replay", BrokerConfig(host=broker.host, port=broker.port), outbox=box)
    cpu0, t0 = time.process_time(), time.monotonic()
    publisher.start()
    while box.pending():
        time.sleep(0.02)
    seconds, cpu = time.monotonic() - t0, time.process_time() - cpu0
    publisher.stop()
    return {"backlog": n, "replay_rate": n / seconds, "replay_cpu_per_10k": cpu / n * 10_000}


def measure(args, d: Path, broker: Mosquitto, printers: list) -> dict:
    pushed = [(i, p) for i, p in enumerate(printers) if getattr(p, "push", False)]
    probe = LatencyProbe(broker, {f"vp-{i}" for i, _ in pushed})
    stop = threading.Event()
    drivers = [threading.Thread(target=p.drive, args=(stop,), daemon=True) for _, p in pushed]
    python, env = agent_runtime(args, d)
    proc = subprocess.Popen([python, "-m", "agent", "run", "-c", str(agent_config(d, broker, printers,
                            args.interval))], cwd=d, stdout=subprocess.DEVNULL, env=env,
                            stderr=open(d / "agent.log", "wb"))
    try:
        print(f"agent pid {proc.pid}; warming up {args.warmup:.0f} s", flush=True)
        for driver in drivers:
            driver.start()
        time.sleep(args.warmup)
        probe.recording = True
        cpu0, t0, rss = cpu_seconds(proc.pid), time.monotonic(), []
        while time.monotonic() - t0 < args.seconds:
            time.sleep(1)
            rss.append(rss_mb(proc.pid))
            elapsed = time.monotonic() - t0
            if int(elapsed) % 10 == 0:
                print(f"  {elapsed:4.0f} s  rss {rss[-1]:.1f} MB  telemetry {probe.telemetry}  "
                      f"changes {len(probe.samples['push'])}", flush=True)
            if proc.poll() is not None:
                raise RuntimeError(f"agent exited: {(d / 'agent.log').read_text()[-2000:]}")
        cpu = cpu_seconds(proc.pid) - cpu0
        window = time.monotonic() - t0
        probe.recording = False
    finally:
        stop.set()
        proc.terminate()
        proc.wait(15)
        probe.stop()
        for driver in drivers:
            driver.join(30)
    result = {"rss_mb": max(rss), "rss_last_mb": rss[-1], "cpu_total": 100 * cpu / window,
              "cpu_per_printer": 100 * cpu / window / len(args.mix), "telemetry": probe.telemetry,
              "expected": len(args.mix) * window / args.interval, "window": window}
    for kind, lat in probe.samples.items():
        if lat:
            result[kind] = {"p50": percentile(lat, 50), "p95": percentile(lat, 95), "max": max(lat), "n": len(lat)}
    result["p95_ms"] = max(result[k]["p95"] for k in ("poll", "push") if k in result)
    return result


def agent_runtime(args, d: Path) -> tuple[str, dict]:
    """The interpreter and environment the agent runs with (see the module's docstring)."""
    if args.agent_python == "current":
        return sys.executable, dict(os.environ)
    venv = d / "agent-venv"
    print("making the agent's own venv: pip install .[agent] (as deploy/agent/install-agent.sh)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"{REPO}[agent]"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return str(venv / "bin" / "python"), {**_minimal_env(), **unit_environment()}


def _minimal_env() -> dict:
    return {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}


def unit_environment() -> dict:
    """The Environment= settings of the agent's systemd unit."""
    env = {}
    for line in UNIT.read_text().splitlines():
        if line.startswith("Environment="):
            env.update(item.split("=", 1) for item in shlex.split(line[len("Environment="):]))
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--printers", type=int, default=4)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--backlog", type=int, default=20_000, help="outbox replay size (0: skip)")
    parser.add_argument("--agent-python", default="deployed", choices=("deployed", "current"),
                        help="run the agent from its own [agent]-only venv with the unit's environment "
                             "(default), or with this interpreter")
    parser.add_argument("--mix", default=DEFAULT_MIX, help=f"printers by API, e.g. octoprint=2,prusalink=1 "
                        f"(default {DEFAULT_MIX}; empty: --printers OctoPrint printers)")
    args = parser.parse_args()
    args.mix = parse_mix(args.mix, args.printers)
    r = run(args)
    ok = {k: r[k] <= v for k, v in TARGETS.items()}
    mix = ", ".join(f"{args.mix.count(api)} {api}" for api in dict.fromkeys(args.mix))
    print(f"\nagent footprint: {len(args.mix)} printers ({mix}), every {args.interval:g} s, "
          f"{r['window']:.0f} s measured")
    print(f"  resident memory   peak {r['rss_mb']:.1f} MB, last {r['rss_last_mb']:.1f} MB"
          f"   (target <= 40 MB: {'ok' if ok['rss_mb'] else 'MISSED'})")
    print(f"  CPU               {r['cpu_total']:.2f} % of one core in all, {r['cpu_per_printer']:.2f} % per printer"
          f"   (target <= 2 %: {'ok' if ok['cpu_per_printer'] else 'MISSED'})")
    for kind, label in (("poll", "poll-to-publish  "), ("push", "change-to-publish")):
        if kind in r:
            lat = r[kind]
            print(f"  {label} p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, max {lat['max']:.1f} ms "
                  f"({lat['n']} samples)   (target p95 <= 50 ms: {'ok' if lat['p95'] <= 50 else 'MISSED'})")
    print(f"  telemetry seen    {r['telemetry']} of ~{r['expected']:.0f} expected")
    if args.backlog:
        print(f"  outbox replay     {r['backlog']} queued messages at {r['replay_rate']:.0f} msg/s, "
              f"{r['replay_cpu_per_10k']:.2f} CPU-s per 10,000 (SQLite on this disk, local Mosquitto)")
    print(f"  agent runtime     {'its own [agent]-only venv, the unit environment' if args.agent_python == 'deployed' else 'this interpreter and environment'}")
    print(f"  machine load      {load()} (1/5/15 min)  cores {os.cpu_count()}")
    return 0 if all(ok.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Every hostile printer at once beside two good ones: does one bad printer cost only its own data?

    python bench/hostile_printers.py [--interval 2.0] [--seconds 20] [--agent-python current|deployed]

Starts a private Mosquitto, a real OctoPrint virtual printer and a real Moonraker in front of
Klipper's host (the good printers), and every hostile stand-in of tools/devkit/hostile (an
endless OctoPrint body, a Content-Length of 4 GiB, trickled headers and bodies, nested JSON, a
redirect to another host, a Moonraker frame announcing 4 GiB, endless fragments, a trickled
frame, notifications instead of answers, ever new fields, a Bambu packet announcing 255 MiB, a
nested Bambu report...). Then runs the agent as a real process (`python -m agent run -c FILE`)
watching all of them every ``--interval`` seconds, and measures, timing from the agent's
process start:

- peak resident memory of the agent (VmHWM from /proc): target < 60 MB;
- the good printers publish every poll: telemetry over the measuring window, each printer
  at least window / interval - 1 messages, and never an ``unreachable`` status;
- each hostile printer ``unreachable`` with a reason naming its bound within 3 intervals;
- SIGTERM ends the agent within 5 s.

Prints the figures; exits 1 on a miss. ``--agent-python deployed`` runs the agent from its own
venv holding only `pip install .[agent]` with the systemd unit's environment (as
bench/agent_footprint.py does; slower to set up); the default runs it with this interpreter.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from agent_footprint import MoonrakerBench, OctoPrintBench, agent_runtime, load

from devkit.hostile.rig import CASES, HostileRig
from devkit.servers import Mosquitto

TARGETS = {"rss_mb": 60.0, "unreachable_intervals": 3.0, "sigterm_s": 5.0}


def table(printer) -> dict:
    keys = {}
    for line in printer.table():
        key, _, value = line.partition(" = ")
        keys[key] = value.strip('"')
    return keys


def run(args) -> int:
    with tempfile.TemporaryDirectory(prefix="hostile-bench-") as tmp:
        d = Path(tmp)
        print(f"load before: {load()}", flush=True)
        with Mosquitto(d / "mosquitto") as broker:
            good = {"good-octoprint": OctoPrintBench(d, 0), "good-moonraker": MoonrakerBench(d, 1)}
            try:
                with HostileRig(d, broker, {name: table(p) for name, p in good.items()}) as rig:
                    return measure(args, d, rig, list(good))
            finally:
                for printer in good.values():
                    printer.stop()


def measure(args, d: Path, rig: HostileRig, good: list[str]) -> int:
    python, env = agent_runtime(args, d)
    if args.agent_python == "current":
        env = {**env, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    rig.start_agent(interval=args.interval, timeout=args.interval, python=python, env=env)
    started, interval = rig.started, args.interval
    reached: dict[str, float] = {}
    reasons: dict[str, str] = {}  # the reason given when it became unreachable (later ones may differ)
    deadline = started + max(args.seconds, 4 * interval)
    peak = 0.0
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if rig.proc.poll() is not None:
            print(f"the agent died:\n{rig.log.read_text()[-3000:]}")
            return 1
        peak = max(peak, rig.hwm_mb())
        for printer, (_, _, words) in CASES.items():
            status = rig.probe.status.get(printer)
            if printer not in reached and status and status["state"] == "unreachable" \
                    and words in (status.get("error") or ""):
                reached[printer] = time.monotonic() - started
                reasons[printer] = status["error"]
    # The good printers: every poll of the window after the first interval (start-up).
    window_start, window_end = started + 2 * interval, time.monotonic()
    expected = (window_end - window_start) / interval
    telemetry = {p: rig.probe.telemetry_between(p, window_start, window_end) for p in good}
    unreachable_good = [p for p in good for s in rig.probe.statuses.get(p, []) if s["state"] == "unreachable"]
    peak = max(peak, rig.hwm_mb())
    took = rig.sigterm(timeout=30)

    ok = True
    print(f"\nhostile printers: {len(CASES)} hostile beside {len(good)} good, every {interval:g} s, "
          f"{window_end - started:.0f} s watched")
    line_ok = peak < TARGETS["rss_mb"]
    ok &= line_ok
    print(f"  agent peak RSS     {peak:.1f} MB   (target < 60 MB: {'ok' if line_ok else 'MISSED'})")
    for p in good:
        line_ok = telemetry[p] >= expected - 1 and p not in unreachable_good
        ok &= line_ok
        print(f"  {p:<18} {telemetry[p]} telemetry of {expected:.1f} polls, "
              f"{'never' if p not in unreachable_good else 'WAS'} unreachable   "
              f"(target: every poll: {'ok' if line_ok else 'MISSED'})")
    limit = TARGETS["unreachable_intervals"] * interval
    for printer, (api, behaviour, words) in CASES.items():
        when = reached.get(printer)
        line_ok = when is not None and when <= limit
        ok &= line_ok
        reason = reasons.get(printer) or "-"
        shown = f"{when:4.1f} s ({when / interval:.1f} intervals)" if when is not None else "   never      "
        print(f"  {printer:<13} {api:<9} {behaviour:<15} unreachable after {shown}  "
              f"{'ok' if line_ok else 'MISSED'}: {reason[:90]}")
    line_ok = took < TARGETS["sigterm_s"]
    ok &= line_ok
    print(f"  SIGTERM -> exit    {took:.2f} s, exit code {rig.proc.returncode}   "
          f"(target < 5 s: {'ok' if line_ok else 'MISSED'})")
    print(f"  agent runtime      {'this interpreter' if args.agent_python == 'current' else 'its own [agent]-only venv'}")
    print(f"  machine load       {load()} (1/5/15 min)  cores {os.cpu_count()}")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to watch the agent")
    parser.add_argument("--agent-python", default="current", choices=("current", "deployed"))
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())

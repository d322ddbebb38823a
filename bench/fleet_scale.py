"""500 simulated printers polled every 5 s through the whole pipeline, with zero messages lost.

    python bench/fleet_scale.py                 # 500 printers, 25 agents x 20, 5 minutes
    python bench/fleet_scale.py --minutes 1     # a short run
    python bench/fleet_scale.py --cluster --kill-node-after 60   # on a three-node NATS cluster,
                                                # one node SIGKILLed 60 s into the window
    python bench/fleet_scale.py --cluster --kills 6 --printers 60 --interval 1
                                                # six node losses, each time the node leading
                                                # NATS's MQTT message stream (the worst one to
                                                # lose), each brought back before the next: the
                                                # live state's recovery per kill (and NATS's
                                                # election), p50/p95/max; target: every kill
                                                # <= 10 s (issue 26)

Everything runs as separate processes, as in production: the simulator (one process, one port
per printer), 25 agents (each a `printfarm-agent` with 20 printers, like 25 Raspberry Pis),
Mosquitto, the collector and InfluxDB. Every few seconds it prints the message rate and each
part's CPU (% of one core) and resident memory. At the end it stops the agents, waits for the
collector to drain, and compares what each agent sent (its per-printer `seq` counter counts
every message it published) with the points in InfluxDB.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psutil


from devkit.demo.roster import synthetic_fleet
from devkit.demo.stack import DB, Stack, StackOptions

MEASUREMENTS = ("telemetry", "state", "job")


def query(stack: Stack, q: str) -> list[dict]:
    data = urllib.parse.urlencode({"db": DB, "q": q}).encode()
    with urllib.request.urlopen(stack.influx_url + "/query", data=data, timeout=60) as reply:
        body = json.loads(reply.read())
    rows = []
    for result in body.get("results", []):
        if "error" in result:
            raise RuntimeError(result["error"])
        for series in result.get("series", []):
            for values in series["values"]:
                rows.append({**(series.get("tags") or {}), **dict(zip(series["columns"], values))})
    return rows


def stored_total(stack: Stack) -> int:
    total = 0
    for m in MEASUREMENTS:
        rows = query(stack, f'SELECT count("seq") FROM "{m}"')
        total += rows[0]["count"] if rows else 0
    return total


def per_printer(stack: Stack) -> tuple[dict[str, int], dict[str, int]]:
    """(highest seq, stored points) per printer, over all three printer measurements."""
    sent: dict[str, int] = {}
    stored: dict[str, int] = {}
    for m in MEASUREMENTS:
        for row in query(stack, f'SELECT max("seq"), count("seq") FROM "{m}" GROUP BY "printer"'):
            sent[row["printer"]] = max(sent.get(row["printer"], 0), row["max"])
            stored[row["printer"]] = stored.get(row["printer"], 0) + row["count"]
    return sent, stored


class Parts:
    """CPU and memory of each kind of process in the stack."""

    def __init__(self, stack: Stack):
        self.procs: dict[str, list[psutil.Process]] = {}
        for name, pid in stack.server_pids().items():
            kind = "agents" if name.startswith("agent-") else name
            self.procs.setdefault(kind, []).append(psutil.Process(pid))
        self.last = self._cpu()
        self.last_t = time.monotonic()

    def _cpu(self) -> dict[str, float]:
        out = {}
        for kind, procs in self.procs.items():
            total = 0.0
            for p in procs:
                try:
                    t = p.cpu_times()
                    total += t.user + t.system
                except psutil.NoSuchProcess:
                    pass
            out[kind] = total
        return out

    def sample(self) -> dict[str, tuple[float, float]]:
        """kind -> (% of one core since the last sample, resident MB summed over its processes)."""
        now, cpu = time.monotonic(), self._cpu()
        span = now - self.last_t
        out = {}
        for kind, procs in self.procs.items():
            rss = sum(_rss(p) for p in procs) / 2**20
            out[kind] = (100 * (cpu[kind] - self.last[kind]) / span, rss)
        self.last, self.last_t = cpu, now
        return out


def _rss(p: psutil.Process) -> int:
    try:
        return p.memory_info().rss
    except psutil.NoSuchProcess:
        return 0


def fmt(sample: dict[str, tuple[float, float]]) -> str:
    order = ("simulator", "agents", "mosquitto", "nats-n1", "nats-n2", "nats-n3", "collector", "influxd")
    return "  ".join(f"{k} {sample[k][0]:5.1f}% {sample[k][1]:6.0f}MB" for k in order if k in sample)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--printers", type=int, default=500)
    parser.add_argument("--per-agent", type=int, default=20)
    parser.add_argument("--interval", type=float, default=5.0, help="poll interval, seconds")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--speed", type=float, default=60.0, help="simulated time speed (more state changes)")
    parser.add_argument("--every", type=float, default=15.0, help="seconds between progress lines")
    parser.add_argument("--workdir", help="keep configs and logs here")
    parser.add_argument("--cluster", action="store_true", help="a three-node NATS cluster instead of one Mosquitto")
    parser.add_argument("--kill-node-after", type=float, metavar="S",
                        help="with --cluster: SIGKILL the first node S seconds into the window")
    parser.add_argument("--kills", type=int, default=0, metavar="N",
                        help="with --cluster: N node losses in a row (the $MQTT_msgs leader each time), "
                             "instead of the timed window; prints the recovery of each and p50/p95")
    parser.add_argument("--kill", choices=("leader", "sessions", "first"), default="leader",
                        help="which node --kills loses: the leader of $MQTT_msgs, of $MQTT_sess, or always the first")
    args = parser.parse_args()

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="fleet-scale-"))
    stack = Stack(workdir, synthetic_fleet(args.printers, args.per_agent),
                  StackOptions(speed=args.speed, start="10:00", interval=args.interval, per_agent=args.per_agent,
                               outages_per_day=2.0, cluster=args.cluster))
    print(method(args), flush=True)
    print(f"machine: {os.cpu_count()} cores; load before start: {os.getloadavg()}", flush=True)
    try:
        began = time.monotonic()
        stack.up(lambda text: print(f"[setup] {text}", flush=True))
        print(f"[setup] {args.printers} printers, {len(stack.agents)} agents, up in {time.monotonic() - began:.1f} s",
              flush=True)
        return kills(stack, args) if args.cluster and args.kills else measure(stack, args)
    finally:
        stack.down()


def method(args) -> str:
    agents = -(-args.printers // args.per_agent)
    return "\n".join([
        f"method: {args.printers} simulated printers (one simulator process, {args.speed:g}x simulated time, site",
        f"  outages), polled every {args.interval:g} s by {agents} agent processes of {args.per_agent} printers each,",
        "  through Mosquitto and the collector into InfluxDB, every part its own process started by this command.",
        "  Warm-up: until every printer has two messages stored. Then for "
        f"{args.minutes:g} min: stored points every {args.every:g} s",
        "  and each part's CPU (utime+stime over the interval, % of one core) and resident memory (psutil).",
        "  Then the agents are stopped (SIGTERM: they flush) and the collector is drained; what each agent sent",
        "  (the highest per-printer seq: it counts every message it published) is compared with the points",
        "  stored (telemetry + state + job per printer).",
        "  Target: 0 lost, every printer heard, no process died; exits 1 on a miss.",
    ])


def wait_polled(stack: Stack, messages: int = 2, timeout: float = 120.0) -> None:
    """Past the agents' start-up: every printer has ``messages`` messages stored."""
    deadline, short = time.monotonic() + timeout, -1
    while time.monotonic() < deadline:
        sent, stored = per_printer(stack)
        short = stack_printers(stack) - sum(n >= messages for n in stored.values())
        if short <= 0:
            return
        time.sleep(0.5)
    raise RuntimeError(f"{short} printer(s) had fewer than {messages} messages stored within {timeout:.0f} s")


def stack_printers(stack: Stack) -> int:
    return len((stack.fleet_state() or {"printers": []})["printers"])


def wait_all_reported(stack: Stack, timeout: float = 120.0) -> None:
    """Warm-up: measure from the moment every printer has been polled at least once."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fleet = stack.fleet_state() or {"printers": [{"state": "unknown"}]}
        unknown = sum(p["state"] == "unknown" for p in fleet["printers"])
        if not unknown:
            return
        time.sleep(1)
    raise RuntimeError(f"{unknown} printer(s) never reported within {timeout:.0f} s")


def kill_node(stack: Stack, parts: Parts) -> float:
    """SIGKILL the first NATS node (agents and the collector on it fail over); return the seconds
    until every printer's live state is newer than the kill."""
    node = stack.cluster.nodes[0]
    parts.procs.pop(f"nats-{node.node_name}", None)
    node.kill()
    killed = time.time()
    print(f"[kill] SIGKILLed NATS node {node.node_name}", flush=True)
    while time.time() - killed < 120:
        printers = (stack.fleet_state() or {"printers": []})["printers"]
        if printers and all((p["last_seen"] or 0) > killed * 1000 for p in printers):
            return time.time() - killed
        time.sleep(0.2)
    raise RuntimeError("the fleet's live state did not move on within 120 s of the node's loss")


TARGET_MAX = 10.0  # s from the kill until every printer's live state moved on: issue 26


def kills(stack: Stack, args) -> int:
    """Lose a node, time the live state's recovery, bring the node back; ``args.kills`` times."""
    wait_all_reported(stack)
    cluster, times = stack.cluster, []
    cluster.ready_timeout = 60.0
    for i in range(args.kills):
        stream = {"leader": "$MQTT_msgs", "sessions": "$MQTT_sess"}.get(args.kill)
        node = cluster.leader_of(stream) if stream else None
        node = node or cluster.nodes[0]
        led = [name for name in ("$MQTT_msgs", "$MQTT_sess", "$MQTT_rmsgs") if cluster.leader_of(name) is node]
        node.kill()
        killed = time.time()
        fresh: dict[str, float] = {}
        recovered = wait_fresh(stack, killed, fresh=fresh)
        times.append(recovered)
        per_agent: dict[str, float] = {}
        for (agent, _), took in fresh.items():
            per_agent[agent] = max(per_agent.get(agent, 0.0), took)
        print(f"[kill {i + 1}] per agent: " + ", ".join(f"{a} {t:.1f} s" for a, t in per_agent.items()), flush=True)
        elected = ", ".join(f"{name} {elected_after(cluster, name, killed):.1f} s" for name in led) or "none needed"
        print(f"[kill {i + 1}] {node.node_name} (leading {', '.join(led) or 'no MQTT stream'}): every printer's "
              f"live state moved on {recovered:.1f} s after the kill; new leaders elected: {elected}; "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
        node.start()
        try:
            cluster.wait_ready()
        except RuntimeError as exc:  # seen with NATS 2.9.10 after several losses: a replica never current
            print(f"[kill {i + 1}] {node.node_name} back but not healthy: {exc}; going on", flush=True)
        cluster.spread_leaders()  # as a deploy's step after a node's return (docs/scaling.md)
        wait_fresh(stack, time.time())  # the fleet flows again before the next loss
    ranked = sorted(times)
    p50, p95 = ranked[len(ranked) // 2], ranked[min(len(ranked) - 1, round(0.95 * (len(ranked) - 1)))]
    print("\n== node-loss recovery ==")
    print(f"{args.kills} kills of the { {'leader': '$MQTT_msgs leader', 'sessions': '$MQTT_sess leader'}.get(args.kill, 'first node')}, "
          f"{args.printers} printers polled every {args.interval:g} s")
    print("recovery (s): " + ", ".join(f"{t:.1f}" for t in times))
    print(f"p50 {p50:.1f} s, p95 {p95:.1f} s, max {ranked[-1]:.1f} s (one poll interval included)")
    met = ranked[-1] <= TARGET_MAX
    print(f"target: every kill <= {TARGET_MAX:g} s: {'met' if met else 'MISSED'}")
    return 0 if met else 1


def elected_after(cluster, stream: str, since: float) -> float:
    """Seconds from ``since`` to the first 'new stream leader' line for ``stream`` in the
    nodes' logs (NATS's Raft election: the floor under any recovery); nan if none."""
    marker = f"new stream leader for '$G > {stream}'"
    found = []
    for node in cluster.nodes:
        for line in node.log_path.read_text(errors="replace").splitlines():
            if marker in line:
                stamp = datetime.datetime.strptime(" ".join(line.split()[1:3]), "%Y/%m/%d %H:%M:%S.%f")
                if stamp.timestamp() > since:
                    found.append(stamp.timestamp() - since)
    return min(found, default=float("nan"))


def wait_fresh(stack: Stack, since: float, timeout: float = 120.0, fresh: dict | None = None) -> float:
    """Seconds until every printer's live state was sampled after ``since``; ``fresh`` gets
    (agent, printer) -> seconds until its own state moved on."""
    fresh = {} if fresh is None else fresh
    while time.time() - since < timeout:
        printers = (stack.fleet_state() or {"printers": []})["printers"]
        for p in printers:
            if (p["last_seen"] or 0) > since * 1000:
                fresh.setdefault((p["agent"], p["printer"]), time.time() - since)
        if printers and len(fresh) >= len(printers):
            return time.time() - since
        time.sleep(0.1)
    raise RuntimeError(f"the fleet's live state did not move on within {timeout:.0f} s")


def measure(stack: Stack, args) -> int:
    wait_all_reported(stack)
    wait_polled(stack)
    parts = Parts(stack)
    start, start_count = time.monotonic(), stored_total(stack)
    end = start + args.minutes * 60
    samples, last_count, last_t = [], start_count, start
    kill_at = start + args.kill_node_after if args.cluster and args.kill_node_after is not None else None
    recovered = None
    while time.monotonic() < end:
        if kill_at is not None and time.monotonic() >= kill_at:
            recovered = kill_node(stack, parts)
            kill_at = None
        time.sleep(min(args.every, max(end - time.monotonic(), 0.1)))
        count, now = stored_total(stack), time.monotonic()
        sample = parts.sample()
        samples.append(sample)
        rate = (count - last_count) / (now - last_t)
        dead = stack.children.dead()
        print(f"[{now - start:5.0f} s] stored {count:8d} points  {rate:6.1f}/s  {fmt(sample)}"
              + (f"  DEAD: {dead}" if dead else ""), flush=True)
        last_count, last_t = count, now
    elapsed = time.monotonic() - start
    window_points = stored_total(stack) - start_count

    print("[drain] stopping the agents, waiting for the collector to store everything", flush=True)
    for name in [n for n, _ in stack.children.procs if n.startswith("agent-")]:
        stack.children.stop(name)
    sent, stored = per_printer(stack)
    deadline, stable_since, last = time.monotonic() + 60, time.monotonic(), -1
    while time.monotonic() < deadline:
        sent, stored = per_printer(stack)
        total = sum(stored.values())
        if total == sum(sent.values()):
            break
        if total != last:
            last, stable_since = total, time.monotonic()
        elif time.monotonic() - stable_since > 10:
            break
        time.sleep(1)
    total_sent, total_stored = sum(sent.values()), sum(stored.values())
    missing = {p: sent[p] - stored.get(p, 0) for p in sent if sent[p] != stored.get(p, 0)}
    silent = args.printers - len(sent)

    print("\n== fleet_scale results ==")
    print(f"printers {args.printers} in {len(stack.agents)} agents, poll every {args.interval:g} s, "
          f"measured {elapsed / 60:.1f} min; load average now {os.getloadavg()}")
    print(f"messages sent by agents (sum of per-printer seq): {total_sent}")
    print(f"points stored in InfluxDB (telemetry+state+job):  {total_stored}")
    print(f"lost: {total_sent - total_stored}  "
          f"(printers with a difference: {len(missing)}; printers never heard: {silent})")
    if recovered is not None:
        print(f"node killed: every printer's live state moved on {recovered:.1f} s after the kill")
    print(f"stored rate during the window: {window_points / elapsed:.1f} points/s "
          f"(expected ≈ {args.printers / args.interval:.0f} telemetry/s + state changes and job events)")
    print("mean CPU (% of one core) and peak resident memory of each part:")
    for kind in ("simulator", "agents", "mosquitto", "nats-n1", "nats-n2", "nats-n3", "collector", "influxd"):
        if any(kind not in s for s in samples):
            continue  # not in this stack, or killed during the window
        cpu = sum(s[kind][0] for s in samples) / len(samples)
        rss = max(s[kind][1] for s in samples)
        extra = f" ({len(parts.procs['agents'])} processes, {rss / len(parts.procs['agents']):.0f} MB each)" \
            if kind == "agents" else ""
        print(f"  {kind:10s} {cpu:6.1f}% {rss:7.0f} MB{extra}")
    if missing:
        print("first differences:", dict(list(missing.items())[:10]))
    dead = stack.children.dead()
    met = total_sent == total_stored and not silent and not dead
    print(f"target: 0 lost, every printer heard, no process died: {'met' if met else 'MISSED'}"
          + (f" (died: {dead})" if dead else ""))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

"""Live state, alerts and reports on a NATS cluster with two collectors, through the loss of a node
and of a collector (issue 26): each collector follows every printer (not only its share of the
stream), one alert goes out per incident and its recovery notice comes from the survivor; jobs
that start and end while a node is lost (agents replaying from their outboxes) are each counted
once by the report."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import requests

from devkit.pipeline import DB, agent_config_for, start_agent, wait_for, write_inventory
from devkit.receivers import WebhookReceiver
from devkit.servers import make_gcode
from devkit.servers.nats import NatsCluster
from devkit.sim import SimClock, Simulator
from devkit.sim.server import PrinterSpec
from server.inventory import load as load_inventory
from server.reports.generate import make_report
from server.reports.periods import Period
from server.store.influx import InfluxHTTP
from tests.integration.collector_helpers import CollectorProcess
from tests.integration.job_counts import assert_each_job_started_and_ended_once, ends, events_per_job

pytestmark = pytest.mark.integration

SITES = ("north", "south", "east")
PER_AGENT = 3
# s. Losing the $MQTT_msgs leader costs NATS 2.9 a Raft election of 4-9 s (random, constants);
# the agents' publishes flow again 0.5-2 s after it (docs/scaling.md): 5.5-9.7 s in six runs,
# and bench/fleet_scale.py --kills measures issue 26's 10 s over many kills. A single run here
# may draw a 9 s election, hence 12 s (before the warm-up and CONNECT fixes: up to 19 s).
LIVE_WITHIN = 12.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with NatsCluster(tmp_path_factory.mktemp("nats")) as nats:
        nats.spread_leaders()  # as docs/scaling.md's recipe: one MQTT stream leader per node
        yield nats


def alerts_toml(hook: WebhookReceiver) -> str:
    return f"""
[alerts]
tick_interval = 0.2
cooldown = 0
[alerts.receivers.hook]
type = "webhook"
url = "{hook.url}"
retry_min = 0.2
retry_max = 0.5
[alerts.rules.printer_down]
grace = 1.0
"""


def fleet_of(collector) -> dict[str, dict]:
    printers = requests.get(f"http://127.0.0.1:{collector.port}/api/fleet", timeout=5).json()["printers"]
    return {p["printer"]: p for p in printers}


def fresh(collector, printers, since: float) -> bool:
    """This collector alone has every printer's live state sampled after ``since``."""
    fleet = fleet_of(collector)
    return all((fleet.get(pid, {}).get("last_seen") or 0) > since * 1000 for pid in printers)


def mqtt_side_set_up(node) -> bool:
    """NATS logged setting up MQTT (sessions, retained messages) since this process started."""
    return any(line.startswith(f"[{node.proc.pid}]") and "Creating MQTT streams" in line
               for line in node.log_path.read_text(errors="replace").splitlines())


def lease_holder(collectors):
    holders = [c for c in collectors if c.health().get("alert_lease")]
    return holders[0] if len(holders) == 1 else None


def test_two_collectors_alert_once_and_follow_every_printer_through_a_node_and_a_collector_loss(
        tmp_path, cluster, influxdb):
    hook = WebhookReceiver()
    printers = {f"{site}-{i}": site for site in SITES for i in range(PER_AGENT)}
    inventory = write_inventory(tmp_path / "fleet.toml", printers)
    sim = Simulator([PrinterSpec(pid, site=site) for pid, site in printers.items()], "KEY0123456789",
                    SimClock(speed=1.0), auto=False).start()
    collectors = [CollectorProcess(tmp_path, name, cluster.nodes[0], influxdb, inventory,
                                   nats_urls=cluster.nats_urls, extra=alerts_toml(hook)) for name in ("a", "b")]
    agents, killed = [], None
    try:
        for c in collectors:
            c.start()
        agents = _agents(tmp_path, cluster, sim, printers)
        started = time.time()
        # Each collector, not only the two together, has every printer: the live feed is whole.
        wait_for(lambda: all(fresh(c, printers, started) for c in collectors), 30, "every printer in each collector")
        holder = wait_for(lambda: lease_holder(collectors), 20, "one collector to hold the alert lease")
        survivor = next(c for c in collectors if c is not holder)

        first, second = "north-0", "south-1"
        sim.printers[first].disconnect(sim.clock.now())
        wait_for(lambda: _notes(hook, first, "firing"), 20, f"the alert for {first}")

        killed = cluster.leader_of("$MQTT_msgs") or cluster.nodes[0]  # the worst node to lose
        holder.kill()
        killed.kill()
        lost_at = time.time()
        sim.printers[first].connect(sim.clock.now())  # recovers while the alert sender is gone
        sim.printers[second].disconnect(sim.clock.now())  # a new incident meanwhile

        wait_for(lambda: fresh(survivor, printers, lost_at), 30, "the survivor's live state to move on")
        live_after = time.time() - lost_at
        wait_for(lambda: _notes(hook, first, "resolved") and _notes(hook, second, "firing"), 30,
                 "the recovery notice and the new incident's alert from the survivor")
        sim.printers[second].connect(sim.clock.now())
        wait_for(lambda: _notes(hook, second, "resolved"), 20, f"{second}'s recovery notice")
        print(f"node {killed.node_name} (leader of $MQTT_msgs) and the alert-sending collector killed: the "
              f"survivor's live state moved on after {live_after:.1f} s; its notices came "
              f"{', '.join(f'{t - lost_at:.1f}' for t in hook.arrivals[1:])} s after the kill")

        sent = Counter((n["printer"], n["rule"], n["kind"]) for n in hook.notes if n["rule"] == "printer_down")
        assert sent == {(first, "printer_down", "firing"): 1, (first, "printer_down", "resolved"): 1,
                        (second, "printer_down", "firing"): 1, (second, "printer_down", "resolved"): 1}
        assert live_after <= LIVE_WITHIN
        assert fleet_of(survivor)[second]["state"] != "offline"
    finally:
        for agent in agents:
            agent.stop()
        sim.stop()
        for c in collectors:
            c.stop()
        hook.close()
        if killed is not None:
            killed.start()  # the module's next test gets three nodes
            cluster.wait_ready()


def test_jobs_through_a_node_loss_are_each_counted_once_by_the_report(tmp_path, cluster, influxdb):
    printers = {f"{site}-{i}": site for site in SITES for i in range(PER_AGENT)}
    inventory = write_inventory(tmp_path / "fleet.toml", printers)
    sim = Simulator([PrinterSpec(pid, site=site) for pid, site in printers.items()], "KEY0123456789",
                    SimClock(speed=1.0), auto=False).start()
    collectors = [CollectorProcess(tmp_path, name, cluster.nodes[0], influxdb, inventory,
                                   nats_urls=cluster.nats_urls) for name in ("a", "b")]
    gcode = make_gcode(40).encode()  # about 40 moves at 0.1 s: a 4 s job
    failing = [f"{site}-0" for site in SITES]
    agents, killed = [], None
    began = int(time.time() * 1000)
    # The node the previous test brought back has its MQTT side set up before any agent fails
    # over to it, or agents would wait out JetStream requests on it during this loss.
    assert all(mqtt_side_set_up(node) for node in cluster.nodes)
    try:
        for c in collectors:
            c.start()
        agents = _agents(tmp_path, cluster, sim, printers)
        wait_for(lambda: fresh(collectors[0], printers, time.time() - 1), 30, "every printer polled")

        def start_jobs(label: str) -> None:
            for pid in printers:
                sim.printers[pid].print_file(sim.clock.now(), f"{label}-{pid}.gcode", gcode, "anna", pace=0.1)
        start_jobs("first")
        wait_for(lambda: all(p["state"] == "printing" for p in fleet_of(collectors[0]).values()), 20,
                 "every printer seen printing")
        killed = cluster.leader_of("$MQTT_msgs") or cluster.nodes[0]
        killed.kill()  # the jobs end (or fail) while the cluster elects new leaders
        for pid in failing:
            sim.printers[pid].fail(sim.clock.now(), "Thermal runaway")
        wait_for(lambda: all(sim.printers[pid].phase in ("idle", "error") for pid in printers), 30, "the first jobs' ends")
        for pid in failing:
            sim.printers[pid].connect(sim.clock.now())  # back from the error, for the second job
        wait_for(lambda: all(sim.printers[pid].phase == "idle" for pid in printers), 30, "every printer ready")
        # Each first job's end stored, so seen by its agent: an agent slowed so much that it never
        # saw a printer idle between two jobs rightly counts the first as failed (replaced).
        wait_for(lambda: sum(ends(c) for c in events_per_job(influxdb).values()) >= len(printers), 60,
                 "the first jobs' ends stored", interval=0.5)
        start_jobs("second")
        wait_for(lambda: all(sim.printers[pid].phase == "idle" for pid in printers), 30, "the second jobs' ends")
        expected = 2 * len(printers)
        try:
            wait_for(lambda: sum(sum(c.values()) for c in events_per_job(influxdb).values()) >= 2 * expected, 60,
                     "every job's start and end in InfluxDB", interval=0.5)
        except AssertionError:
            print("stored:", {job: dict(c) for job, c in events_per_job(influxdb).items()})
            raise
    finally:
        for agent in agents:
            agent.stop()
        sim.stop()
        for c in collectors:
            c.stop()
        if killed is not None:
            killed.start()
            cluster.wait_ready()
    assert_each_job_started_and_ended_once(events_per_job(influxdb))
    now = int(time.time() * 1000)
    report = make_report(InfluxHTTP(influxdb.url, DB), load_inventory(inventory), Period(began, now, "t"),
                         now_ms=now, compare=False)
    outcomes = Counter(job.outcome for job in report.jobs)
    assert outcomes == {"done": expected - len(failing), "failed": len(failing)}, \
        [(job.printer, job.file, job.outcome, job.error) for job in report.jobs]
    assert len({(job.printer, job.started) for job in report.jobs}) == expected


def _notes(hook: WebhookReceiver, printer: str, kind: str) -> list[dict]:
    return [n for n in hook.of("printer_down", kind) if n["printer"] == printer]


def _agents(tmp_path, cluster, sim, printers):
    """One agent per site, each listing the nodes from another first: one sits on every node."""
    agents = []
    ports = cluster.mqtt_ports
    for k, site in enumerate(SITES):
        cfg = agent_config_for(tmp_path, cluster.nodes[k], [(p, sim.url(p), sim.api_key)
                                                              for p, s in printers.items() if s == site],
                               site=site, agent_id=f"pi-{site}", interval=0.5, timeout=0.5)
        cfg.broker.addresses = [("127.0.0.1", port) for port in ports[k:] + ports[:k]]
        cfg.broker.ack_timeout = 1.0  # as docs/scaling.md advises on a cluster
        agents.append(start_agent(cfg))
    return agents

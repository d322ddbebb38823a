"""A private NATS cluster (Debian package ``nats-server``): JetStream and MQTT on every node.

Each node listens on four loopback ports: NATS clients, cluster routes, MQTT and HTTP
monitoring (its ``/healthz`` tells when JetStream is ready, which is when MQTT clients may
connect: NATS keeps MQTT sessions, retained messages and QoS 1 messages in JetStream).

    with NatsCluster(tmpdir) as cluster:
        cluster.mqtt_ports        # one per node, for agents and MQTT subscribers
        cluster.nats_urls         # for the collector's JetStream consumer
        cluster.nodes[1].kill()   # lose a node; .start() brings it back with its data

A node's ports are fixed for its life, so a killed node comes back where the others expect
its routes.
"""

from __future__ import annotations

import time
from pathlib import Path

import requests

from common.protocol import MAX_PACKET_BYTES
from devkit.servers.mosquitto import mqtt_connack
from devkit.servers.ports import free_ports
from devkit.servers.process import Server, find_binary

CLUSTER_NAME = "printfarm"
# Where NATS keeps MQTT QoS 1 messages, sessions and retained messages (server/mqtt.go).
MQTT_STREAMS = ("$MQTT_msgs", "$MQTT_sess", "$MQTT_rmsgs")

NODE_CONFIG = """\
# written by devkit.servers.nats
server_name: {name}
listen: {host}:{client_port}
http: {host}:{http_port}
# MQTT packets above the protocol's cap are refused, as on the shipped Mosquitto.
max_payload: {max_payload}
jetstream {{ store_dir: "{dir}/jetstream" }}
cluster {{
  name: {cluster}
  listen: {host}:{cluster_port}
  routes: [{routes}]
}}
mqtt {{
  listen: {host}:{port}
{mqtt_extra}}}
"""


class NatsNode(Server):
    """One member of a cluster; ``port`` is its MQTT listener."""

    name = "nats"
    start_timeout = 30.0

    def __init__(self, tmpdir, name: str, ports: tuple[int, int, int, int], routes: list[int],
                 mqtt_extra: str = "") -> None:
        self.client_port, self.cluster_port, self.http_port, mqtt_port = ports
        super().__init__(tmpdir, mqtt_port)
        self._auto_port = False  # the other nodes know our route port: it never changes
        self.node_name = name
        self.routes = routes
        self.mqtt_extra = mqtt_extra
        self.config_path = self.dir / "nats.conf"
        self.binary = find_binary("nats-server", "apt-get install -y nats-server", ("/usr/sbin/nats-server",))

    @property
    def nats_url(self) -> str:
        return f"nats://{self.host}:{self.client_port}"

    def _prepare(self) -> None:
        routes = ", ".join(f"nats-route://{self.host}:{p}" for p in self.routes)
        self.config_path.write_text(NODE_CONFIG.format(
            name=self.node_name, host=self.host, client_port=self.client_port, http_port=self.http_port,
            cluster=CLUSTER_NAME, cluster_port=self.cluster_port, routes=routes, port=self.port,
            dir=self.dir, max_payload=MAX_PACKET_BYTES, mqtt_extra=self.mqtt_extra))

    def _command(self) -> list[str]:
        return [self.binary, "-c", str(self.config_path)]

    def _answers(self) -> bool:
        # Answers once it serves clients; JetStream's readiness is the cluster's to judge.
        return requests.get(f"http://{self.host}:{self.http_port}/healthz", timeout=1).status_code in (200, 503)

    def jetstream_ready(self) -> bool:
        try:
            return requests.get(f"http://{self.host}:{self.http_port}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False


class NatsCluster:
    """Three (or ``size``) nodes routed to each other, started together, ready when every
    node's JetStream is."""

    def __init__(self, tmpdir, size: int = 3, mqtt_extra: str = "", ready_timeout: float = 60.0) -> None:
        base = Path(tmpdir)
        ports = free_ports(4 * size)
        groups = [tuple(ports[i * 4:(i + 1) * 4]) for i in range(size)]
        cluster_ports = [g[1] for g in groups]
        self.nodes = [NatsNode(base / f"n{i + 1}", f"n{i + 1}", g, cluster_ports, mqtt_extra)
                      for i, g in enumerate(groups)]
        self.ready_timeout = ready_timeout

    @property
    def mqtt_ports(self) -> list[int]:
        return [n.port for n in self.nodes]

    @property
    def nats_urls(self) -> list[str]:
        return [n.nats_url for n in self.nodes]

    def start(self) -> "NatsCluster":
        for node in self.nodes:
            node.start()
        self.wait_ready()
        return self

    def wait_ready(self, nodes: list[NatsNode] | None = None) -> None:
        deadline = time.monotonic() + self.ready_timeout
        pending = [n for n in (nodes or self.nodes) if n.running]
        while pending and time.monotonic() < deadline:
            pending = [n for n in pending if not n.jetstream_ready()]
            time.sleep(0.1)
        if pending:
            raise RuntimeError(f"NATS JetStream not ready on {[n.node_name for n in pending]} "
                               f"within {self.ready_timeout:.0f} s; see {pending[0].log_path}")
        for node in nodes or self.nodes:
            if node.running:
                self._warm_mqtt(node, deadline)

    def _warm_mqtt(self, node: NatsNode, deadline: float) -> None:
        """One MQTT connection, so the node sets up its MQTT side now: NATS does it at a node's
        first MQTT connection (it makes the MQTT streams on the cluster's first, which a
        collector's consumer needs), and that takes the streams' leaders: done later, by agents
        failing over to a node that came back, it would wait for the elections the loss of
        another node started, 4 s per JetStream request (docs/scaling.md)."""
        while not _answers_mqtt(node):
            if time.monotonic() > deadline:
                raise RuntimeError(f"NATS {node.node_name} did not accept an MQTT connection; see {node.log_path}")
            time.sleep(0.2)

    def leader_of(self, stream: str) -> "NatsNode | None":
        """The node leading ``stream``'s Raft group, as a running node's monitoring tells it."""
        for node in self.nodes:
            if not node.running:
                continue
            try:
                jsz = requests.get(f"http://{node.host}:{node.http_port}/jsz?accounts=true&streams=true",
                                   timeout=2).json()
            except (requests.RequestException, ValueError):
                continue
            for account in jsz.get("account_details") or []:
                for detail in account.get("stream_detail") or []:
                    if detail.get("name") == stream:
                        leader = (detail.get("cluster") or {}).get("leader")
                        return next((n for n in self.nodes if n.node_name == leader), None)
        return None

    def spread_leaders(self, streams: tuple[str, ...] = MQTT_STREAMS, tries: int = 12) -> dict[str, str]:
        """Ask stream leaders to step down until no node leads two of ``streams``, so the loss of
        one node stalls one MQTT stream, not two or three at once (docs/scaling.md). NATS 2.9
        picks the new leader itself, hence the retries; returns stream -> leading node."""
        leaders: dict[str, str] = {}
        for _ in range(tries):
            leaders = {name: getattr(self.leader_of(name), "node_name", "") for name in streams}
            twice = [name for i, name in enumerate(streams) if leaders[name] in
                     [leaders[other] for other in streams[:i]]]  # leaves one stream per node
            if not twice and all(leaders.values()):
                return leaders
            for name in twice:
                _step_down([n.nats_url for n in self.nodes if n.running], name)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(self.leader_of(n) is None for n in twice):
                time.sleep(0.1)
        return leaders

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> "NatsCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _answers_mqtt(node: NatsNode) -> bool:
    try:
        return mqtt_connack(node.host, node.port, timeout=10)
    except OSError:
        return False


def _step_down(urls: list[str], stream: str) -> None:
    """``nats stream cluster step-down STREAM``: JetStream's API request, from any node."""
    import asyncio

    import nats  # nats-py: a server dependency, installed with the devkit

    async def ask() -> None:
        nc = await nats.connect(servers=[u for u in urls], connect_timeout=2, allow_reconnect=False)
        try:
            await nc.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}", b"", timeout=5)
        except nats.errors.Error:
            pass  # no leader right now, or it answered late: the caller looks again
        finally:
            await nc.close()

    asyncio.run(ask())

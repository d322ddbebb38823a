"""The Moonraker client's connection thread against a scripted socket: headers, change
reporting, silence, reconnects, and the config table."""

import queue
import threading
import time

import pytest

from agent import config as agent_config
from agent.printers.jsonrpc_ws import Closed, RpcError, Timeout
from agent.printers.moonraker import Moonraker, MoonrakerSettings, websocket_url
from common.configkit import ConfigError, Secret
from devkit.pipeline import wait_for

READY = {"print_stats": {"state": "standby", "filename": ""}, "webhooks": {"state": "ready"}}


class FakeSocket:
    """Answers the calls the client makes at connect; ``frames`` feeds what Moonraker pushes."""

    pending = ()  # notifications held during a call (RpcSocket's): none, calls answer at once
    arrived = None  # so every frame counts as just come

    def __init__(self, url, headers, timeout, klippy="ready"):
        self.url, self.headers, self.klippy = url, headers, klippy
        self.frames: queue.Queue = queue.Queue()
        self.pings = 0
        self.closed = threading.Event()

    def call(self, method, params=None):
        answers = {"server.connection.identify": {}, "server.info": {"klippy_state": self.klippy},
                   "server.history.list": {"jobs": []}, "printer.objects.subscribe": {"status": READY},
                   "printer.info": {"state_message": "Printer is halted"},
                   "machine.proc_stats": {"moonraker_stats": [{"time": time.time(), "cpu_usage": 1.0}]}}
        if method not in answers:  # as Moonraker answers a method it does not know
            raise RpcError(method, {"code": -32601, "message": f"Method not found: {method}"})
        return answers[method]

    def receive(self, wait):
        if self.closed.is_set():
            raise Closed("closed")
        try:
            frame = self.frames.get(timeout=wait)
        except queue.Empty:
            return None
        if frame == "close":
            raise Closed("the server closed the websocket")
        return frame

    def ping(self):
        self.pings += 1

    def drop_pending(self, method):
        pass

    def close(self):  # like the real one, it wakes a reader at once
        self.closed.set()
        self.frames.put("close")


class Server:
    """Hands out a FakeSocket per connect, or refuses while ``down``."""

    def __init__(self):
        self.sockets: list[FakeSocket] = []
        self.down = False

    def connect(self, url, headers, timeout):
        if self.down:
            raise ConnectionRefusedError(111, "Connection refused")
        self.sockets.append(FakeSocket(url, headers, timeout))
        return self.sockets[-1]


@pytest.fixture
def server():
    return Server()


def started(server, interval=1.0, key=None):
    changes = []
    client = Moonraker("http://voron.local:7125", key, interval=interval, timeout=0.5, connect=server.connect)
    client.start(lambda: changes.append(client.poll()))
    return client, changes


def status(**objects):
    return {"jsonrpc": "2.0", "method": "notify_status_update", "params": [objects, 1.0]}


def test_the_websocket_url_and_api_key_header_come_from_the_config(server):
    client, _ = started(server, key=Secret("k3y"))
    try:
        assert server.sockets[0].url == "ws://voron.local:7125/websocket"
        assert server.sockets[0].headers == {"X-Api-Key": "k3y"}
    finally:
        client.close()
    assert websocket_url("https://p.example/moonraker/") == "wss://p.example/moonraker/websocket"


def test_start_returns_with_the_printer_seen_and_changed_fires_only_when_the_state_moves(server):
    client, changes = started(server)
    try:
        assert client.poll().state == "idle" and [c.state for c in changes] == ["idle"]
        sock = server.sockets[0]
        sock.frames.put(status(print_stats={"state": "printing", "filename": "a.gcode"}))
        wait_for(lambda: len(changes) == 2, 2, "a change")
        for progress in (0.1, 0.2, 0.3):  # progress alone leaves with telemetry, not at once
            sock.frames.put(status(virtual_sdcard={"progress": progress}))
        sock.frames.put(status(print_stats={"state": "paused"}))
        wait_for(lambda: len(changes) == 3, 2, "the pause")
        assert [c.state for c in changes] == ["idle", "printing", "paused"]
        assert client.poll().progress == 30.0
    finally:
        client.close()


def test_a_silent_connection_is_unreachable_within_two_intervals_and_pinged_before(server):
    client, changes = started(server, interval=0.2)
    try:
        wait_for(lambda: changes[-1].state == "unreachable", 0.4 + 0.2, "silence noticed")
        assert changes[-1].error.startswith("no answer within the timeout")
        assert server.sockets[0].pings >= 2
    finally:
        client.close()


def test_a_closed_connection_is_unreachable_at_once_and_the_client_reconnects(server):
    client, changes = started(server, interval=5.0)
    try:
        server.down = True
        server.sockets[0].frames.put("close")
        wait_for(lambda: changes[-1].state == "unreachable", 0.5, "the loss")
        assert changes[-1].error == "connection lost"
        wait_for(lambda: changes[-1].error == "connection refused", 2, "the refused reconnect")
        server.down = False
        wait_for(lambda: changes[-1].state == "idle", 5, "the reconnect after backoff")
        assert len(server.sockets) == 2
    finally:
        client.close()


def test_klipper_restarting_is_followed_and_resubscribed(server):
    client, changes = started(server)
    try:
        sock = server.sockets[0]
        sock.frames.put({"method": "notify_klippy_disconnected"})
        wait_for(lambda: changes[-1].state == "offline", 2, "Klipper gone")
        sock.frames.put({"method": "notify_klippy_ready"})
        wait_for(lambda: changes[-1].state == "idle", 2, "Klipper back")
    finally:
        client.close()


def test_the_config_table_takes_url_and_an_optional_key(tmp_path):
    key = tmp_path / "key"
    key.write_text("abc\n")
    base = {"agent": {"id": "pi", "site": "lab"}}
    cfg = agent_config.from_dict({**base, "printers": [
        {"id": "voron-1", "type": "moonraker", "url": "http://voron.local:7125"},
        {"id": "voron-2", "type": "moonraker", "url": "http://10.0.0.5:7125", "api_key_file": str(key)}]})
    first, second = cfg.printers
    assert isinstance(first, MoonrakerSettings) and first.api_key is None and first.type == "moonraker"
    assert second.api_key.reveal() == "abc" and "abc" not in repr(second)
    with pytest.raises(ConfigError) as err:
        agent_config.from_dict({**base, "printers": [{"id": "v", "type": "moonraker", "url": "voron.local"}]})
    assert "printers[0].url" in err.value.line() and "http" in err.value.line()


class SlowConfigSocket(FakeSocket):
    """Klipper's configuration query times out once (a busy host), then answers."""

    asked = 0

    def ping(self):  # answered, so the connection stays up
        self.frames.put({})

    def call(self, method, params=None):
        if method != "printer.objects.query":
            return super().call(method, params)
        SlowConfigSocket.asked += 1
        if SlowConfigSocket.asked == 1:
            raise Timeout("printer.objects.query: no answer within 0.5 s")
        return {"status": {"toolhead": {"axis_minimum": [0, 0, 0, 0], "axis_maximum": [300, 300, 250, 0]},
                           "configfile": {"settings": {"extruder": {"nozzle_diameter": 0.6}}}}}


def test_capabilities_that_timed_out_are_asked_again_without_losing_the_connection():
    sockets = []

    def connect(url, headers, timeout):
        sockets.append(SlowConfigSocket(url, headers, timeout))
        return sockets[-1]

    client = Moonraker("http://voron.local:7125", None, interval=0.2, timeout=0.5, connect=connect)
    client.start(lambda: None)
    try:
        info = wait_for(lambda: client.poll().info and client.poll().info.get("volume"), 10, "the capabilities")
        assert info == [300.0, 300.0, 250.0] and len(sockets) == 1  # the same connection
        assert client.poll().state == "idle"
    finally:
        client.close()

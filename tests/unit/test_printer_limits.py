"""The bounds on what a printer may send or cost (docs/security.md), each on its own: config
validation, the outbox's fair drops, the log filter, the MQTT packet guard, the JSON depth check,
the websocket client against a scripted server, the HTTP session's deadline and caps."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest
import requests

from agent import config as agent_config
from agent.config import OutboxConfig
from agent.logbounds import LogRateLimit
from agent.outbox import MemoryOutbox, SQLiteOutbox
from agent.printers.bambu.tls import PacketSizeGuard, PacketTooLarge
from agent.printers.http_bounds import BoundedSession, CrossHostRedirect, DeadlineExceeded
from agent.printers.limits import LimitExceeded, Limits, RateLimit, check_json_depth
from agent.printers.websocket import WebSocket
from devkit.hostile import HostileHTTP, HostileMoonraker, Recorder
from devkit.hostile.bambu import publish


# -- config -----------------------------------------------------------------------------------------

def base_config(**extra) -> dict:
    return {"agent": {"id": "pi-1", "site": "lab"},
            "printers": [{"id": "p1", "url": "http://p1.local", "api_key_env": "PF_TEST_KEY"}], **extra}


def test_limits_reach_every_printer_and_a_wrong_one_names_its_key(monkeypatch):
    monkeypatch.setenv("PF_TEST_KEY", "k")
    cfg = agent_config.from_dict(base_config(limits={"reply_bytes": 65536}))
    assert cfg.printers[0].limits.reply_bytes == 65536
    assert agent_config.from_dict(base_config()).printers[0].limits == Limits()
    with pytest.raises(agent_config.ConfigError, match=r"limits.reply_bytes: 100 is out of range — fix: use"):
        agent_config.from_dict(base_config(limits={"reply_bytes": 100}))
    with pytest.raises(agent_config.ConfigError, match=r"limits.reply_byte"):
        agent_config.from_dict(base_config(limits={"reply_byte": 65536}))


# -- the outbox: one printer never displaces another's messages -----------------------------------

def topic(printer: str) -> str:
    return f"printfarm/v1/lab/{printer}/telemetry"


@pytest.mark.parametrize("make", [lambda tmp: SQLiteOutbox(tmp / "o.sqlite3", OutboxConfig(max_messages=100)),
                                  lambda tmp: MemoryOutbox(max_messages=100)], ids=["sqlite", "memory"])
def test_a_flooding_printer_displaces_only_its_own_messages(tmp_path, make):
    box = make(tmp_path)
    box.put_many([(topic("quiet"), b"q%d" % i, False) for i in range(20)])
    for i in range(400):  # one printer floods
        box.put(topic("flood"), b"f%d" % i, False)
    kept = box.peek_batch(1000)
    quiet = [p for _, t, p, _ in kept if "/quiet/" in t]
    flood = [p for _, t, p, _ in kept if "/flood/" in t]
    assert quiet == [b"q%d" % i for i in range(20)]  # all of them, in order
    assert flood == [b"f%d" % i for i in range(320, 400)]  # the flood keeps its newest
    assert box.dropped_total() == 320


def test_a_full_outbox_is_shared_evenly_between_printers(tmp_path):
    box = SQLiteOutbox(tmp_path / "o.sqlite3", OutboxConfig(max_messages=100))
    for i in range(300):
        box.put(topic("a" if i % 3 else "b"), b"x", False)  # a sends twice what b sends
    held = [t for _, t, _, _ in box.peek_batch(1000)]
    assert box.pending() == 100
    assert abs(sum("/a/" in t for t in held) - 50) <= 1 and abs(sum("/b/" in t for t in held) - 50) <= 1


def test_an_outbox_from_before_the_fair_caps_opens_and_shares(tmp_path):
    import sqlite3
    path = tmp_path / "o.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, enqueued REAL NOT NULL, "
                     "size INTEGER NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL, retain INTEGER NOT NULL);"
                     "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);")
    db.execute("INSERT INTO outbox (enqueued, size, topic, payload, retain) VALUES (?, 10, ?, x'00', 0)",
               (time.time(), topic("old")))
    db.commit()
    db.close()
    box = SQLiteOutbox(path, OutboxConfig(max_messages=100))
    box.put(topic("new"), b"n", False)
    assert box.pending() == 2
    box.put_many([(topic("new"), b"n", False)] * 150)  # full: the old printer's one message stays
    assert [t for _, t, _, _ in box.peek_batch(1)] == [topic("old")] and box.pending() == 100


# -- state changes and log lines ------------------------------------------------------------------

class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_the_rate_limit_allows_a_burst_then_the_rate():
    clock = Clock()
    limit = RateLimit(30, monotonic=clock)  # 30 a minute, bursts of 10
    assert sum(limit.allow() for _ in range(100)) == 10
    clock.now += 60
    assert sum(limit.allow() for _ in range(100)) == 10  # the bucket holds at most a burst
    clock.now += 2
    assert sum(limit.allow() for _ in range(100)) == 1


def test_repeated_log_lines_are_held_back_and_counted():
    clock = Clock()
    flt = LogRateLimit(20, monotonic=clock)

    def record(printer, name="agent.service"):
        return logging.LogRecord(name, logging.INFO, "f", 1, "%s: %s -> %s", (printer, "a", "b"), None)

    passed = [flt.filter(record("flap")) for _ in range(1000)]
    assert sum(passed) == 10
    assert flt.filter(record("steady"))  # another printer's lines are their own kind
    assert all(flt.filter(record("flap", name="apscheduler.executors")) for _ in range(100))
    clock.now += 3
    line = record("flap")
    assert flt.filter(line) and "990 more like this held back" in line.getMessage()


# -- JSON depth, MQTT packets ---------------------------------------------------------------------------

def test_json_depth_is_checked_before_decoding_and_ignores_brackets_in_strings():
    check_json_depth(b'{"a": [[{"b": "[[[[[[[[[[[[[[[["}]]]}', 8, "x")
    check_json_depth(b"[" * 8 + b"]" * 8, 8, "x")
    with pytest.raises(LimitExceeded, match=r"a report nests deeper than 8 levels \(limits.json_depth\)"):
        check_json_depth(b"[" * 9 + b"]" * 9, 8, "a report")
    with pytest.raises(LimitExceeded):
        check_json_depth(b'{"print": ' + b"[" * 100_000, 32, "a report")


def test_the_packet_guard_stops_at_the_header_of_a_packet_over_the_cap():
    guard = PacketSizeGuard(1024)
    stream = publish("device/x/report", b"{}" * 100) + b"\xd0\x00"  # a report and a PINGRESP ...
    for i in range(len(stream)):  # ... fed a byte at a time, as paho reads headers
        guard.feed(stream[i:i + 1])
    guard.feed(publish("device/x/report", b"x" * 1000))  # at the cap: fine
    with pytest.raises(PacketTooLarge, match=r"MQTT packet of 256.0 MiB, over 1 KiB \(limits.packet_bytes\)"):
        guard.feed(publish("device/x/report", b"", announce=268_435_455)[:5])


# -- the websocket client against hostile Moonraker stand-ins ------------------------------------------------

def test_a_websocket_frame_announcing_4_gib_fails_on_its_header():
    with HostileMoonraker("huge_frame") as server:
        ws = WebSocket(f"ws://127.0.0.1:{server.port}/websocket", {}, 2.0)
        try:
            with pytest.raises(LimitExceeded, match="4096.0 MiB announced"):
                ws.recv_message(time.monotonic() + 5)
            assert len(ws.buffer) < 200_000  # nothing of the payload was held
        finally:
            ws.close()


def test_a_trickled_frame_never_counts_as_a_message():
    with HostileMoonraker("trickle") as server:
        from agent.printers.jsonrpc_ws import RpcSocket

        rpc = RpcSocket(f"ws://127.0.0.1:{server.port}/websocket", {}, 2.0)
        try:
            for method in ("server.connection.identify", "server.info", "server.history.list",
                           "printer.objects.subscribe"):
                rpc.call(method)
            began = time.monotonic()
            assert rpc.receive(1.0) is None  # bytes arrived all along: still nothing whole
            assert 0.9 <= time.monotonic() - began < 2.0
        finally:
            rpc.close()


# -- the HTTP session: deadline, size, redirects, close --------------------------------------------------

def test_a_trickling_http_printer_fails_at_the_deadline_not_never():
    with HostileHTTP("trickle_headers") as server:
        session = BoundedSession(timeout=1.0)
        began = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            session.get(server.url + "/api/job")
        assert time.monotonic() - began < 2.5


@pytest.mark.parametrize("behaviour", ["endless", "huge_length"])
def test_an_oversized_http_reply_fails_at_the_cap(behaviour):
    with HostileHTTP(behaviour) as server:
        with pytest.raises(LimitExceeded, match=r"limits.reply_bytes"):
            BoundedSession(timeout=5.0).get(server.url + "/api/job")


def test_a_redirect_to_another_host_is_not_followed_and_carries_nothing_there():
    with Recorder() as other, HostileHTTP("redirect", target=other.url) as server:
        session = BoundedSession(timeout=2.0)
        session.headers["X-Api-Key"] = "secret-key"
        with pytest.raises(CrossHostRedirect, match="another host"):
            session.get(server.url + "/api/job")
    assert other.requests == []


def test_closing_the_session_cuts_a_request_in_flight():
    with HostileHTTP("trickle_body") as server:
        session = BoundedSession(timeout=30.0)
        failed = []

        def poll():
            try:
                session.get(server.url + "/api/job")
            except (requests.RequestException, LimitExceeded) as exc:
                failed.append(exc)

        thread = threading.Thread(target=poll)
        thread.start()
        deadline = time.monotonic() + 5
        while server.connections < 1 and time.monotonic() < deadline:  # the request is under way
            time.sleep(0.01)
        began = time.monotonic()
        session.close()
        thread.join(5)
        assert not thread.is_alive() and failed and time.monotonic() - began < 2


def test_an_ordinary_reply_still_reads_as_json_over_keep_alive():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted = []

    def serve():
        conn, _ = server.accept()
        accepted.append(conn)
        for _ in range(2):
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n'
                         b'{"a": [1]} ')

    threading.Thread(target=serve, daemon=True).start()
    session = BoundedSession(timeout=2.0)
    assert session.get(f"http://127.0.0.1:{port}/x").json() == {"a": [1]}
    assert session.get(f"http://127.0.0.1:{port}/y").json() == {"a": [1]}
    assert len(accepted) == 1  # one connection for both: kept alive
    server.close()


def test_the_coalesced_count_is_stored_with_the_state_point():
    from common import protocol
    from server import lineproto

    msg = protocol.Status(v=protocol.SCHEMA_VERSION, ts=1_790_000_000_000, printer="p1", site="lab", seq=3,
                          state="paused", prev_state="printing", coalesced=57)
    assert ",coalesced=57i " in lineproto.status(msg, ",printer=p1")
    plain = protocol.Status(v=protocol.SCHEMA_VERSION, ts=1, printer="p1", site="lab", seq=1, state="idle")
    assert "coalesced" not in lineproto.status(plain, ",printer=p1")  # 0: not written at all


class NotifyingSocket:
    """Never answers a call: sends notifications of ``size`` bytes instead."""

    def __init__(self, size: int):
        self.note = b'{"method": "notify_gcode_response", "params": ["' + b"x" * size + b'"]}'

    def send_text(self, data):
        pass

    def recv_message(self, deadline):
        return 0x1, self.note

    def close(self):
        pass


@pytest.mark.parametrize("size, bound", [(10, "limits.held_messages"), (200_000, "limits.held_bytes")])
def test_notifications_held_back_during_a_call_are_bounded_in_number_and_bytes(size, bound):
    from agent.printers.jsonrpc_ws import RpcSocket

    rpc = RpcSocket("ws://p", {}, 5.0, connect=lambda *a: NotifyingSocket(size), limits=Limits(held_bytes=2 << 20))
    with pytest.raises(LimitExceeded, match=bound):
        rpc.call("server.info")

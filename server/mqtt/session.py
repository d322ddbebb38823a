"""The collector's MQTT session: persistent (clean session off), QoS 1, optionally shared.

One thread runs ``Subscriber.run``: connect, subscribe, read, acknowledge, keep alive,
reconnect with backoff. Bytes go through the sans-IO codec (server/mqtt/codec.py); the socket,
the clock and the rules below are this module's.

Draining a backlog is cheap because one wake-up reads up to 256 KiB (about a thousand
messages), decodes them in one pass and sends their PUBACKs as one write (FACTS.md: per-packet
system calls and wake-ups are what make a Python consumer expensive).

Acknowledgements (server/mqtt/acks.py): given ``track``, a QoS 1 message is PUBACKed only once
its points are durable, so a SIGKILL loses nothing - the broker delivers every unacknowledged
message again to the same session. Without ``track`` it is PUBACKed on receipt. A broker with
a small per-client in-flight window throttles acknowledging after the write (EMQX's
``max_inflight`` is 32): raise it (docs/scaling.md).
"""

from __future__ import annotations

import logging
import select
import socket
import ssl
import threading
import time
from typing import Callable

from common import protocol
from common.text import one_line
from server.config import MqttConfig
from server.metrics import Metrics
from server.mqtt import acks, codec, transport
from server.mqtt.acks import Acknowledgements

log = logging.getLogger(__name__)

RECV_BYTES = 256 * 1024
READS_PER_WAKE = 8  # then acknowledgements, pings and the stop flag get a turn
IDLE_FLUSH = 0.05  # the socket went quiet this long: ask the writer to flush what it holds
CONNECT_TIMEOUT = 10.0  # TCP + TLS + CONNACK
RECONNECT_MIN, RECONNECT_MAX = 1.0, 30.0
SUBSCRIBE_ID = 1  # our only SUBSCRIBE per connection


class ConnectionLost(Exception):
    pass


def subscriptions(cfg: MqttConfig) -> list[str]:
    if cfg.share_group:
        return [f"$share/{cfg.share_group}/{topic}" for topic in protocol.SUBSCRIPTIONS]
    return list(protocol.SUBSCRIPTIONS)


class Subscriber:
    """Calls ``handle(topic, payload)`` for every message, on the thread that runs ``run``.

    ``end_of_burst()``: the messages of one read have all been handled (the collector hands
    their lines to the writer in one go, before their tokens). ``track(tokens)``: hand QoS 1
    deliveries to the writer, to be acknowledged through ``acknowledgements`` once durable;
    None acknowledges on receipt. ``flush()``: the socket went quiet, ask the writer to make
    what it holds durable now.
    """

    def __init__(self, cfg: MqttConfig, handle: Callable[[str, bytes], object], *,
                 end_of_burst: Callable[[], None] = lambda: None,
                 track: Callable[[list[int]], None] | None = None,
                 flush: Callable[[], object] = lambda: None,
                 acknowledgements: Acknowledgements | None = None,
                 open_socket: Callable[[MqttConfig, float], socket.socket] = transport.open_socket,
                 clock: Callable[[], float] = time.monotonic, metrics: Metrics | None = None):
        self.cfg = cfg
        self.metrics = metrics or Metrics()
        self.handle = handle
        self.end_of_burst = end_of_burst
        self.track = track
        self.flush = flush
        self.acks = acknowledgements or Acknowledgements()
        self.open_socket = open_socket
        self.clock = clock
        self.connected = False  # CONNACK received on the current connection
        self.subscribed = False  # ... and the broker answered its SUBSCRIBE: messages now reach it
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._connection = 0  # counts connections; part of every token (acks.token)
        self._out = bytearray()
        self._untracked = 0  # deliveries tracked since the last flush()
        self._last_problem: str | None = None
        self._handler_error_logged = False

    # -- control (any thread) ---------------------------------------------------------------------

    def stop(self) -> None:
        """Ask ``run`` to return; safe from any thread and from a signal handler."""
        self._stop.set()
        self.acks.wake()

    def close(self, timeout: float = 5.0) -> None:
        """After ``run`` returned: send the acknowledgements due, then a clean DISCONNECT."""
        sock, self._sock = self._sock, None
        self.connected = self.subscribed = False
        if sock is None:
            return
        try:
            self._queue_acknowledgements()
            sock.settimeout(timeout)
            sock.sendall(bytes(self._out) + codec.DISCONNECT)
        except OSError as exc:
            log.warning("could not say goodbye to the broker: %s", exc)
        finally:
            sock.close()

    # -- the loop ---------------------------------------------------------------------------------

    def run(self) -> None:
        """Connect, read, acknowledge, reconnect; returns after ``stop()``, connection open."""
        delay = RECONNECT_MIN
        while not self._stop.is_set():
            try:
                self._sock = self.open_socket(self.cfg, CONNECT_TIMEOUT)
                self._session(self._sock)
            except (OSError, ConnectionLost, codec.ProtocolError) as exc:
                if self.connected:  # a session that was up: retry soon, then back off
                    delay = RECONNECT_MIN
                self._lost(exc)
                self.connected = self.subscribed = False
            if not self._stop.is_set():
                self._wait(delay)
                delay = min(delay * 2, RECONNECT_MAX)

    def _session(self, sock: socket.socket) -> None:
        self._connection += 1
        self._out = bytearray(codec.connect(self.cfg.client_id, self.cfg.keepalive, clean_session=False,
                                            username=self.cfg.username, password=self._password()))
        state = _Liveness(self.clock(), self.cfg.keepalive)
        decoder = codec.Decoder()
        while not self._stop.is_set():
            self._wait_for_io(sock, state)
            self._read(sock, decoder, state)
            self._queue_acknowledgements()
            self._write(sock, state)
            self._keep_alive(state)

    def _wait_for_io(self, sock: socket.socket, state: "_Liveness") -> None:
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return  # decrypted bytes wait inside the SSL object: select() cannot see them
        wait = state.next_deadline(self.clock(), self._untracked > 0)
        writers = [sock] if self._out else []
        select.select([sock, self.acks], writers, [], wait)
        self.acks.clear_wake()

    def _read(self, sock: socket.socket, decoder: codec.Decoder, state: "_Liveness") -> None:
        for _ in range(READS_PER_WAKE):
            try:
                data = sock.recv(RECV_BYTES)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):  # TLS may need either
                return
            if not data:
                raise ConnectionLost("the broker closed the connection")
            state.received(self.clock())
            self._dispatch(decoder.feed(data))
            if len(data) < RECV_BYTES and not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                return

    def _write(self, sock: socket.socket, state: "_Liveness") -> None:
        if not self._out:
            return
        try:
            sent = sock.send(self._out)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        del self._out[:sent]
        state.sent(self.clock())

    def _keep_alive(self, state: "_Liveness") -> None:
        now = self.clock()
        problem = state.problem(now, self.connected)
        if problem:
            raise ConnectionLost(problem)
        if state.ping_due(now):
            self._out += codec.PINGREQ
            state.pinged(now)
        if self._untracked and now - state.last_in >= IDLE_FLUSH:
            self._untracked = 0
            self.flush()

    # -- packets ----------------------------------------------------------------------------------

    def _dispatch(self, packets: list[codec.Packet]) -> None:
        handle, base = self.handle, acks.token(self._connection, 0)
        tokens: list[int] = []
        for packet in packets:
            if type(packet) is not codec.Publish:
                self._control(packet)
                continue
            try:
                handle(packet.topic, packet.payload)
            except Exception:  # a bug must not kill the loop; the message still gets its ack
                self._handler_failed(packet.topic)
            if packet.qos:
                tokens.append(base | packet.packet_id)
        self.end_of_burst()
        if not tokens:
            return
        if self.track is None:
            self._out += codec.pubacks(acks.packet_ids(tokens, self._connection))
        else:
            self.track(tokens)  # after the lines they cover were put: acknowledged behind them
            self._untracked += len(tokens)

    def _control(self, packet: codec.Packet) -> None:
        if type(packet) is codec.ConnAck:
            self._connected(packet)
        elif type(packet) is codec.SubAck:
            self._subscribed(packet)
        # PINGRESP: any bytes received already count as the broker being alive.

    def _connected(self, ack: codec.ConnAck) -> None:
        if ack.refusal:
            raise ConnectionLost(f"broker refused the connection: {ack.refusal}")
        self.connected = True
        self._note(None)
        log.info("collector connected to %s:%d (session present: %s)", self.cfg.host, self.cfg.port,
                 ack.session_present)
        self._out += codec.subscribe(SUBSCRIBE_ID, [(topic, 1) for topic in subscriptions(self.cfg)])

    def _subscribed(self, ack: codec.SubAck) -> None:
        for topic, granted in zip(subscriptions(self.cfg), ack.granted):
            if granted == codec.SUBACK_FAILURE:
                self._note(f"broker refused the subscription to {topic} (check its ACL)")
            elif granted == 0:
                log.warning("broker granted QoS 0 for %s: a crash may lose messages", topic)
        self.subscribed = True

    @property
    def ready(self) -> bool:
        """Connected and subscribed: a message published from now on reaches the collector (between
        CONNACK and SUBACK one published to a new session would not)."""
        return self.connected and self.subscribed

    def _queue_acknowledgements(self) -> None:
        tokens = self.acks.take()
        if tokens:
            self._out += codec.pubacks(acks.packet_ids(tokens, self._connection))

    # -- errors and waiting -----------------------------------------------------------------------

    def _handler_failed(self, topic: str) -> None:
        self.metrics.inc("handler_errors")
        if not self._handler_error_logged:
            self._handler_error_logged = True
            log.exception("handling a message on %s failed (logged once; counted in handler_errors)", one_line(topic))

    def _lost(self, exc: Exception) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.connected and not self._stop.is_set():
            log.warning("collector lost the broker: %s", exc)
        elif not self.connected:
            self._note(f"cannot connect to the broker at {self.cfg.host}:{self.cfg.port}: {exc}")

    def _note(self, problem: str | None) -> None:
        """Log a problem once until it changes (a retry loop must not flood the log)."""
        if problem and problem != self._last_problem:
            log.error("%s; retrying", problem)
        self._last_problem = problem

    def _wait(self, seconds: float) -> None:
        """Back off for ``seconds`` unless stopped (acknowledgements arriving do not cut it short)."""
        deadline = self.clock() + seconds
        while not self._stop.is_set() and self.clock() < deadline:
            select.select([self.acks], [], [], min(deadline - self.clock(), 1.0))
            self.acks.clear_wake()

    def _password(self) -> bytes | None:
        return self.cfg.password.reveal().encode() if self.cfg.password else None


class _Liveness:
    """Keep-alive bookkeeping for one connection (3.1.2.10).

    We must send something at least every ``keepalive`` seconds: a PINGREQ when nothing else
    went out for 3/4 of it. The broker is taken as gone when a PINGREQ brought no bytes at all
    back within ``keepalive`` seconds (during a drain, queued messages may precede the PINGRESP:
    any byte counts), or when no CONNACK came within CONNECT_TIMEOUT.
    """

    def __init__(self, now: float, keepalive: float):
        self.keepalive = keepalive
        self.started = self.last_in = self.last_out = now
        self.ping_sent: float | None = None

    def received(self, now: float) -> None:
        self.last_in = now
        self.ping_sent = None

    def sent(self, now: float) -> None:
        self.last_out = now

    def pinged(self, now: float) -> None:
        self.ping_sent = self.last_out = now

    def ping_due(self, now: float) -> bool:
        return self.ping_sent is None and now - self.last_out >= 0.75 * self.keepalive

    def problem(self, now: float, connected: bool) -> str | None:
        if not connected and now - self.started > CONNECT_TIMEOUT:
            return f"no CONNACK within {CONNECT_TIMEOUT:.0f} s"
        if self.ping_sent is not None and now - self.ping_sent > self.keepalive:
            return f"no answer to a PINGREQ within {self.keepalive} s"
        return None

    def next_deadline(self, now: float, flush_pending: bool) -> float:
        """How long select() may wait before something here is due."""
        due = self.last_out + 0.75 * self.keepalive - now
        if self.ping_sent is not None:
            due = self.ping_sent + self.keepalive - now
        wait = min(max(due, 0.0), 1.0)
        return min(wait, IDLE_FLUSH) if flush_pending else wait

"""The collector's MQTT session: persistent (clean start off), QoS 1, optionally shared.

The network loop is our own, built on paho's external-loop API (``socket()``,
``loop_read()`` back to back, ``loop_write()``, ``loop_misc()``): draining a backlog
it costs far less CPU than ``loop_forever()`` or ``loop_start()`` (FACTS.md), because
one wake-up handles many messages.

Acknowledgements: with ``ack_after_write`` (the default) a message is PUBACKed only
once what it produced is durable (in InfluxDB or the on-disk spool), so a SIGKILL
loses nothing: the broker delivers every unacknowledged message again to the same
session. A broker with a small per-client in-flight window throttles this (EMQX's
``max_inflight`` is 32): raise it (docs/scaling.md). Mosquitto 2.0 drained a backlog at full
speed with its default ``max_inflight_messages`` in our measurements; we set 0 anyway.

Reading: paho parses a packet with several recv() calls and builds an MQTTMessage (with a
threading.Condition inside) per message. ``_BufferedClient`` reads 256 KiB per recv() and
parses complete QoS 0/1 PUBLISH packets itself; everything else goes through paho's own
code. Acknowledgements leave as one write per batch. These use paho internals (pinned
``paho-mqtt<3``); without them the plain paho path is used, correct but ~2x the CPU.
"""

from __future__ import annotations

import collections
import logging
import select
import socket
import ssl
import struct
import threading
import time
from typing import Callable

import paho.mqtt
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from common import protocol
from server.config import MqttConfig
from server.metrics import Metrics

log = logging.getLogger(__name__)

MISC_EVERY = 1.0  # seconds between loop_misc() calls (keepalive pings, timeouts)
READ_BURST = 5000  # messages per wake-up at most, so acks and flushes still get a turn
RECV_BYTES = 256 * 1024
IDLE_HANDOFF = 0.05  # the socket went quiet this long: hand unacknowledged messages to the writer


class _BufferedClient(mqtt.Client):
    """paho reads each packet with three or more recv() calls (command byte, each length
    byte, body): on a backlog those system calls are most of its cost. This client reads up
    to 256 KiB at once, parses the complete PUBLISH packets in it itself (``read_publishes``)
    and hands paho slices of the rest. Everything else is paho's own code."""

    _rbuf = b""
    _rpos = 0
    _rsock = None

    _eof_sock = None  # the socket on which fill() saw the broker close the connection

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rsock is not self._sock:  # a new connection: old bytes belong to the old one
            self._rbuf, self._rpos, self._rsock = b"", 0, self._sock
        if self._eof_sock is self._sock and self._rpos >= len(self._rbuf):
            return b""  # paho takes this as "connection lost"
        pos = self._rpos
        if pos >= len(self._rbuf):
            data = super()._sock_recv(RECV_BYTES)  # raises BlockingIOError when there is nothing
            if not data:
                return data
            self._rbuf, pos = data, 0
        chunk = self._rbuf[pos:pos + bufsize]
        self._rpos = pos + len(chunk)
        return chunk

    def fill(self) -> bool:
        """Read more bytes when paho has consumed all; False when the socket has none now."""
        if self._rsock is self._sock and self._rpos < len(self._rbuf):
            return True
        try:
            data = super()._sock_recv(RECV_BYTES)
        except BlockingIOError:
            return False
        except OSError:  # reset by the broker: paho's own read reports it as a lost connection
            data = b""
        if not data:  # the broker closed: let paho's own read find out (buffered() says True)
            self._eof_sock = self._sock
            return True
        self._rbuf, self._rpos, self._rsock = data, 0, self._sock
        return True

    def read_publishes(self, deliver: Callable[[str, bytes, int, int], None]) -> int:
        """Deliver every complete QoS 0/1 PUBLISH at the front of the buffer; return how many.

        paho builds an MQTTMessage (with a Condition inside) and runs its topic matcher for
        each message; on a backlog that is half its cost. The wire format of a PUBLISH is
        simple, so the common case is parsed here: fixed header byte 0x3X, remaining length,
        topic, message id (QoS > 0), payload. Anything else - other packets, QoS 2, a packet
        cut off at the end of the buffer, or paho in the middle of a packet - stays with paho.
        """
        if self._in_packet["command"] or self._rsock is not self._sock:
            return 0
        buf, pos, end, count = self._rbuf, self._rpos, len(self._rbuf), 0
        while pos < end:
            command = buf[pos]
            if command & 0xF0 != 0x30 or command & 0x06 == 0x06 or command & 0x06 == 0x04:
                break  # not a PUBLISH, or QoS 2 (or the invalid QoS 3)
            length, shift, i = 0, 0, pos + 1
            while i < end and i - pos <= 4:
                byte = buf[i]
                length |= (byte & 0x7F) << shift
                shift += 7
                i += 1
                if not byte & 0x80:
                    break
            else:
                break  # length bytes cut off (or malformed: paho reports that)
            if buf[i - 1] & 0x80 or i + length > end or length < 2:
                break
            topic_end = i + 2 + ((buf[i] << 8) | buf[i + 1])
            qos = (command & 0x06) >> 1
            if topic_end + (2 if qos else 0) > i + length:
                break  # malformed: paho reports it
            if qos:
                mid = (buf[topic_end] << 8) | buf[topic_end + 1]
                payload_start = topic_end + 2
            else:
                mid, payload_start = 0, topic_end
            pos = i + length
            try:
                topic = buf[i + 2:topic_end].decode()
            except UnicodeDecodeError:
                topic = ""  # not a valid MQTT topic; ingest rejects it as bad_topic
            self._rpos = pos  # before delivering: a handler that raises must not see it twice
            deliver(topic, buf[payload_start:pos], qos, mid)
            count += 1
        if count:
            self._last_bytes_received = mqtt.time_func()
        return count

    def buffered(self) -> bool:
        """Bytes read from the socket that paho has not consumed yet (select() cannot see them)."""
        if self._rsock is self._sock and self._rpos < len(self._rbuf):
            return True
        if self._eof_sock is not None and self._eof_sock is self._sock:
            return True
        pending = getattr(self._sock, "pending", None)  # TLS: decrypted bytes inside the SSL object
        return bool(pending and pending())

    def ack_many(self, mids: list[int]) -> None:
        """PUBACK many messages with one write: the acks go out as one byte string, not one
        packet (and one send()) each; the broker reads a stream, so that is the same to it."""
        for i in range(0, len(mids), 16384):
            part = mids[i:i + 16384]
            # A PUBACK is 0x40, remaining length 2, then the 16-bit message id.
            packet = struct.pack(f"!{len(part)}I", *[0x40020000 | mid for mid in part])
            self._packet_queue(mqtt.PUBACK, packet, 0, 0)


_FAST_PAHO = (all(hasattr(mqtt.Client, name) for name in ("_sock_recv", "_packet_queue"))
              and hasattr(mqtt, "time_func"))
if not _FAST_PAHO:  # a paho without the internals above: correct, just slower
    log.warning("paho-mqtt %s lacks the internals the fast read path uses; using plain paho", paho.mqtt.__version__)


def subscriptions(cfg: MqttConfig) -> list[str]:
    if cfg.share_group:
        return [f"$share/{cfg.share_group}/{topic}" for topic in protocol.SUBSCRIPTIONS]
    return list(protocol.SUBSCRIPTIONS)


class Subscriber:
    """``handle(topic, payload)`` is called for every message on the loop's thread.

    ``track(token)`` (set by the collector) registers a received message for a later
    ``acknowledge(tokens)``, which may be called from any thread; ``flush()`` asks the
    owner of the tracked messages to make them durable soon (the socket went quiet).
    """

    def __init__(self, cfg: MqttConfig, handle: Callable[[str, bytes], object],
                 clock: Callable[[], float] = time.monotonic, ack_after_write: bool = True,
                 metrics: Metrics | None = None):
        self.cfg = cfg
        self.metrics = metrics or Metrics()
        self.handle = handle
        self.clock = clock
        self.connected = False
        self.received = 0
        self.manual_ack = ack_after_write
        self.track: Callable[[object], None] | None = None
        self.flush: Callable[[], object] | None = None
        self._last_problem: str | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._ready: collections.deque[list[tuple[int, int]]] = collections.deque()
        self._generation = 0  # bumped per connection: message ids are only valid in theirs
        self._untracked = 0
        self._immediate: list[int] = []  # message ids to acknowledge at once (nothing to wait for)
        self._handler_error_logged = False
        # Shared subscriptions need MQTT 5 on some brokers; Mosquitto 2 takes them on 3.1.1 too.
        self.client = (_BufferedClient if _FAST_PAHO else mqtt.Client)(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=cfg.client_id,
            clean_session=False, protocol=mqtt.MQTTv311,
        )
        self.client.manual_ack_set(self.manual_ack)
        if cfg.username:
            self.client.username_pw_set(cfg.username, cfg.password.reveal() if cfg.password else None)
        if cfg.tls:
            self.client.tls_set(ca_certs=cfg.tls.ca, certfile=cfg.tls.cert, keyfile=cfg.tls.key,
                                cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self._ever_connected = False

    # -- control ------------------------------------------------------------------------------

    def connect(self) -> None:
        """Nothing to do up front: ``run`` connects (and reconnects) itself."""

    def disconnect(self) -> None:
        """Ask ``run`` to return (safe from any thread and from a signal handler)."""
        self._stop.set()
        self._wake()

    def acknowledge(self, tokens: list) -> None:
        """Tokens from ``track`` whose data is durable now; sent by the loop thread."""
        self._ready.append(tokens)
        self._wake()

    def close(self, timeout: float = 5.0) -> None:
        """After ``run`` returned: send outstanding acknowledgements, then a clean DISCONNECT."""
        if self.client.socket() is not None:
            self._send_acks()
            self.client.disconnect()
            deadline = self.clock() + timeout
            while self.client.socket() is not None and self.client.want_write() and self.clock() < deadline:
                self.client.loop_write()
        self.connected = False

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> None:
        """Connect, read, acknowledge, reconnect; returns after ``disconnect()``."""
        delay = 1.0
        while not self._stop.is_set():
            if self._connect_once():
                delay = 1.0
                try:
                    self._serve()
                except OSError as exc:  # a socket error must end this session, never the loop
                    self._note(f"connection to the broker failed: {exc}")
                    self.client._sock_close()
            if not self._stop.is_set():
                self._sleep(delay)
                delay = min(delay * 2, 30.0)

    loop_forever = run  # the name the foundation used

    def _connect_once(self) -> bool:
        try:
            if self._ever_connected:
                self.client.reconnect()
            else:
                self.client.connect(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive)
                self._ever_connected = True
        except (OSError, ssl.SSLError, ValueError) as exc:
            self._note(f"cannot reach the broker at {self.cfg.host}:{self.cfg.port}: {exc}")
            return False
        return True

    def _serve(self) -> None:
        client = self.client
        sock = client.socket()
        last_misc = last_read = self.clock()
        while not self._stop.is_set() and client.socket() is sock:
            writers = [sock] if client.want_write() else []
            wait = 0.0 if self._buffered() else IDLE_HANDOFF if self._untracked else MISC_EVERY / 4
            readable, _, _ = select.select([sock, self._wake_r], writers, [], wait)
            if not readable and wait == 0.0:
                readable = [sock]  # bytes already read wait in our buffer
            if self._wake_r in readable:
                self._drain_wake()
            if sock in readable:
                if self._read_burst() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
                last_read = self.clock()
            self._send_acks()
            if client.want_write() and client.loop_write() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
            now = self.clock()
            if self._untracked and now - last_read >= IDLE_HANDOFF and self.flush is not None:
                self._untracked = 0
                self.flush()
            if now - last_misc >= MISC_EVERY:
                last_misc = now
                if client.loop_misc() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break

    def _read_burst(self) -> MQTTErrorCode:
        if not _FAST_PAHO:
            return self._read_burst_paho()
        client, deliver = self.client, self._deliver
        handled = 0
        while handled < READ_BURST:
            handled += client.read_publishes(deliver)
            if not client.buffered():
                if client._in_packet["command"] == 0 and not client.fill():
                    break  # nothing more on the socket for now
                handled += client.read_publishes(deliver)
            if client.buffered() or client._in_packet["command"]:
                # Something the fast path leaves to paho: another packet type, or a cut-off one.
                rc = client.loop_read()
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    return rc
                if not client.buffered():
                    break  # paho is waiting for the rest of a packet
                handled += 1
        self._ack_now()
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _read_burst_paho(self) -> MQTTErrorCode:
        # loop_read() handles one packet; call it back to back while packets keep coming.
        loop_read = self.client.loop_read
        for _ in range(READ_BURST):
            before = self.received
            rc = loop_read()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or self.received == before:
                break
        self._ack_now()
        return rc

    def _deliver(self, topic: str, payload: bytes, qos: int, mid: int) -> None:
        self.received += 1
        try:
            self.handle(topic, payload)
        except Exception:  # a bug must not kill the loop; the message still gets its ack
            self._handler_failed(topic)
        if qos:
            if self.manual_ack and self.track is not None:
                self.track((self._generation, mid))
                self._untracked += 1
            else:
                self._immediate.append(mid)

    def _handler_failed(self, topic: str) -> None:
        self.metrics.inc("handler_errors")
        if not self._handler_error_logged:
            self._handler_error_logged = True
            log.exception("handling a message on %s failed (logged once; counted in handler_errors)", topic[:200])

    def _ack_now(self) -> None:
        if self._immediate:
            mids, self._immediate = self._immediate, []
            if _FAST_PAHO:
                self.client.ack_many(mids)
            else:
                for mid in mids:
                    self.client.ack(mid, 1)

    def _buffered(self) -> bool:
        return _FAST_PAHO and self.client.buffered()

    def _send_acks(self) -> None:
        ready, generation = self._ready, self._generation
        mids: list[int] = []
        while ready:
            # Ids of an earlier connection may name other messages now: skip them,
            # the broker delivers those messages again anyway.
            mids += [mid for gen, mid in ready.popleft() if gen == generation]
        if not mids:
            return
        if _FAST_PAHO:
            self.client.ack_many(mids)
        else:
            for mid in mids:
                self.client.ack(mid, 1)

    def _on_message(self, client, userdata, message):
        # Messages paho parsed itself (the fast path leaves it some); paho acks unless manual.
        self.received += 1
        try:
            self.handle(message.topic, message.payload)
        except Exception:
            self._handler_failed(str(message._topic[:200]))
        if self.manual_ack and message.qos:
            if self.track is not None:
                self.track((self._generation, message.mid))
                self._untracked += 1
            else:
                self._immediate.append(message.mid)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass  # a wake-up is pending already

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _sleep(self, seconds: float) -> None:
        select.select([self._wake_r], [], [], seconds)
        self._drain_wake()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self._note(f"broker refused the connection: {reason_code}")
            return
        self._note(None)
        self._generation += 1
        self.connected = True
        log.info("collector connected to %s:%d (session present: %s)", self.cfg.host, self.cfg.port,
                 flags.session_present)
        client.subscribe([(topic, 1) for topic in subscriptions(self.cfg)])

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        if self.connected and not self._stop.is_set():
            log.warning("collector lost the broker: %s", reason_code)
        self.connected = False

    def _note(self, problem: str | None) -> None:
        if problem and problem != self._last_problem:
            log.error("%s; retrying", problem)
        self._last_problem = problem

"""The agent's MQTT session: last-will, reconnect with backoff, TLS, credentials, replay.

Everything published goes through ``send``. The rule that keeps order and loses
nothing that was committed:

- While connected and nothing waits in the outbox, a message goes straight to paho
  (QoS 1) and is remembered in memory (``_inflight``) until its PUBACK. No disk write.
- When the connection drops, paho's unacknowledged messages are taken back
  (``drop_out_messages``) and written to the outbox in their original order, before
  any message sent after the drop. Everything sent while away goes to the outbox.
- A worker thread (never paho's network thread) replays the outbox oldest first, a
  window at a time, and deletes items only after the broker acknowledged them, so a
  ``kill -9`` during the replay replays them again on restart.
- The only messages a ``kill -9`` or a power cut can take are those sent while
  connected and not yet acknowledged: the last PUBACK round trip (milliseconds). A
  broker that stops acknowledging without closing the socket is treated as gone
  after ``ack_timeout`` seconds, so that window stays short on a silently dead link.

Timestamps are inside the payloads, so replayed messages land where they belong.
"""

from __future__ import annotations

import collections
import logging
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent import __version__
from common import protocol
from agent.config import BrokerConfig
from agent.outbox import MemoryOutbox, Outbox

log = logging.getLogger(__name__)

QOS = 1
OK_RCS = (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN)  # NO_CONN: paho kept it; on_disconnect takes it back
BAD_CREDENTIALS = ("Bad user name or password", "Not authorized")


@dataclass(slots=True)
class _Pending:
    oid: int | None  # outbox id for replayed items; None for live ones (only in memory)
    topic: str
    payload: bytes
    retain: bool
    sent: float  # monotonic


class Publisher:
    def __init__(
        self,
        agent_id: str,
        broker: BrokerConfig,
        outbox: Outbox | None = None,
        printers: list[str] | None = None,
        clock: Callable[[], float] = time.time,
        client_factory: Callable[[str], object] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        window: int = 200,
        ack_timeout: float | None = None,
        tick: float = 1.0,
        key_id: str = "",
    ):
        self.agent_id = agent_id
        self.key_id = key_id  # of the pseudonym secret: the collector checks it is its own
        self.broker = broker
        self.outbox = outbox or MemoryOutbox()
        self.printers = printers or []
        self.clock, self.monotonic = clock, monotonic
        self.window, self.tick = window, tick
        self.ack_timeout = broker.ack_timeout if ack_timeout is None else ack_timeout
        self.lock_wait = 1.0  # how long paho's thread waits for a sender in on_disconnect
        self._lock = threading.RLock()  # orders send, replay and paho's connect/disconnect
        self._connected = threading.Event()
        self._retained: dict[str, bytes] = {}  # last status per topic, re-sent on reconnect
        self._inflight: dict[int, _Pending] = {}  # paho mid -> message, in publish order
        self._unacked: dict[int, None] = {}  # outbox ids handed to paho, ordered
        self._handed_upto = 0  # outbox ids up to here were handed to paho on this connection
        self._removable = 0  # outbox ids up to here are acknowledged
        self._removed_upto = 0  # ... and deleted from the outbox
        self._acks: collections.deque[int] = collections.deque()  # filled on paho's thread
        self._republish = False
        self._generation = 0  # connections so far
        self._deferred_take_back: int | None = None
        self._reported_dropped = self.outbox.dropped_total()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._closed = False  # the outbox is closed: stop() has finished
        self._worker: threading.Thread | None = None
        self._last_error: str | None = None
        self._refused = False  # the broker answered this attempt with a refusal (already logged)
        self._connecting_since: float | None = None  # monotonic start of an attempt awaiting CONNACK
        self._gave_up_waiting = False  # we closed this attempt: no CONNACK within ack_timeout
        self._oversized: set[str] = set()  # topics an oversized message was refused on (logged)
        self._addresses = broker.addresses  # one, or the members of a clustered broker
        self._at = 0  # the one tried or connected now
        self._failovers = 0  # moves to another address since the last connection
        self._make = client_factory or self._paho_client
        self.client = self._make_client()

    # --- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        _warn_if_insecure(self.broker)
        self._worker = threading.Thread(target=self._run, name="outbox", daemon=True)
        self._worker.start()
        host, port = self._addresses[self._at]
        self.client.connect_async(host, port, keepalive=self.broker.keepalive)
        self.client.loop_start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._worker:
            self._worker.join(timeout)
        if self._connected.is_set():
            info = self.client.publish(
                protocol.agent_topic(self.agent_id), self._agent_payload("offline"), qos=QOS, retain=True)
            try:
                info.wait_for_publish(timeout)  # acks come in order: the rest is acknowledged too
            except (RuntimeError, ValueError):  # the connection went meanwhile: nothing to wait for
                pass
        self.client.disconnect()
        self.client.loop_stop()
        self._take_back()  # whatever is still unacknowledged waits in the outbox for next time
        self._remove_acknowledged()
        with self._lock:
            self._closed = True
            self.outbox.close()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    # --- publishing --------------------------------------------------------

    def send(self, topic: str, payload: bytes, retain: bool = False) -> None:
        if len(payload) > protocol.MAX_PAYLOAD_BYTES:
            # The broker would disconnect us for it (max_packet_size), again at every replay.
            self._refuse_oversized(topic, len(payload))
            return
        with self._lock:
            if self._closed:  # a poll that ended after the agent stopped: nowhere to keep it
                log.debug("not sending on %s: the publisher is stopped", topic)
                return
            self._finish_deferred()  # older unacknowledged messages first
            if retain:
                self._retained[topic] = payload
            if self._connected.is_set() and self._nothing_waiting():
                if self._publish(None, topic, payload, retain):
                    return
                self._wake.set()  # paho refused it: the worker replays it from the outbox
            self.outbox.put(topic, payload, retain)

    def _refuse_oversized(self, topic: str, size: int) -> None:
        if topic not in self._oversized:
            self._oversized.add(topic)
            log.error("not sending a %d-byte message on %s: over the protocol's cap of %d bytes "
                      "(logged once per topic)", size, topic, protocol.MAX_PAYLOAD_BYTES)

    def _nothing_waiting(self) -> bool:
        return not self.outbox.pending() or self.outbox.last_id() <= self._handed_upto

    def _publish(self, oid: int | None, topic: str, payload: bytes, retain: bool) -> bool:
        info = self.client.publish(topic, payload, qos=QOS, retain=retain)
        # paho returns (not raises) MQTT_ERR_QUEUE_SIZE and friends: check it.
        if info.rc not in OK_RCS:
            self._log_once(f"paho refused a publish ({mqtt.error_string(info.rc)}); keeping it in the outbox")
            return False
        self._inflight[info.mid] = _Pending(oid, topic, payload, retain, self.monotonic())
        if len(self._inflight) == 1:
            self._wake.set()  # the worker's next wait ends at this one's ack_timeout (_until_next_duty)
        if oid is not None:
            self._unacked[oid] = None
            self._handed_upto = oid
        return True

    # --- the worker: replay, acknowledgements, drop reports -----------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self._until_next_duty())
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                self.pump()
            except Exception:  # a bug here must not end replay for good
                log.exception("outbox worker failed; trying again")
                self._stopping.wait(self.tick)

    def _until_next_duty(self) -> float:
        """A tick, or less when the oldest unacknowledged message reaches ack_timeout sooner:
        on a cluster that lost a stream leader, each second spent waiting past ack_timeout
        is a second more before the agent's telemetry flows again (docs/scaling.md)."""
        with self._lock:
            oldest = next(iter(self._inflight.values()), None)
            since = self._connecting_since if oldest is None else oldest.sent
        if since is None:
            return self.tick
        return min(self.tick, max(0.01, since + self.ack_timeout - self.monotonic()))

    def pump(self) -> None:
        """One round of the worker's duties; tests call it directly instead of the thread."""
        with self._lock:
            self._finish_deferred()
            self._process_acks()
        self._remove_acknowledged()
        self._check_stalled()
        self._replay_window()
        self._republish_retained()
        self._report_drops()

    def _finish_deferred(self) -> None:
        if self._deferred_take_back is None:
            return
        if self._deferred_take_back == self._generation and not self._connected.is_set():
            self._take_back()
        self._deferred_take_back = None

    def _process_acks(self) -> None:
        while self._acks:
            pending = self._inflight.pop(self._acks.popleft(), None)
            if pending is not None and pending.oid is not None:
                self._unacked.pop(pending.oid, None)
        self._removable = max(self._removable, next(iter(self._unacked)) - 1 if self._unacked else self._handed_upto)

    def _remove_acknowledged(self) -> None:
        # Half a window per transaction: one fsync per acknowledgement would make a long
        # replay crawl on an SD card. A crash repeats at most those (at least once, see above).
        upto = self._removable
        caught_up = not self._unacked
        if upto > self._removed_upto and (caught_up or upto - self._removed_upto >= self.window // 2):
            if self.outbox.pending():
                self.outbox.remove_upto(upto)
            self._removed_upto = upto

    def _replay_window(self) -> None:
        with self._lock:
            if not self._connected.is_set() or self._nothing_waiting():
                return
            room = self.window - len(self._inflight)
            if room <= 0:
                return
            for oid, topic, payload, retain in self.outbox.peek_batch(room, after=self._handed_upto):
                if not self._connected.is_set() or not self._publish(oid, topic, payload, retain):
                    return

    def _republish_retained(self) -> None:
        """After a reconnect, once the backlog is handed over: the broker may have lost them."""
        with self._lock:
            if self._republish and self._connected.is_set() and self._nothing_waiting():
                self._republish = False
                for topic, payload in self._retained.items():
                    self._publish(None, topic, payload, True)

    def _report_drops(self) -> None:
        with self._lock:
            dropped = self.outbox.dropped_total()
            if dropped != self._reported_dropped and self._connected.is_set():
                self._reported_dropped = dropped
                self.client.publish(protocol.agent_topic(self.agent_id), self._agent_payload("online"),
                                    qos=QOS, retain=True)

    def _check_stalled(self) -> None:
        """A broker that stops acknowledging but keeps the socket open is as good as gone; so is
        one that does not answer a CONNECT (a NATS node whose session stream has no leader
        holds it 4 s per JetStream request: better to try again, or the next node)."""
        with self._lock:
            since = self._connecting_since
            if not self._connected.is_set() and since is not None:
                if self.monotonic() - since < self.ack_timeout or self.client.socket() is None:
                    return  # no socket yet: paho's own connect timeout covers TCP and TLS
                self._gave_up_waiting = True
                self._connecting_since = None
            elif not self._inflight or not self._connected.is_set():
                return
            else:
                oldest = next(iter(self._inflight.values()))
                waited = self.monotonic() - oldest.sent
                if waited < self.ack_timeout:
                    return
                log.warning("broker has not acknowledged for %.0f s; dropping the connection", waited)
            sock = self.client.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # paho sees the loss, calls on_disconnect, reconnects
            except OSError:
                pass

    def _take_back(self) -> None:
        """The connection is gone: unacknowledged live messages go to the outbox, in order."""
        with self._lock:
            self._connected.clear()
            self._process_acks()
            self.client.drop_out_messages()  # else paho would resend them itself, out of our order
            live = [(p.topic, p.payload, p.retain) for p in self._inflight.values() if p.oid is None]
            self._inflight.clear()
            self._unacked.clear()
            self._handed_upto = self._removable  # the rest is replayed on the next connection
            if live:
                self.outbox.put_many(live)

    # --- paho callbacks ----------------------------------------------------

    def _paho_client(self, client_id: str) -> mqtt.Client:
        return mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                           protocol=mqtt.MQTTv311)

    def _make_client(self):
        client = self._make(f"printfarm-agent-{self.agent_id}")
        client.will_set(protocol.agent_topic(self.agent_id), self._agent_payload("offline", will=True),
                        qos=QOS, retain=True)
        client.reconnect_delay_set(self.broker.reconnect_min, self.broker.reconnect_max)
        if self.broker.username:
            password = self.broker.password.reveal() if self.broker.password else None
            client.username_pw_set(self.broker.username, password)
        if self.broker.tls:
            _configure_tls(client, self.broker.tls)
        client.on_pre_connect = self._on_pre_connect
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    def _on_pre_connect(self, client, userdata):
        self._connecting_since = self.monotonic()
        self._wake.set()  # the worker's next wait ends at this attempt's ack_timeout

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self._connecting_since, self._gave_up_waiting = None, False
        if reason_code.is_failure:
            self._refused = True
            self._log_once(self._refusal(str(reason_code)))
            return
        self._log_once(None)
        self._failovers = 0
        log.info("connected to broker %s", self._where)
        with self._lock:
            self._reported_dropped = self.outbox.dropped_total()
            client.publish(protocol.agent_topic(self.agent_id), self._agent_payload("online"), qos=QOS, retain=True)
            self._republish = True
            self._generation += 1
            self._connected.set()
        self._wake.set()  # the worker replays; paho's network thread keeps turning

    def _on_connect_fail(self, client, userdata):
        self._connecting_since = None
        exc = sys.exc_info()[1]  # paho calls this from inside its except block
        self._log_once(f"cannot reach broker {self._where}: {exc or 'connection failed'}")
        self._next_server()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        was = self._connected.is_set()
        if self._lock.acquire(timeout=self.lock_wait):
            try:
                self._take_back()
            finally:
                self._lock.release()
        else:
            # paho can call this holding its message lock, which a sender holding ours may be
            # waiting for: don't wait for each other, let the worker take the messages back.
            self._connected.clear()
            self._deferred_take_back = self._generation
            self._wake.set()
        if self._stopping.is_set():
            return
        where = self._where
        self._next_server()
        if was:
            log.warning("lost the broker (%s); queueing in the outbox", reason_code)
        elif self._gave_up_waiting:
            self._log_once(f"broker {where} did not answer the connection within ack_timeout "
                           f"({self.ack_timeout:g} s); trying the next")
        elif not self._refused:
            # Closed before any CONNACK: typically TLS (no or untrusted client certificate).
            self._log_once(f"broker {where} closed the connection before "
                           f"accepting it ({reason_code}) — check [broker.tls] (ca, cert, key) and the port")
        self._refused = self._gave_up_waiting = False
        self._connecting_since = None

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        # paho holds its own locks here: only note the ack; the worker does the rest.
        self._acks.append(mid)
        if self._unacked:
            self._wake.set()

    def _refusal(self, reason: str) -> str:
        where = f"broker {self._where} refused the connection: {reason}"
        if reason in BAD_CREDENTIALS:
            user = self.broker.username or "(none)"
            return (f"{where} — check [broker] username ({user}) and the password in "
                    f"password_file / password_env")
        return where

    @property
    def _where(self) -> str:
        host, port = self._addresses[self._at]
        return f"{host}:{port}"

    def _next_server(self) -> None:
        """With several brokers, paho's next attempt goes to the next one (called on paho's
        thread, between attempts). The outbox keeps its order across brokers as across
        reconnects to one: what was not acknowledged is replayed."""
        if len(self._addresses) < 2:
            return
        self._at = (self._at + 1) % len(self._addresses)
        # Back off per round of the list, not per address: paho doubles its delay at every
        # failed attempt, so after a node's loss (when the others may refuse for a few seconds
        # while the cluster elects new leaders) an agent would wait 2, 4, 8 s between nodes that
        # work again. Setting the delay restarts paho's doubling (its public API).
        rounds = self._failovers // len(self._addresses)
        if not self._gave_up_waiting:
            # A node that took the connection but did not answer it within ack_timeout (NATS
            # waiting for a leader's election) is not a reason to back off further: the
            # election ends within seconds, and doubling waits would outlast it.
            self._failovers += 1
        delay = min(self.broker.reconnect_min * 2 ** min(rounds, 16), self.broker.reconnect_max)
        self.client.reconnect_delay_set(delay, self.broker.reconnect_max)
        host, port = self._addresses[self._at]
        self.client.connect_async(host, port, keepalive=self.broker.keepalive)

    def _log_once(self, problem: str | None) -> None:
        if problem and problem != self._last_error:
            log.error("%s; retrying with backoff (at most every %g s)", problem, self.broker.reconnect_max)
        self._last_error = problem

    def _agent_payload(self, state: str, will: bool = False) -> bytes:
        return protocol.encode(protocol.AgentStatus(
            v=protocol.SCHEMA_VERSION, ts=int(self.clock() * 1000), agent=self.agent_id, state=state,
            dropped=self.outbox.dropped_total(), printers=self.printers, version=__version__, will=will,
            key_id=self.key_id,
        ))


def _warn_if_insecure(broker: BrokerConfig) -> None:
    """Once, at start: settings that are fine on a test bench and wrong anywhere else."""
    where = f"broker {broker.host}:{broker.port}"
    if broker.password is not None and broker.tls is None:
        log.warning("%s: the password travels without TLS, readable by anyone on the way; for tests "
                    "only: add [broker.tls] with the broker's CA (docs/agent.md)", where)
    if broker.tls is not None and broker.tls.insecure:
        log.warning("%s: [broker.tls] insecure = true: the certificate's host name is not checked, so "
                    "another server with a certificate from that CA can pose as the broker; for tests "
                    "only: remove it", where)


def _configure_tls(client, tls) -> None:
    client.tls_set(
        ca_certs=tls.ca, certfile=tls.cert, keyfile=tls.key,
        cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT,
    )
    if tls.insecure:
        client.tls_insecure_set(True)

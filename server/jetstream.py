"""The collector's second transport: a durable consumer on a NATS cluster's JetStream.

Agents speak MQTT to any node of the cluster. NATS stores every QoS 1 message an MQTT client
publishes in its own replicated stream ``$MQTT_msgs`` (subject ``$MQTT.msgs.`` + the topic with
dots for slashes) *before* it sends the PUBACK (nats-server's README-MQTT.md, "MQTT Implementation
Overview"): so a message an agent saw acknowledged is on the cluster's replicas. The stream keeps
a message while a consumer is interested in it. The collectors are that consumer: all pull from
one durable consumer filtered to printfarm's topics, each message goes to one of them, and it is
acknowledged only once its points are durable (the same track / acknowledge handshake as the MQTT
loop, server/mqtt/acks.py). What a collector took and never acknowledged — it was killed — is
delivered again after ``ack_wait`` to whichever collector pulls next. (A stream of our own on
``printfarm.v1.>`` was tried first: it captures what NATS publishes after the PUBACK, so while
its leader was being re-elected after a node's loss, acknowledged messages were lost.)

Live state and alerts need *every* message, not a share: each collector also holds a plain
(core NATS) subscription to ``printfarm.v1.>``, which the ``live`` handler gets. NATS hands an
MQTT publish to core subscribers before it stores it (nats-server 2.9 ``mqttProcessPub``:
``processInboundClientMsg`` first, then ``storeMsg``), so this feed needs no JetStream and keeps
flowing while the cluster re-elects a stream leader after a node's loss. It is not durable (a
collector away misses it, and the agents' republished messages come again): the live view keeps
the newest by sample time, as on MQTT. The optional ``lease`` (server/nats_lease.py) runs on the
same connection: one collector of several sends the alerts.

nats-py is asyncio; the loop runs on the thread that calls ``run``, as the MQTT loop does.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
import threading
from typing import Callable

import nats
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError

from common.text import one_line
from server.config import NatsConfig
from server.metrics import Metrics
from server.mqtt.acks import Acknowledgements

log = logging.getLogger(__name__)

MQTT_STREAM = "$MQTT_msgs"  # NATS's stream of QoS 1 messages from MQTT clients
PREFIX = "$MQTT.msgs."
SUBJECTS = PREFIX + "printfarm.v1.>"
LIVE_SUBJECTS = "printfarm.v1.>"  # the same messages as core NATS subjects, for each collector


def topic_of(subject: str) -> str:
    """$MQTT.msgs.printfarm.v1.site.printer.kind -> printfarm/v1/site/printer/kind (IDs hold no dot)."""
    return subject[len(PREFIX):].replace(".", "/") if subject.startswith(PREFIX) else subject.replace(".", "/")


class JetStreamSubscriber:
    """Same contract as ``server.mqtt.Subscriber``: ``handle(topic, payload)`` per message,
    ``end_of_burst()`` per fetched batch, ``track(tokens)`` to acknowledge once durable (None:
    on receipt), ``flush()`` when nothing more is waiting."""

    def __init__(self, cfg: NatsConfig, handle: Callable[[str, bytes], object], *,
                 end_of_burst: Callable[[], None] = lambda: None,
                 track: Callable[[list[int]], None] | None = None,
                 flush: Callable[[], object] = lambda: None,
                 acknowledgements: Acknowledgements | None = None,
                 metrics: Metrics | None = None,
                 live: Callable[[str, bytes], object] | None = None, lease=None):
        """``handle`` gets this collector's share of the durable stream (to store); ``live``,
        when given, every message (for live state and alerts)."""
        self.cfg = cfg
        self.handle, self.end_of_burst, self.track, self.flush = handle, end_of_burst, track, flush
        self.live, self.lease = live, lease
        self._live_of = None  # the connection the live subscription is on
        self.acks = acknowledgements or Acknowledgements()
        self.metrics = metrics or Metrics()
        self.connected = False
        self._stop = threading.Event()
        self._tokens = itertools.count(1)
        self._delivered: dict[int, object] = {}  # token -> message, until durable
        self._loop: asyncio.AbstractEventLoop | None = None
        self._nc = None
        self._handler_error_logged = False
        self._last_problem: str | None = None

    # -- control (any thread) ---------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Consuming (set once the pull consumer exists): as the MQTT subscriber's ``ready``."""
        return self.connected

    def stop(self) -> None:
        self._stop.set()
        self.acks.wake()

    def close(self, timeout: float = 5.0) -> None:
        """After ``run`` returned, on the same thread: acknowledge what is durable now, then
        close (the connection lives on the loop ``run`` left open for this)."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            if self._nc is not None and not self._nc.is_closed:
                loop.run_until_complete(self._close(loop, timeout))
        finally:
            loop.close()

    # -- the loop ---------------------------------------------------------------------------------

    def run(self) -> None:
        """Consume until ``stop()``; the loop stays open for ``close``."""
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._loop.add_reader(self.acks.fileno(), self._acknowledge)
        try:
            while not self._stop.is_set():
                try:
                    await self._session()
                except (NatsError, OSError, asyncio.TimeoutError) as exc:
                    self._note(f"NATS cluster {', '.join(self.cfg.servers)}: {str(exc) or type(exc).__name__}")
                    self.connected = False
                    await self._sleep(1.0)
        finally:
            self._loop.remove_reader(self.acks.fileno())

    async def _session(self) -> None:
        if self._nc is None or self._nc.is_closed:
            self._nc = await nats.connect(**self._connect_options())
        js = self._nc.jetstream()
        await self._follow_live()
        if self.lease is not None:
            self.lease.start(self._loop, lambda: self._nc.jetstream(), self._stop)
        await self._wait_for_stream(js)
        sub = await js.pull_subscribe(SUBJECTS, durable=self.cfg.durable, stream=MQTT_STREAM,
                                      config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT,
                                                            ack_wait=self.cfg.ack_wait,
                                                            max_ack_pending=self.cfg.max_ack_pending))
        self.connected = True
        self._note(None)
        log.info("collector consuming %s as %r on %s", SUBJECTS, self.cfg.durable,
                 self._nc.connected_url.netloc if self._nc.connected_url else "?")
        while not self._stop.is_set():
            try:
                msgs = await sub.fetch(self.cfg.batch, timeout=self.cfg.fetch_wait)
            except (NatsTimeout, asyncio.TimeoutError):  # nats-py raises either, by path
                self.flush()  # nothing waiting: make what the writer holds durable now
                continue
            self._dispatch(msgs)
            if len(msgs) < self.cfg.batch:
                self.flush()

    async def _follow_live(self) -> None:
        """Once per connection (nats-py subscribes again by itself after a reconnect)."""
        if self.live is None or self._live_of is self._nc:
            return
        await self._nc.subscribe(LIVE_SUBJECTS, cb=self._on_live, pending_msgs_limit=100_000)
        self._live_of = self._nc

    async def _on_live(self, msg) -> None:
        try:
            self.live(topic_of(msg.subject), msg.data)
        except Exception:  # as for the durable feed: count, log once, go on
            self.metrics.inc("handler_errors")
            if not self._handler_error_logged:
                self._handler_error_logged = True
                log.exception("live handling of a message on %s failed (logged once; counted in handler_errors)",
                              one_line(msg.subject))

    async def _wait_for_stream(self, js) -> None:
        """NATS makes its MQTT streams when the first MQTT client connects: until then, wait."""
        while not self._stop.is_set():
            try:
                await js.stream_info(MQTT_STREAM)
                return
            except NotFoundError:
                self._note(f"NATS has no {MQTT_STREAM} stream yet (no MQTT client has connected); waiting")
                await self._sleep(1.0)

    def _dispatch(self, msgs: list) -> None:
        tokens = []
        for msg in msgs:
            self._call_handler(msg)
            token = next(self._tokens)
            self._delivered[token] = msg
            tokens.append(token)
        self.end_of_burst()
        if self.track is None:
            self._ack(tokens)
        else:
            self.track(tokens)  # after the lines they cover were put: acknowledged behind them

    def _call_handler(self, msg) -> None:
        try:
            self.handle(topic_of(msg.subject), msg.data)
        except Exception:  # a bug must not kill the loop; the message still gets its ack
            self.metrics.inc("handler_errors")
            if not self._handler_error_logged:
                self._handler_error_logged = True
                log.exception("handling a message on %s failed (logged once; counted in handler_errors)",
                              one_line(msg.subject))

    def _acknowledge(self) -> None:
        self.acks.clear_wake()
        self._ack(self.acks.take())

    def _ack(self, tokens: list[int]) -> None:
        pop = self._delivered.pop
        msgs = [m for m in (pop(t, None) for t in tokens) if m is not None]
        if msgs:
            self._loop.create_task(self._ack_all(msgs))  # one task a batch: a task a message costs more

    async def _ack_all(self, msgs: list) -> None:
        for msg in msgs:
            try:
                await msg.ack()
            except NatsError as exc:  # the cluster will deliver it again: stored twice, same point
                log.debug("acknowledgement not sent (%s); the message will come again", exc)

    async def _close(self, loop, timeout: float) -> None:
        self._loop = loop
        self._ack(self.acks.take())
        try:
            await asyncio.sleep(0)  # let the acknowledgements go out before the drain
            await asyncio.wait_for(self._nc.drain(), timeout)
        except (NatsError, asyncio.TimeoutError, OSError) as exc:
            log.warning("could not close the NATS connection cleanly: %s", exc)
        self.connected = False

    async def _sleep(self, seconds: float) -> None:
        for _ in range(int(seconds / 0.1)):
            if self._stop.is_set():
                return
            await asyncio.sleep(0.1)

    def _connect_options(self) -> dict:
        options = {"servers": self.cfg.servers, "name": self.cfg.durable, "max_reconnect_attempts": -1,
                   "reconnect_time_wait": 0.5, "connect_timeout": 3, "allow_reconnect": True,
                   "disconnected_cb": self._disconnected, "reconnected_cb": self._reconnected,
                   "error_cb": self._error}
        if self.cfg.username:
            options["user"] = self.cfg.username
            options["password"] = self.cfg.password.reveal() if self.cfg.password else None
        if self.cfg.tls:
            ctx = ssl.create_default_context(cafile=self.cfg.tls.ca)
            if self.cfg.tls.cert:
                ctx.load_cert_chain(self.cfg.tls.cert, self.cfg.tls.key)
            options["tls"] = ctx
        return options

    async def _disconnected(self) -> None:
        if not self._stop.is_set():
            log.warning("collector lost its NATS node; reconnecting to another")

    async def _reconnected(self) -> None:
        url = self._nc.connected_url
        log.info("collector reconnected to NATS at %s", url.netloc if url else "?")

    async def _error(self, exc: Exception) -> None:
        self._note(f"NATS: {exc}")

    def _note(self, problem: str | None) -> None:
        if problem and problem != self._last_problem:
            log.error("%s; retrying", one_line(problem))
        self._last_problem = problem

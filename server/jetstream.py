"""The collector's second transport: a durable JetStream consumer on a NATS cluster.

Agents speak MQTT to any node of the cluster (NATS maps ``printfarm/v1/<site>/<printer>/<kind>``
to the subject ``printfarm.v1.<site>.<printer>.<kind>``); a replicated stream keeps every message
on three nodes. NATS's MQTT side has no shared subscriptions, so collectors share the stream
natively: all pull from one durable consumer, each message goes to one of them, and a message
is acknowledged only once its points are durable (the same track / acknowledge handshake as the
MQTT loop, server/mqtt/acks.py). What a collector took and never acknowledged — it was killed —
is delivered again after ``ack_wait`` to whichever collector pulls next.

At start the collector also reads the last status of every printer and agent (an ordered,
ephemeral consumer, last message per subject), as the retained messages of an MQTT broker
would give it, so its live view is whole at once.

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
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from common.text import one_line
from server.config import NatsConfig
from server.metrics import Metrics
from server.mqtt.acks import Acknowledgements

log = logging.getLogger(__name__)

SUBJECTS = "printfarm.v1.>"
STATUS_SUBJECTS = ("printfarm.v1.*.*.status",)


def topic_of(subject: str) -> str:
    """printfarm.v1.site.printer.kind -> printfarm/v1/site/printer/kind (IDs hold no dot)."""
    return subject.replace(".", "/")


class JetStreamSubscriber:
    """Same contract as ``server.mqtt.Subscriber``: ``handle(topic, payload)`` per message,
    ``end_of_burst()`` per fetched batch, ``track(tokens)`` to acknowledge once durable (None:
    on receipt), ``flush()`` when nothing more is waiting."""

    def __init__(self, cfg: NatsConfig, handle: Callable[[str, bytes], object], *,
                 end_of_burst: Callable[[], None] = lambda: None,
                 track: Callable[[list[int]], None] | None = None,
                 flush: Callable[[], object] = lambda: None,
                 acknowledgements: Acknowledgements | None = None,
                 metrics: Metrics | None = None):
        self.cfg = cfg
        self.handle, self.end_of_burst, self.track, self.flush = handle, end_of_burst, track, flush
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
        await self._ensure_stream(js)
        sub = await js.pull_subscribe(SUBJECTS, durable=self.cfg.durable, stream=self.cfg.stream,
                                      config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT,
                                                            ack_wait=self.cfg.ack_wait,
                                                            max_ack_pending=self.cfg.max_ack_pending))
        await self._read_last_statuses(js)
        self.connected = True
        self._note(None)
        log.info("collector consuming stream %s as %r on %s", self.cfg.stream, self.cfg.durable,
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

    async def _ensure_stream(self, js) -> None:
        config = StreamConfig(name=self.cfg.stream, subjects=[SUBJECTS], num_replicas=self.cfg.replicas,
                              storage=StorageType.FILE, max_age=self.cfg.max_age_hours * 3600,
                              max_bytes=self.cfg.max_bytes)
        try:
            await js.stream_info(self.cfg.stream)
        except NotFoundError:
            await js.add_stream(config)
            log.info("created stream %s (%d replicas) on %s", self.cfg.stream, self.cfg.replicas, SUBJECTS)

    async def _read_last_statuses(self, js) -> None:
        """The last status of every printer and agent, as an MQTT broker's retained messages.
        Stored again, they overwrite their own points."""
        for subject in STATUS_SUBJECTS:
            sub = await js.subscribe(subject, ordered_consumer=True, deliver_policy=DeliverPolicy.LAST_PER_SUBJECT)
            try:
                while True:
                    try:
                        msg = await sub.next_msg(timeout=0.5)
                    except (NatsTimeout, asyncio.TimeoutError):
                        break
                    self._call_handler(msg)
                    if msg.metadata.num_pending == 0:
                        break
            finally:
                await sub.unsubscribe()
        self.end_of_burst()

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

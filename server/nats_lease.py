"""Which of several collectors on a NATS cluster sends the alerts: a lease in a JetStream
key-value bucket.

Every collector sees every message (server/jetstream.py's live feed), so every collector's alert
engine opens and resolves the same incidents; only the holder of the lease lets its
notifications out (``gate``). The lease is one key in a bucket whose ``ttl`` (the stream's
max_age) removes it when its holder stops renewing it: ``create`` succeeds for one collector
only (NATS checks the subject's last sequence, atomically, on the stream's leader), the holder
renews it every ``ttl / 3`` with ``update(last=revision)``, and a collector that could not renew
for ``ttl`` steps down before the key expires for the others.

A notification the gate holds back is kept for a while. The holder records what it lets out
(incident key and kind, with its time) in a second bucket, ``printfarm_alerts_sent``, whose
longer TTL keeps the record through a stream leader's election, and only then sends it. When a
collector takes the lease, it reads that record and sends what it held back that the old holder
did not (the engines see the same messages, a tick apart). So an incident that opened, or
recovered, while the holder was dying is sent once, by the new one. A notification recorded but
not yet handed to the receivers when its holder was killed (microseconds), or sitting in a killed
holder's delivery queue, is lost with it; when the record cannot be written (NATS unreachable for
2 s) the holder sends anyway, and a taker-over may then send it a second time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import time
from collections import deque
from typing import Callable

from nats.errors import Error as NatsError
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError

log = logging.getLogger(__name__)

BUCKET = "printfarm_leases"
KEY = "alerts"
SENT_BUCKET = "printfarm_alerts_sent"  # what the holder let out, kept longer than an election
SENT_KEY = "sent"
RECORD_WAIT = 2.0  # s the holder waits for its record before it sends anyway
HELD_FOR = 120.0  # s a held-back notification waits for a takeover before it is dropped
HELD_MAX = 1000
SENT_FOR = 60.0  # s the holder's record lists a notification it let out
SENT_MAX = 100  # ... at most this many (the record stays well under a message's cap)
SKEW = 15.0  # s two collectors' engines may differ in when they notify the same thing


class AlertLease:
    def __init__(self, ttl: float = 3.0, replicas: int = 3, holder: str | None = None,
                 clock: Callable[[], float] = time.time):
        self.ttl, self.replicas, self.clock = ttl, replicas, clock
        self.holder = holder or f"{socket.gethostname()}-{os.getpid()}"
        self.leader = False
        self.takeovers = 0
        self._lock = threading.Lock()
        self._held: deque[tuple[float, str, Callable[[], None]]] = deque()  # (time, what, send)
        self._sent: deque[tuple[str, float]] = deque()  # what this holder let out, when
        self._other_at = 0.0  # the newest renewal seen from another holder (its clock)
        self._revision = 0
        self._renewed_at = 0.0
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kick: asyncio.Event | None = None  # wake the loop: a notification is waiting
        self._outgoing: list[tuple[float, str, Callable[[], None]]] = []  # to record, then send
        self._sent_kv = None

    # -- the engine's side (any thread) ---------------------------------------------------------

    def gate(self, send: Callable[[], None], now: float, what: str) -> None:
        """Send now when this collector holds the lease; else hold it back for a takeover.
        ``what`` names the notification alike on every collector ("rule/subject/kind")."""
        with self._lock:
            if self.leader:  # recorded, then sent, on the loop (milliseconds)
                self._outgoing.append((now, what, send))
                self._loop.call_soon_threadsafe(self._kick.set)
                return
            self._held.append((now, what, send))
            while self._held and (len(self._held) > HELD_MAX or self._held[0][0] < now - HELD_FOR):
                self._held.popleft()

    # -- the loop's side --------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop, jetstream: Callable[[], object], stop: threading.Event) -> None:
        """On the subscriber's loop, once; ``jetstream()`` gives the current connection's context."""
        if self._task is None or self._task.done():
            self._loop, self._kick = loop, asyncio.Event()
            self._task = loop.create_task(self._run(jetstream, stop))

    async def _run(self, jetstream: Callable[[], object], stop: threading.Event) -> None:
        kv, due = None, 0.0
        while not stop.is_set():
            try:
                if kv is None:
                    kv = await self._bucket(jetstream(), BUCKET, self.ttl)
                    self._sent_kv = await self._bucket(jetstream(), SENT_BUCKET, HELD_FOR)
                if self._outgoing:
                    await self._record_and_send()
                if time.monotonic() >= due:
                    due = time.monotonic() + self.ttl / 3
                    await (self._renew(kv) if self.leader else self._try_take(kv))
            except (NatsError, asyncio.TimeoutError, OSError) as exc:
                log.debug("alert lease: %s", exc)
                kv = None  # the connection may be a new one by the next try
                self._step_down_if_stale()
            await self._pause(due - time.monotonic())
        self._set_leader(False)

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._kick.wait(), max(seconds, 0.01))
        except asyncio.TimeoutError:
            pass
        self._kick.clear()

    async def _bucket(self, js, name: str, ttl: float):
        try:
            return await js.key_value(name)
        except BucketNotFoundError:
            return await js.create_key_value(bucket=name, ttl=ttl, history=1, replicas=self.replicas)

    async def _record_and_send(self) -> None:
        """The holder's notifications: on record first, so that a taker-over knows of them."""
        with self._lock:
            batch, self._outgoing = self._outgoing, []
            for now, what, _ in batch:
                self._sent.append((what, now))
            while self._sent and (len(self._sent) > SENT_MAX or self._sent[0][1] < self.clock() - SENT_FOR):
                self._sent.popleft()
            record = json.dumps({"holder": self.holder, "sent": list(self._sent)}).encode()
        try:
            await asyncio.wait_for(self._sent_kv.put(SENT_KEY, record), RECORD_WAIT)
        except (NatsError, asyncio.TimeoutError, OSError) as exc:
            log.warning("could not record %d alert notification(s) before sending (%s): sent anyway; a "
                        "collector taking over may send them again", len(batch), exc)
        for _, _, send in batch:
            send()

    async def _renew(self, kv) -> None:
        try:
            self._revision = await kv.update(KEY, self._value(), last=self._revision)
            self._renewed_at = self.clock()
        except KeyWrongLastSequenceError:  # it expired, and maybe another took it
            log.warning("alert lease lost (not renewed within %g s); another collector may send alerts", self.ttl)
            self._set_leader(False)

    async def _try_take(self, kv) -> None:
        try:
            self._revision = await kv.create(KEY, self._value())
        except KeyWrongLastSequenceError:
            await self._note_holder(kv)
            return
        self._renewed_at = self.clock()
        self.takeovers += 1
        log.info("this collector (%s) now sends the alerts", self.holder)
        await self._note_sent()  # what the old holder sent is not ours to send
        self._set_leader(True)

    async def _note_holder(self, kv) -> None:
        """Not the holder: note when the holder last renewed, and what it has sent."""
        try:
            value = json.loads((await kv.get(KEY)).value or b"{}")
        except KeyNotFoundError:
            return
        if value.get("holder") != self.holder:
            with self._lock:
                self._other_at = max(self._other_at, float(value.get("at", 0)))
            await self._note_sent()

    async def _note_sent(self) -> None:
        try:
            record = json.loads((await self._sent_kv.get(SENT_KEY)).value or b"{}")
        except KeyNotFoundError:
            record = {}
        if record.get("holder") == self.holder:
            return
        sent = [(what, float(at)) for what, at in record.get("sent", [])]
        with self._lock:
            # What the holder sent, and what it must have sent by now, is not ours to send.
            self._held = deque(h for h in self._held if h[0] > self._other_at - SKEW
                               and not any(h[1] == what and abs(h[0] - at) <= SKEW for what, at in sent))

    def _step_down_if_stale(self) -> None:
        # The key expires ttl after our last renewal: stop before another may take it.
        if self.leader and self.clock() - self._renewed_at > self.ttl * 0.8:
            log.warning("alert lease not renewed for %.1f s (NATS unreachable); holding alerts back", self.ttl)
            self._set_leader(False)

    def _set_leader(self, leader: bool) -> None:
        with self._lock:
            self.leader = leader
            if not leader:  # what waits for its record goes back with the held: the next holder decides
                self._held.extend(self._outgoing)
                self._outgoing = []
                return
            due = [send for at, what, send in self._held if at > self._other_at - SKEW]
            self._held.clear()
        for send in due:
            send()
        if due:
            log.info("sent %d alert notification(s) held back while another collector held the lease", len(due))

    def _value(self) -> bytes:
        return json.dumps({"holder": self.holder, "at": self.clock()}).encode()

    def health(self) -> dict:
        return {"alert_lease": self.leader}

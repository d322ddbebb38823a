"""The alert lease (server/nats_lease.py) against a key-value bucket that behaves like NATS's on
the calls it makes: create only when absent, update only at the last revision, expiry by TTL."""

from __future__ import annotations

import asyncio
import json

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from server.nats_lease import AlertLease


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Entry:
    def __init__(self, value: bytes):
        self.value = value


class Bucket:
    """One key's revisions with the time written; entries older than ``ttl`` are gone."""

    def __init__(self, clock: Clock, ttl: float):
        self.clock, self.ttl = clock, ttl
        self.revision, self.value, self.at = 0, None, None

    def _live(self) -> bool:
        return self.value is not None and self.clock() - self.at < self.ttl

    async def create(self, key, value):
        if self._live():
            raise KeyWrongLastSequenceError()
        return self._write(value)

    async def update(self, key, value, last):
        if not self._live() or last != self.revision:
            raise KeyWrongLastSequenceError()
        return self._write(value)

    async def get(self, key):
        if not self._live():
            raise KeyNotFoundError()
        return Entry(self.value)

    def _write(self, value):
        self.revision += 1
        self.value, self.at = value, self.clock()
        return self.revision


    async def put(self, key, value):
        return self._write(value)


class Pair:
    """Two collectors' leases on one lease bucket and one record bucket, driven step by step."""

    def __init__(self):
        self.clock = Clock()
        self.kv, self.record = Bucket(self.clock, ttl=3.0), Bucket(self.clock, ttl=120.0)
        self.a, self.b = (AlertLease(3.0, holder=name, clock=self.clock) for name in "ab")
        self.sent: list[str] = []

    def attach(self) -> None:  # inside the running loop, as start() does
        for lease in (self.a, self.b):
            lease._loop, lease._kick, lease._sent_kv = asyncio.get_running_loop(), asyncio.Event(), self.record

    async def step(self, lease: AlertLease) -> None:
        """One turn of the lease's loop: record and send what waits, renew or try to take."""
        if lease._outgoing:
            await lease._record_and_send()
        await (lease._renew(self.kv) if lease.leader else lease._try_take(self.kv))

    def notify(self, lease: AlertLease, what: str) -> None:
        lease.gate(lambda: self.sent.append(f"{lease.holder}: {what}"), self.clock(), what)


def test_one_collector_sends_and_the_other_holds_back():
    async def run():
        t = Pair()
        t.attach()
        await t.step(t.a), await t.step(t.b)
        t.notify(t.a, "printer_down/lab/p1/firing"), t.notify(t.b, "printer_down/lab/p1/firing")
        await t.step(t.a), await t.step(t.b)
        assert (t.a.leader, t.b.leader) == (True, False) and t.sent == ["a: printer_down/lab/p1/firing"]
    asyncio.run(run())


def test_a_taker_over_sends_what_the_dead_holder_did_not_and_only_that():
    async def run():
        t = Pair()
        t.attach()
        await t.step(t.a), await t.step(t.b)
        t.notify(t.a, "p1/firing")
        await t.step(t.a)  # recorded, then sent; a dies right after
        t.clock.now += 0.3  # b's engine notifies a tick later
        t.notify(t.b, "p1/firing")
        t.clock.now += 1.0  # meanwhile p1 recovers and p2 goes down, on b's engine only
        t.notify(t.b, "p1/resolved"), t.notify(t.b, "p2/firing")
        await t.step(t.b)
        assert not t.b.leader  # a's lease has not expired yet
        t.clock.now += 3.0  # it has now (and the record outlives it)
        await t.step(t.b)
        assert t.b.leader
        assert t.sent == ["a: p1/firing", "b: p1/resolved", "b: p2/firing"]
    asyncio.run(run())


def test_a_holder_that_cannot_renew_steps_down_and_sends_what_it_held_when_it_takes_the_lease_again():
    async def run():
        t = Pair()
        t.attach()
        await t.step(t.a)
        t.clock.now += 2.5  # no renewal reached NATS for 2.5 s of a 3 s lease
        t.a._step_down_if_stale()
        assert not t.a.leader
        t.notify(t.a, "p1/firing")
        assert t.sent == []
        t.clock.now += 1.0
        await t.step(t.a)  # the key expired; a takes it again and sends what it held
        assert t.a.leader and t.sent == ["a: p1/firing"]
    asyncio.run(run())


def test_the_record_names_recent_sends_only():
    async def run():
        t = Pair()
        t.attach()
        await t.step(t.a)
        t.notify(t.a, "old/firing")
        await t.step(t.a)
        t.clock.now += 61
        t.kv._write(t.a._value())  # a renewed meanwhile
        t.notify(t.a, "new/firing")
        await t.step(t.a)
        assert [what for what, _ in json.loads(t.record.value)["sent"]] == ["new/firing"]
    asyncio.run(run())

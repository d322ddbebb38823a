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


def step(lease: AlertLease, kv: Bucket) -> None:
    """One turn of the lease's loop."""
    asyncio.run(lease._renew(kv) if lease.leader else lease._try_take(kv))


def two(clock: Clock):
    kv = Bucket(clock, ttl=3.0)
    return kv, AlertLease(3.0, holder="a", clock=clock), AlertLease(3.0, holder="b", clock=clock)


def test_one_collector_sends_and_the_other_holds_back():
    clock = Clock()
    kv, a, b = two(clock)
    step(a, kv), step(b, kv)
    sent = []
    for lease, who in ((a, "a"), (b, "b")):
        lease.gate(lambda who=who: sent.append(who), clock(), "printer_down/lab/p1/firing")
    assert (a.leader, b.leader) == (True, False) and sent == ["a"]


def test_a_taker_over_sends_what_the_dead_holder_did_not_and_only_that():
    clock = Clock()
    kv, a, b = two(clock)
    step(a, kv), step(b, kv)
    sent = []
    a.gate(lambda: sent.append("a: p1 firing"), clock(), "printer_down/lab/p1/firing")
    kv._write(a._value())  # a renews at once after a send: its list names the notice
    clock.now += 0.3  # b's engine notifies a tick later
    b.gate(lambda: sent.append("b: p1 firing"), clock(), "printer_down/lab/p1/firing")
    step(b, kv)  # b reads a's lease: that one went out
    # a dies; meanwhile p1 recovers and p2 goes down, on b's engine only
    clock.now += 1.0
    b.gate(lambda: sent.append("b: p1 resolved"), clock(), "printer_down/lab/p1/resolved")
    b.gate(lambda: sent.append("b: p2 firing"), clock(), "printer_down/lab/p2/firing")
    step(b, kv)
    assert not b.leader  # a's lease has not expired yet
    clock.now += 3.0
    step(b, kv)
    assert b.leader
    assert sent == ["a: p1 firing", "b: p1 resolved", "b: p2 firing"]


def test_a_holder_that_cannot_renew_steps_down_before_its_key_expires():
    clock = Clock()
    kv, a, _ = two(clock)
    step(a, kv)
    clock.now += 2.5  # no renewal reached NATS for 2.5 s of a 3 s lease
    a._step_down_if_stale()
    assert not a.leader
    sent = []
    a.gate(lambda: sent.append("held"), clock(), "printer_down/lab/p1/firing")
    assert sent == []
    clock.now += 1.0
    step(a, kv)  # the key expired; a takes it again and sends what it held
    assert a.leader and sent == ["held"]


def test_the_lease_value_names_recent_sends_only():
    clock = Clock()
    _, a, _ = two(clock)
    a.leader = True
    a.gate(lambda: None, clock(), "old/firing")
    clock.now += 61
    a.gate(lambda: None, clock(), "new/firing")
    assert [what for what, _ in json.loads(a._value())["sent"]] == ["new/firing"]

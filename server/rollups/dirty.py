"""Which printers got data that may change hours already rolled up (an ingest listener).

A message at time T changes a printer's timeline from its data before T onwards (the time after
that data was unknown, or in another state). Rolled-up hours can change only when:

- T is before ``rolled_until`` (late: an outbox replayed after hours, a redelivery);
- the printer sent nothing since the hours before ``rolled_until`` were rolled up (or since the
  collector started, unless ``prime`` found its data since): its data may have stopped inside a
  rolled-up hour, whose tail then reads "unknown", and now goes on. What it sent is noted at most
  every ``SEEN_EVERY`` ms (less than the job's ``settle``), so a steady printer is never marked;
- it is a session start (an agent's first poll after it started): it makes the time between the
  printer's previous data and itself unknown, and that data may lie in a rolled-up hour even when
  newer data arrived first (out of order).

A marked printer's hours are recomputed by the job from its last data before T. The hot path is
one dict look-up and a few comparisons per message; almost every message marks nothing.

In the collector, ingest's lines reach the writer a burst (one read of the socket) at a time, so
with ``bursts`` the marks of a burst are held until the collector has handed its lines over
(``end_burst``): a mark the job takes always has its data ahead of the job's write barrier. For the
same reason the job, after announcing ``rolled_until``, waits for the burst under way, whose
messages were checked against the old value, to be handed over (``await_burst``).
"""

from __future__ import annotations

import threading

from common.protocol import Status
from server.reports.query import Key


SEEN_EVERY = 10_000  # ms


class DirtyMarks:
    def __init__(self, bursts: bool = False) -> None:
        self.rolled_until = 0  # ms; the job announces it before rolling up the hours before it
        self._seen: dict = {}  # Tags -> a time it sent data at; only the ingest thread touches it
        self._marks: dict[Key, int] = {}
        self._held: dict[Key, int] | None = {} if bursts else None  # this burst's marks (ingest thread)
        self._in_burst = False
        self._bursts = 0  # bursts handed over so far
        self._waiting = 0  # jobs in await_burst
        self._lock = threading.Condition()

    def on_message(self, msg, tags, state) -> None:
        self._in_burst = True  # before reading rolled_until: await_burst relies on this order
        if tags is None:  # an agent's own status
            return
        ts, rolled = msg.ts, self.rolled_until
        seen = self._seen.get(tags, -1)
        if ts >= rolled and seen >= rolled and (type(msg) is not Status or msg.prev_state is not None):
            if ts - seen >= SEEN_EVERY:  # the usual case: nothing rolled up can change
                self._seen[tags] = ts
            return
        if ts > seen:
            self._seen[tags] = ts
        if self._held is None:
            self.mark((tags.site, tags.printer), ts)
        elif ts < self._held.get(key := (tags.site, tags.printer), ts + 1):
            self._held[key] = ts

    def end_burst(self) -> None:
        """The collector handed this burst's lines to the writer: its marks may be taken now.
        Once per read of the socket, so the usual case takes no lock."""
        if self._held:
            held, self._held = self._held, {}
            with self._lock:
                for key, ts in held.items():
                    if ts < self._marks.get(key, ts + 1):
                        self._marks[key] = ts
        self._in_burst = False
        self._bursts += 1
        if self._waiting:  # read after the two above; await_burst sets it before reading them
            with self._lock:
                self._lock.notify_all()

    def await_burst(self, timeout: float) -> bool:
        """Wait until the burst under way (if any) is handed over; False if it took longer."""
        if self._held is None:
            return True
        with self._lock:
            self._waiting += 1
            try:
                seen = self._bursts
                return self._lock.wait_for(lambda: not self._in_burst or self._bursts != seen, timeout)
            finally:
                self._waiting -= 1

    def prime(self, last_data: dict) -> None:
        """What each printer (by its Tags) sent last before the collector started, from the
        database: those with data since ``rolled_until`` need no mark for their next message."""
        for tags, ts in last_data.items():
            if ts > self._seen.get(tags, -1):
                self._seen[tags] = ts

    def mark(self, key: Key, ts: int) -> None:
        with self._lock:
            if ts < self._marks.get(key, ts + 1):
                self._marks[key] = ts

    def take(self) -> dict[Key, int]:
        """The marks so far, removing them (``restore`` puts them back if the run fails)."""
        with self._lock:
            marks, self._marks = self._marks, {}
        return marks

    def restore(self, marks: dict[Key, int]) -> None:
        for key, ts in marks.items():
            self.mark(key, ts)

    def pending(self) -> dict[Key, int]:
        with self._lock:
            return dict(self._marks)

"""Which printers got data that may change hours already rolled up (an ingest listener).

A message at time T changes a printer's timeline from its data before T (the time after that was
unknown, or in another state) onwards. So a printer is marked, with the earliest such T, when:

- T is before ``rolled_until`` (late: an outbox replayed after hours, a redelivery);
- T is before the newest data seen from it (out of order);
- the newest data seen from it is before ``rolled_until``, or none was seen since the collector
  started: its data may have stopped inside an hour that was rolled up meanwhile, whose tail then
  reads "unknown", and now goes on.

The job looks up the printer's data before T and recomputes from that hour. Marking costs a dict
look-up and two comparisons per message; most messages mark nothing.
"""

from __future__ import annotations

import threading

from server.reports.query import Key


class DirtyMarks:
    def __init__(self) -> None:
        self.rolled_until = 0  # ms; set by the job once hours before it are rolled up
        self._newest: dict[Key, int] = {}  # only the ingest thread touches this
        self._marks: dict[Key, int] = {}
        self._lock = threading.Lock()

    def on_message(self, msg, tags, state) -> None:
        if tags is None:  # an agent's own status
            return
        key = (tags.site, tags.printer)
        ts, newest = msg.ts, self._newest.get(key)
        if newest is None or ts < newest or newest < self.rolled_until or ts < self.rolled_until:
            self.mark(key, ts)
        if newest is None or ts > newest:
            self._newest[key] = ts

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

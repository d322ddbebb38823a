"""Where messages wait while the broker is away.

``Outbox`` is the interface the publisher uses. ``MemoryOutbox`` keeps a bounded
queue in memory; the on-disk outbox (surviving kill -9 and power cuts) implements
the same methods.
"""

from __future__ import annotations

import collections
import itertools
import logging
from typing import Protocol

log = logging.getLogger(__name__)


class Outbox(Protocol):
    def put(self, topic: str, payload: bytes, retain: bool) -> None: ...
    def pending(self) -> int: ...
    def peek_batch(self, limit: int) -> list[tuple[int, str, bytes, bool]]: ...
    def remove_upto(self, item_id: int) -> None: ...
    def dropped_total(self) -> int: ...
    def close(self) -> None: ...


class MemoryOutbox:
    """Bounded FIFO in memory; drops the oldest when full and counts what it dropped."""

    def __init__(self, max_messages: int = 10_000):
        self._items: collections.deque = collections.deque()
        self._ids = itertools.count(1)
        self._max = max_messages
        self._dropped = 0

    def put(self, topic: str, payload: bytes, retain: bool) -> None:
        if len(self._items) >= self._max:
            self._items.popleft()
            self._dropped += 1
        self._items.append((next(self._ids), topic, payload, retain))

    def pending(self) -> int:
        return len(self._items)

    def peek_batch(self, limit: int) -> list[tuple[int, str, bytes, bool]]:
        return list(itertools.islice(self._items, limit))

    def remove_upto(self, item_id: int) -> None:
        while self._items and self._items[0][0] <= item_id:
            self._items.popleft()

    def dropped_total(self) -> int:
        return self._dropped

    def close(self) -> None:
        pass

"""Where messages wait while the broker is away.

``Outbox`` is the interface the publisher uses. ``MemoryOutbox`` keeps a bounded
queue in memory (tests, and a fallback); ``SQLiteOutbox`` keeps it on disk so that
it survives ``kill -9`` and power cuts.

Items have increasing ids that are never reused, so the publisher can remember
"handed to the broker up to id N" across drains. The publisher calls ``remove_upto``
only once the broker has acknowledged every item up to that id: an item leaves the
outbox after its PUBACK, never before, so a crash during replay replays it again
(at least once; the collector stores a repeat, same series and timestamp, as the
same point).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Protocol

if TYPE_CHECKING:
    from agent.config import OutboxConfig

log = logging.getLogger(__name__)

Item = tuple[int, str, bytes, bool]  # (id, topic, payload, retain)
LOCK_TIMEOUT = 2.0  # seconds to wait for the outbox file's lock (held by a running agent)


class Outbox(Protocol):
    def put(self, topic: str, payload: bytes, retain: bool) -> None: ...
    def put_many(self, items: Iterable[tuple[str, bytes, bool]]) -> None: ...
    def pending(self) -> int: ...
    def last_id(self) -> int: ...
    def peek_batch(self, limit: int, after: int = 0) -> list[Item]: ...
    def remove_upto(self, item_id: int) -> None: ...
    def dropped_total(self) -> int: ...
    def close(self) -> None: ...


class MemoryOutbox:
    """Bounded FIFO in memory; drops the oldest when full and counts what it dropped."""

    def __init__(self, max_messages: int = 10_000):
        self._items: collections.deque = collections.deque()
        self._ids = itertools.count(1)
        self._last = 0
        self._max = max_messages
        self._dropped = 0

    def put(self, topic: str, payload: bytes, retain: bool) -> None:
        self.put_many([(topic, payload, retain)])

    def put_many(self, items: Iterable[tuple[str, bytes, bool]]) -> None:
        for topic, payload, retain in items:
            if len(self._items) >= self._max:
                self._items.popleft()
                self._dropped += 1
            self._last = next(self._ids)
            self._items.append((self._last, topic, payload, retain))

    def pending(self) -> int:
        return len(self._items)

    def last_id(self) -> int:
        return self._last

    def peek_batch(self, limit: int, after: int = 0) -> list[Item]:
        return list(itertools.islice((i for i in self._items if i[0] > after), limit))

    def remove_upto(self, item_id: int) -> None:
        while self._items and self._items[0][0] <= item_id:
            self._items.popleft()

    def dropped_total(self) -> int:
        return self._dropped

    def close(self) -> None:
        pass


_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids never come back after a drain
    enqueued REAL NOT NULL,                -- agent clock, seconds; for the age cap
    size INTEGER NOT NULL,                 -- bytes of topic + payload; for the size cap
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    retain INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class SQLiteOutbox:
    """A bounded FIFO in one SQLite file in WAL mode.

    Every ``put``/``put_many`` is one transaction with ``synchronous=FULL``: when it
    returns, the messages are on the card and survive a power cut. Caps by count,
    bytes and age drop the oldest first; the running drop count is kept in the file
    too, so the number the agent reports never goes back after a restart.
    """

    def __init__(self, path: str | Path, cfg: "OutboxConfig | None" = None,
                 clock: Callable[[], float] = time.time):
        if cfg is None:
            from agent.config import OutboxConfig

            cfg = OutboxConfig()
        self.path = Path(path)
        self.cfg = cfg
        self.clock = clock
        self._lock = threading.Lock()
        self._db = _open(self.path)
        self._count, self._bytes, self._last, self._oldest = self._scan()
        self._dropped = self._meta("dropped")
        self._warned = False
        if self._count:
            log.info("outbox %s holds %d message(s) from before the restart; they are replayed first",
                     self.path, self._count)

    # --- the Outbox interface ------------------------------------------------

    def put(self, topic: str, payload: bytes, retain: bool) -> None:
        self.put_many([(topic, payload, retain)])

    def put_many(self, items: Iterable[tuple[str, bytes, bool]]) -> None:
        now = self.clock()
        rows, dropped = self._trim_batch([(now, len(t) + len(p), t, p, int(r)) for t, p, r in items])
        if not rows and not dropped:
            return
        with self._lock, _transaction(self._db):  # the caps and the insert commit together
            dropped += self._enforce_caps(now, len(rows), sum(r[1] for r in rows))
            if rows:
                self._insert(now, rows)
            if dropped:
                self._dropped += dropped
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('dropped', ?)", (self._dropped,))
        if dropped:
            self._note_drops(dropped)

    def pending(self) -> int:
        return self._count

    def last_id(self) -> int:
        return self._last

    def peek_batch(self, limit: int, after: int = 0) -> list[Item]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, retain FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                (after, limit)).fetchall()
        return [(i, t, bytes(p), bool(r)) for i, t, p, r in rows]

    def remove_upto(self, item_id: int) -> None:
        with self._lock, _transaction(self._db):
            if not self._delete_where("id <= ?", (item_id,)):
                return
            self._oldest = self._head_time()
        if not self._count:
            self._warned = False
            self._shrink()

    def dropped_total(self) -> int:
        return self._dropped

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- caps ---------------------------------------------------------------------

    def _trim_batch(self, rows: list) -> tuple[list, int]:
        """A batch that alone exceeds a cap keeps only its newest part."""
        keep, size = 0, 0
        for row in reversed(rows):
            if keep + 1 > self.cfg.max_messages or size + row[1] > self.cfg.max_bytes:
                break
            keep, size = keep + 1, size + row[1]
        return rows[len(rows) - keep:], len(rows) - keep

    def _enforce_caps(self, now: float, adding: int, adding_bytes: int) -> int:
        """Delete the oldest rows so that ``adding`` more fit; returns how many went."""
        dropped = 0
        cutoff = now - self.cfg.max_age_hours * 3600
        if self._oldest is not None and self._oldest < cutoff:
            dropped += self._delete_where("enqueued < ?", (cutoff,))
        excess = self._count + adding - self.cfg.max_messages
        if excess > 0:
            dropped += self._delete_oldest(excess)
        excess_bytes = self._bytes + adding_bytes - self.cfg.max_bytes
        if excess_bytes > 0:
            dropped += self._delete_oldest_bytes(excess_bytes)
        if dropped:
            self._oldest = self._head_time()
        return dropped

    def _delete_oldest(self, n: int) -> int:
        row = self._db.execute("SELECT id FROM outbox ORDER BY id LIMIT 1 OFFSET ?", (n - 1,)).fetchone()
        return self._delete_where("id <= ?", (row[0],)) if row else self._delete_where("1", ())

    def _delete_oldest_bytes(self, need: int) -> int:
        freed, upto = 0, None
        for item_id, size in self._db.execute("SELECT id, size FROM outbox ORDER BY id"):
            freed, upto = freed + size, item_id
            if freed >= need:
                break
        return self._delete_where("id <= ?", (upto,)) if upto is not None else 0

    def _delete_where(self, where: str, args: tuple) -> int:
        count, size = self._db.execute(
            f"SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox WHERE {where}", args).fetchone()
        if count:
            self._db.execute(f"DELETE FROM outbox WHERE {where}", args)
            self._count -= count
            self._bytes -= size
        return count

    def _note_drops(self, dropped: int) -> None:
        # Once per outage, not once per message: a full outbox drops on every put.
        if not self._warned:
            log.warning("outbox full (caps: %d messages, %d bytes, %g h): dropping the oldest; "
                        "the drop count is published with the agent status",
                        self.cfg.max_messages, self.cfg.max_bytes, self.cfg.max_age_hours)
            self._warned = True
        log.debug("outbox dropped %d (%d in all)", dropped, self._dropped)

    # --- bookkeeping ----------------------------------------------------------

    def _insert(self, now: float, rows: list) -> None:
        self._db.executemany(
            "INSERT INTO outbox (enqueued, size, topic, payload, retain) VALUES (?, ?, ?, ?, ?)", rows)
        self._last = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()[0]
        self._count += len(rows)
        self._bytes += sum(r[1] for r in rows)
        if self._oldest is None:
            self._oldest = now

    def _scan(self) -> tuple[int, int, int, float | None]:
        count, size, oldest = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0), MIN(enqueued) FROM outbox").fetchone()
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        return count, size, row[0] if row else 0, oldest

    def _head_time(self) -> float | None:
        if not self._count:
            return None
        return self._db.execute("SELECT enqueued FROM outbox ORDER BY id LIMIT 1").fetchone()[0]

    def _meta(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else 0

    def _shrink(self) -> None:
        # Drained: fold the WAL back and truncate it, so an idle agent leaves the card alone.
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:  # busy is harmless; the next drain tries again
                log.debug("outbox checkpoint skipped: %s", exc)


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection):
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.rollback()
        raise
    db.commit()


def _open(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: we open transactions ourselves (_transaction); the lock serialises threads.
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=LOCK_TIMEOUT)
    # EXCLUSIVE before WAL: the WAL index lives in our heap, not in a mmapped -shm file the
    # kernel would write back to the card; and a second agent on the same state_dir fails.
    db.execute("PRAGMA locking_mode=EXCLUSIVE")
    try:
        db.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError as exc:
        db.close()
        raise RuntimeError(f"outbox {path} is in use ({exc}): is another agent running with the same "
                           f"state_dir? Give each agent its own state_dir") from None
    # FULL: a commit is fsynced before put() returns, so a power cut cannot take it back.
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(_SCHEMA)
    return db

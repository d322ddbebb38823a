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

The caps are shared fairly between printers: when the outbox is full, what goes is the
oldest message of the printer holding the most (by count for the count cap, by bytes for
the byte cap). A printer flooding the outbox displaces only its own messages; a printer
holding no more than its share of the caps never loses one to another printer.
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


def source_of(topic: str) -> str:
    """The printer a message is about (``site/printer`` of a printer topic), for fair caps."""
    parts = topic.split("/")
    return "/".join(parts[2:4]) if len(parts) >= 5 and parts[0] == "printfarm" else topic


class MemoryOutbox:
    """Bounded FIFO in memory; when full drops the oldest message of the printer holding the
    most, and counts what it dropped."""

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
                self._drop_from_largest(source_of(topic))
                self._dropped += 1
            self._last = next(self._ids)
            self._items.append((self._last, topic, payload, retain))

    def _drop_from_largest(self, incoming: str) -> None:
        counts = collections.Counter(source_of(item[1]) for item in self._items)
        counts[incoming] += 1
        largest = max(counts, key=lambda s: counts[s])
        for i, item in enumerate(self._items):
            if source_of(item[1]) == largest:
                del self._items[i]
                return
        self._items.popleft()  # only the incoming printer is over: its oldest stored goes

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
    retain INTEGER NOT NULL,
    source TEXT NOT NULL DEFAULT ''        -- the printer (site/printer): caps are shared fairly
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
        self._held = self._per_source()  # source -> [count, bytes]
        self._warned_sources: set[str] = set()
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
        rows, dropped = self._trim_batch([(now, len(t) + len(p), t, p, int(r), source_of(t)) for t, p, r in items])
        if not rows and not dropped:
            return
        with self._lock, _transaction(self._db):  # the caps and the insert commit together
            dropped += self._enforce_caps(now, rows)
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
            self._warned_sources.clear()
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

    def _enforce_caps(self, now: float, rows: list) -> int:
        """Delete rows so that ``rows`` fit: past the age cap, then the oldest of the printer
        holding the most (of ``rows`` too, when that printer has nothing stored); returns how
        many went."""
        dropped = 0
        cutoff = now - self.cfg.max_age_hours * 3600
        if self._oldest is not None and self._oldest < cutoff:
            dropped += self._delete_where("enqueued < ?", (cutoff,))
        dropped += self._make_room(0, rows)
        dropped += self._make_room(1, rows)
        if dropped:
            self._oldest = self._head_time()
        return dropped

    def _make_room(self, measure: int, rows: list) -> int:
        """Free room for ``rows`` under the count cap (measure 0) or the byte cap (1): oldest
        first from the printer that holds the most once ``rows`` are added."""
        cap = self.cfg.max_messages if measure == 0 else self.cfg.max_bytes
        dropped = 0
        while True:
            incoming: dict[str, int] = {}
            for row in rows:
                incoming[row[5]] = incoming.get(row[5], 0) + (1 if measure == 0 else row[1])
            stored = {s: held[measure] for s, held in self._held.items() if held[0]}
            excess = sum(stored.values()) + sum(incoming.values()) - cap
            if excess <= 0:
                return dropped
            total = {s: stored.get(s, 0) + incoming.get(s, 0) for s in stored.keys() | incoming.keys()}
            largest = max(total, key=lambda s: total[s])
            rest = [v for s, v in total.items() if s != largest]
            # Down to the next printer's level at most, then share the rest of the excess.
            want = min(excess, max(total[largest] - max(rest, default=0), 1))
            if stored.get(largest):
                went = self._delete_oldest_of(largest, want, measure)[1]
            else:  # a batch bigger than its share: its own oldest go
                went = self._drop_incoming(rows, largest, want, measure)
            if not went:
                return dropped
            dropped += went
            self._note_source(largest)

    @staticmethod
    def _drop_incoming(rows: list, source: str, want: int, measure: int) -> int:
        freed = went = 0
        for row in list(rows):
            if freed >= want:
                break
            if row[5] == source:
                rows.remove(row)
                freed, went = freed + (1 if measure == 0 else row[1]), went + 1
        return went

    def _delete_oldest_of(self, source: str, want: int, measure: int) -> tuple[int, int]:
        freed, upto = 0, None
        for item_id, size in self._db.execute(
                "SELECT id, size FROM outbox WHERE source = ? ORDER BY id", (source,)):
            freed, upto = freed + (1 if measure == 0 else size), item_id
            if freed >= want:
                break
        if upto is None:
            return 0, 0
        return freed, self._delete_where("source = ? AND id <= ?", (source, upto))

    def _delete_where(self, where: str, args: tuple) -> int:
        went = self._db.execute(
            f"SELECT source, COUNT(*), SUM(size) FROM outbox WHERE {where} GROUP BY source", args).fetchall()
        if not went:
            return 0
        self._db.execute(f"DELETE FROM outbox WHERE {where}", args)
        for source, count, size in went:
            self._count -= count
            self._bytes -= size
            held = self._held.get(source)
            if held is not None:
                held[0] -= count
                held[1] -= size
        return sum(count for _, count, _ in went)

    def _note_source(self, source: str) -> None:
        if source not in self._warned_sources:
            self._warned_sources.add(source)
            log.warning("outbox full: dropping the oldest messages of %s, which holds the most", source)

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
            "INSERT INTO outbox (enqueued, size, topic, payload, retain, source) VALUES (?, ?, ?, ?, ?, ?)", rows)
        for row in rows:
            held = self._held.setdefault(row[5], [0, 0])
            held[0], held[1] = held[0] + 1, held[1] + row[1]
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

    def _per_source(self) -> dict[str, list[int]]:
        return {source: [count, size] for source, count, size in self._db.execute(
            "SELECT source, COUNT(*), COALESCE(SUM(size), 0) FROM outbox GROUP BY source")}

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
    columns = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
    if "source" not in columns:  # an outbox written before the caps were shared
        db.execute("ALTER TABLE outbox ADD COLUMN source TEXT NOT NULL DEFAULT ''")
    db.execute("CREATE INDEX IF NOT EXISTS outbox_source ON outbox (source, id)")
    return db

"""An on-disk FIFO of line-protocol batches, for while InfluxDB is down or too slow.

One file per batch, named by a rising sequence number, so the order survives a
restart and draining is "read the oldest file, write it, delete it". A batch is
written to a temporary name, fsynced and renamed, so a crash leaves either the
whole batch or nothing (a leftover ``.tmp`` was never acknowledged to the broker:
the broker still holds those messages and delivers them again). A batch for another database than
the collector's own (an organisation's, docs/organisations.md) has it in its name after a ``~``.
"""

from __future__ import annotations

import collections
import logging
import os
from pathlib import Path

from common.text import one_line

log = logging.getLogger(__name__)

SUFFIX = ".lp"
DB_MARK = "~"


class SpoolFull(Exception):
    pass


class Spool:
    def __init__(self, directory: str | os.PathLike, max_bytes: int, fsync: bool = True):
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self.fsync = fsync
        self.dir.mkdir(parents=True, exist_ok=True)
        self._files: collections.deque[tuple[Path, int, str | None]] = collections.deque()
        self.bytes = 0
        self._next = 0
        self._load()

    def _load(self) -> None:
        for stale in self.dir.glob("*.tmp"):
            stale.unlink()
        found = sorted(self._batches(), key=_number)
        for path in found:
            size = path.stat().st_size
            self._files.append((path, size, _database(path)))
            self.bytes += size
        if found:
            self._next = _number(found[-1]) + 1
            log.info("spool %s holds %d batch(es), %d bytes from before; writing them first",
                     self.dir, len(found), self.bytes)

    def _batches(self) -> list[Path]:
        """Our batch files; anything else (a stray "notes.lp", a directory) is left alone."""
        ours, stray = [], []
        for path in self.dir.glob(f"*{SUFFIX}"):
            number, _, db = path.stem.partition(DB_MARK)
            ours_ = number.isdigit() and number.isascii() and (not _ or _is_name(db)) and path.is_file()
            (ours if ours_ else stray).append(path)
        if stray:
            log.warning("spool %s: ignoring %d file(s) that are not batches of ours, e.g. %s",
                        self.dir, len(stray), one_line(stray[0].name, 80))
        return ours

    def __len__(self) -> int:
        return len(self._files)

    def has_room(self, size: int) -> bool:
        # An empty spool always takes one batch, however large, so progress is possible.
        return not self._files or self.bytes + size <= self.max_bytes

    def append(self, body: bytes, db: str | None = None) -> None:
        """A batch for ``db`` (None: the collector's own database)."""
        if not self.has_room(len(body)):
            raise SpoolFull(f"spool {self.dir} is full ({self.bytes} of {self.max_bytes} bytes)")
        if db is not None and not _is_name(db):
            raise ValueError(f"database name {db!r} cannot be a spool file's name")
        path = self.dir / (f"{self._next:016d}{SUFFIX}" if db is None else f"{self._next:016d}{DB_MARK}{db}{SUFFIX}")
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(body)
            if self.fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        self._next += 1
        self._files.append((path, len(body), db))
        self.bytes += len(body)

    def peek(self) -> bytes:
        """The oldest batch (IndexError when empty)."""
        return self._files[0][0].read_bytes()

    def peek_with_database(self) -> tuple[bytes, str | None]:
        """The oldest batch and its database (None: the collector's own)."""
        path, _, db = self._files[0]
        return path.read_bytes(), db

    def databases(self) -> set[str | None]:
        """The databases the batches waiting are for."""
        return {db for _, _, db in self._files}

    def pop(self) -> None:
        """Forget the oldest batch: it is in InfluxDB now."""
        path, size, _ = self._files.popleft()
        path.unlink(missing_ok=True)
        self.bytes -= size


def _number(path: Path) -> int:
    return int(path.stem.partition(DB_MARK)[0])


def _database(path: Path) -> str | None:
    return path.stem.partition(DB_MARK)[2] or None


def _is_name(db: str) -> bool:
    """A database name the spool can put in a file name: organisations' are [a-z0-9_]."""
    return bool(db) and db.isascii() and all(c.isalnum() or c in "_-" for c in db)

"""An on-disk FIFO of line-protocol batches, for while InfluxDB is down or too slow.

One file per batch, named by a rising sequence number, so the order survives a
restart and draining is "read the oldest file, write it, delete it". A batch is
written to a temporary name, fsynced and renamed, so a crash leaves either the
whole batch or nothing (a leftover ``.tmp`` was never acknowledged to the broker:
the broker still holds those messages and delivers them again).
"""

from __future__ import annotations

import collections
import logging
import os
from pathlib import Path

from common.text import one_line

log = logging.getLogger(__name__)

SUFFIX = ".lp"


class SpoolFull(Exception):
    pass


class Spool:
    def __init__(self, directory: str | os.PathLike, max_bytes: int, fsync: bool = True):
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self.fsync = fsync
        self.dir.mkdir(parents=True, exist_ok=True)
        self._files: collections.deque[tuple[Path, int]] = collections.deque()
        self.bytes = 0
        self._next = 0
        self._load()

    def _load(self) -> None:
        for stale in self.dir.glob("*.tmp"):
            stale.unlink()
        found = sorted(self._batches(), key=lambda p: int(p.stem))
        for path in found:
            size = path.stat().st_size
            self._files.append((path, size))
            self.bytes += size
        if found:
            self._next = int(found[-1].stem) + 1
            log.info("spool %s holds %d batch(es), %d bytes from before; writing them first",
                     self.dir, len(found), self.bytes)

    def _batches(self) -> list[Path]:
        """Our batch files; anything else (a stray "notes.lp", a directory) is left alone."""
        ours, stray = [], []
        for path in self.dir.glob(f"*{SUFFIX}"):
            (ours if path.stem.isdigit() and path.stem.isascii() and path.is_file() else stray).append(path)
        if stray:
            log.warning("spool %s: ignoring %d file(s) that are not batches of ours, e.g. %s",
                        self.dir, len(stray), one_line(stray[0].name, 80))
        return ours

    def __len__(self) -> int:
        return len(self._files)

    def has_room(self, size: int) -> bool:
        # An empty spool always takes one batch, however large, so progress is possible.
        return not self._files or self.bytes + size <= self.max_bytes

    def append(self, body: bytes) -> None:
        if not self.has_room(len(body)):
            raise SpoolFull(f"spool {self.dir} is full ({self.bytes} of {self.max_bytes} bytes)")
        path = self.dir / f"{self._next:016d}{SUFFIX}"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(body)
            if self.fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        self._next += 1
        self._files.append((path, len(body)))
        self.bytes += len(body)

    def peek(self) -> bytes:
        """The oldest batch (IndexError when empty)."""
        return self._files[0][0].read_bytes()

    def pop(self) -> None:
        """Forget the oldest batch: it is in InfluxDB now."""
        path, size = self._files.popleft()
        path.unlink(missing_ok=True)
        self.bytes -= size

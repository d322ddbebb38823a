"""Incidents, and the file that keeps them across a collector restart.

The store writes its JSON file (a temporary file, then a rename) on its own thread, at most once
per ``interval`` however often the state changes: the ingest thread only marks it changed, so a
flood of changes costs one write per interval, not one per change. ``stop`` writes the last state.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from server.alerts.notification import iso

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Incident:
    id: str
    rule: str
    subject: str  # "<site>/<printer>" or "agent:<agent>"
    severity: str
    summary: str
    message: str
    details: dict
    opened: float
    notified_at: float | None = None  # last firing or repeat notification
    hold_until: float | None = None  # quiet hours or cooldown: notify then, if still open
    one_shot: bool = False
    repeats: int = 0
    events: int = 1  # one-shot events gathered while it waited for its notice

    @property
    def key(self) -> str:
        return f"{self.rule}/{self.subject}"

    def public(self) -> dict:
        out = asdict(self)
        out["opened"] = iso(self.opened)
        out["notified_at"] = iso(self.notified_at) if self.notified_at else None
        out["hold_until"] = iso(self.hold_until) if self.hold_until else None
        return out

    def saved(self) -> dict:
        return asdict(self)

    @classmethod
    def from_saved(cls, raw: dict) -> "Incident":
        """One saved by ``saved()``; a printer's, saved when subjects were bare IDs, gets its site."""
        incident = cls(**raw)
        if not incident.subject.startswith("agent:") and "/" not in incident.subject:
            incident.subject = f"{incident.details.get('site')}/{incident.subject}"
        return incident


class IncidentStore:
    def __init__(self, path: str | Path, snapshot: Callable[[], dict], interval: float = 1.0):
        self.path = Path(path)
        self.snapshot, self.interval = snapshot, interval
        self.writes = 0
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-store", daemon=True)

    def load(self) -> dict:
        """What was saved, or {} (a broken file is logged and set aside, never fatal)."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.error("alerts: cannot read %s (%s); starting with no open incidents", self.path, exc)
            return {}
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            log.error("alerts: %s is not what this collector writes; starting with no open incidents", self.path)
            return {}
        return data

    def changed(self) -> None:
        """Cheap, from any thread: the state will be written within ``interval``."""
        self._dirty.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self, **extra) -> None:
        """Stop the thread and write the last state, with ``extra`` keys (undelivered notes)."""
        self._stopping.set()
        self._dirty.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.save({**self.snapshot(), **extra})

    def _run(self) -> None:
        while True:
            self._dirty.wait()
            if self._stopping.wait(self.interval):  # gather what changes meanwhile into one write
                return
            self._dirty.clear()
            self.save(self.snapshot())

    def save(self, data: dict) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data))
            os.replace(tmp, self.path)
            self.writes += 1
        except OSError as exc:
            log.error("alerts: cannot save open incidents to %s: %s", self.path, exc)

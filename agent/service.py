"""The agent: one scheduled poll job per printer, each poll turned into messages."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from common import protocol
from common.text import one_line
from agent.config import AgentConfig, PrinterConfig
from agent.jobs import JobEvent, JobTracker, Ledger
from agent.printers import Printer, PushPrinter, Snapshot, make_printer
from agent.printers.limits import DEFAULT as DEFAULT_LIMITS, RateLimit
from agent.publisher import Publisher
from agent.sharing import Sharing
from agent.wire import WireCheck

log = logging.getLogger(__name__)


class JsonFile:
    """One small JSON document on disk, replaced atomically; saving None deletes it.

    Holds a printer's open job (written when a job starts or ends) and, for printers with a
    job history, the ids of the history entries already reported (written when one is).
    """

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> dict | list | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def save(self, data: dict | list | None) -> None:
        if data is None:
            self.path.unlink(missing_ok=True)
            return
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.path)


class PrinterWorker:
    """Polls one printer and publishes what changed.

    Telemetry leaves at every scheduled poll. A push printer also calls ``changed`` when its
    state moves: status and job events then leave at once, without waiting for the schedule —
    at most ``limits.state_changes_per_minute`` times a minute. Past that, changes coalesce
    into the next scheduled poll, and the next status says how many were (``coalesced``): a
    printer flapping between two states costs the outbox and the log what a polled one does.

    What the printer can do (``Snapshot.info``) leaves as a retained info message when it
    differs from the last one sent, and at the first report of each agent run.
    """

    def __init__(self, cfg: PrinterConfig, printer: Printer, send: Callable[[str, bytes, bool], None],
                 agent_id: str, job_file: JsonFile | None = None, ledger_file: JsonFile | None = None,
                 sharing: Sharing | None = None):
        self.cfg, self.printer, self.send, self.agent_id = cfg, printer, send, agent_id
        # What may leave the site (agent/sharing.py): applied as each message is built.
        self.share = sharing or Sharing("full", cfg.site)
        self.site, self.id = cfg.site, cfg.id
        self.seq = 0
        ledger = Ledger(ledger_file.load(), ledger_file.save) if ledger_file else None
        self.tracker = JobTracker(job_file.load() if job_file else None,
                                  job_file.save if job_file else (lambda job: None), ledger)
        self.last: Snapshot | None = None
        self.session_ts: int | None = None  # this agent run's first look at the printer
        self.topics = {c: protocol.printer_topic(self.site, self.id, c) for c in protocol.PRINTER_CHANNELS}
        self.limits = getattr(cfg, "limits", DEFAULT_LIMITS)
        self._changes = RateLimit(self.limits.state_changes_per_minute)
        self.coalesced = 0  # changes not reported at once, since the last status
        self.coalesced_total = 0
        self._lock = threading.Lock()  # the schedule and a push client's thread both report
        self.wire = WireCheck(self.id)
        self.info_sent: dict | None = None  # Info's fields last sent in this run
        # Info messages are numbered apart: ``seq`` stays the count of the printer's stream
        # (telemetry, status, events), which is what "nothing lost" is checked against.
        self.info_seq = 0

    def run_once(self, telemetry: bool = True) -> Snapshot:
        with self._lock:
            return self._report(telemetry)

    def changed(self) -> None:
        """A push printer's state moved: publish status and job events now (rate limited)."""
        with self._lock:
            if not self._changes.allow():
                if not self.coalesced_total:
                    log.warning("%s: state changing faster than %d times a minute (limits.state_changes_"
                                "per_minute): changes coalesce into the polls, counted in each status",
                                self.id, self.limits.state_changes_per_minute)
                self.coalesced += 1
                self.coalesced_total += 1
                return
        try:
            self.run_once(telemetry=False)
        except Exception:  # a bug here must not kill the push client's thread
            log.exception("%s: reporting a change failed", self.id)

    def _report(self, telemetry: bool) -> Snapshot:
        snap = self.printer.poll()
        prev, self.last = self.last, snap
        if self.session_ts is None:
            self.session_ts = snap.ts
        if telemetry:
            self._send("telemetry", self._telemetry(snap))
        if prev is None or prev.state != snap.state or prev.error != snap.error:
            if prev is not None:
                log.info("%s: %s -> %s (%s)", self.id, prev.state, snap.state, one_line(snap.state_text))
            self._send("status", self._status(snap, prev), retain=True)
            self.coalesced = 0
        self._tell_info(snap)
        for event in self.tracker.update(snap):
            log.info("%s: job event %s %s", self.id, event.kind, one_line(event.file or ""))
            self._send("event", self._event(event))
            self._tell_the_past(event)
        return snap

    def _tell_info(self, snap: Snapshot) -> None:
        """Info when it changed. No file name or user is in it (nothing of a job but the queue's
        size), so it goes out under every sharing policy."""
        if snap.info is None:
            return
        fields = self.wire.info(snap.info)
        if fields == self.info_sent:
            return
        self.info_sent = fields
        self.info_seq += 1
        log.info("%s: capabilities %s", self.id, one_line(str({k: v for k, v in fields.items() if v not in (None, [])})))
        self._send("info", protocol.Info(v=protocol.SCHEMA_VERSION, ts=snap.ts, printer=self.id, site=self.site,
                                         seq=self.info_seq, **fields), retain=True)

    def _tell_the_past(self, event: JobEvent) -> None:
        """A job start or end from before this agent run (the printer's record of a job that
        ended, or ran, while the agent was away) is also a state change at its own time: the
        state timeline then counts the printing up to the real end, not as time without data.
        Not retained: the printer's current status stays the retained one."""
        state = {"started": ("printing", "idle"), **{kind: ("idle", "printing") for kind in protocol.JOB_END_KINDS}}
        if event.kind not in state or self.session_ts is None or event.ts >= self.session_ts:
            return
        now, before = state[event.kind]
        self._send("status", protocol.Status(
            v=protocol.SCHEMA_VERSION, ts=event.ts, printer=self.id, site=self.site, seq=self._next_seq(),
            state=now, prev_state=before, state_text=f"job {event.kind} while the agent was away",
            error=None, file=event.file, agent=self.agent_id, api=self.cfg.type))

    def _send(self, channel: str, msg, retain: bool = False) -> None:
        self.send(self.topics[channel], protocol.encode(msg), retain)

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def _telemetry(self, s: Snapshot) -> protocol.Telemetry:
        share = self.share
        temps = {k: protocol.Temperature(a, t) for k, (a, t) in s.temps.items()}
        return protocol.Telemetry(
            v=protocol.SCHEMA_VERSION, ts=s.ts, printer=self.id, site=self.site, seq=self._next_seq(),
            state=s.state, state_text=share.text(s.state_text, s.file), temps=temps, progress=s.progress,
            print_time=s.print_time, time_left=s.time_left, file=share.file(s.file), user=share.user(s.user),
            filament_mm=s.filament_mm, layer=s.layer, layers=s.layers,
        )

    def _status(self, s: Snapshot, prev: Snapshot | None) -> protocol.Status:
        share = self.share
        return protocol.Status(
            v=protocol.SCHEMA_VERSION, ts=s.ts, printer=self.id, site=self.site, seq=self._next_seq(),
            state=s.state, prev_state=prev.state if prev else None, state_text=share.text(s.state_text, s.file),
            error=share.text(s.error, s.file), file=share.file(s.file), agent=self.agent_id, api=self.cfg.type,
            coalesced=self.coalesced,
        )

    def _event(self, e: JobEvent) -> protocol.Event:
        share = self.share
        return protocol.Event(
            v=protocol.SCHEMA_VERSION, ts=e.ts, printer=self.id, site=self.site, seq=self._next_seq(),
            kind=e.kind, file=share.file(e.file), user=share.user(e.user), duration=e.duration,
            print_time=e.print_time, filament_mm=e.filament_mm, error=share.text(e.error, e.file),
            job_started=e.job_started, progress=_percent(e.progress), material=self.wire.material(e.material),
        )


class Agent:
    def __init__(self, cfg: AgentConfig, printer_factory: Callable = make_printer, publisher: Publisher | None = None):
        self.cfg = cfg
        self.state_dir = Path(cfg.agent.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.publisher = publisher or Publisher(
            cfg.agent.id, cfg.broker, outbox=_make_outbox(cfg, self.state_dir),
            printers=[p.id for p in cfg.printers],
            key_id=cfg.privacy.pseudonyms.key_id() if cfg.privacy.pseudonyms else "",
        )
        self.workers = [
            PrinterWorker(p, printer_factory(p), self.publisher.send, cfg.agent.id,
                          JsonFile(self.state_dir / f"job-{p.id}.json"),
                          JsonFile(self.state_dir / f"reported-{p.id}.json"), cfg.privacy.for_site(p.site))
            for p in cfg.printers
        ]
        if cfg.privacy.pseudonyms is None:
            log.warning("no pseudonym secret ([privacy] secret_file or secret_env): user names are not sent; "
                        "give the agent a copy of the collector's secret to count users")
        # One thread per printer: a hung printer holds only its own thread.
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=len(self.workers) + 1)},
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
        )
        self._stopped = threading.Event()

    def start(self) -> None:
        self.publisher.start()
        for worker in self.workers:
            if isinstance(worker.printer, PushPrinter):
                worker.printer.start(worker.changed)
            self.scheduler.add_job(self._poll_safely, "interval", args=[worker], seconds=worker.cfg.interval,
                                   id=worker.id, name=f"poll {worker.id}", next_run_time=_now())
        self.scheduler.start()
        log.info("agent %s polling %d printer(s)", self.cfg.agent.id, len(self.workers))

    def stop(self, grace: float = 3.0) -> None:
        """Stop within a few seconds whatever the printers do: every printer is closed at once
        (which cuts its requests in flight), waiting at most ``grace`` seconds for them."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self.scheduler.running:  # a test may have ended the polls already
            self.scheduler.shutdown(wait=False)
        closers = [threading.Thread(target=_close_quietly, args=(w,), name=f"close {w.id}", daemon=True)
                   for w in self.workers]
        for closer in closers:
            closer.start()
        deadline = time.monotonic() + grace
        for closer in closers:
            closer.join(max(deadline - time.monotonic(), 0))
        self.publisher.stop(timeout=grace)
        log.info("agent stopped")

    @staticmethod
    def _poll_safely(worker: PrinterWorker) -> None:
        try:
            worker.run_once()
        except Exception:  # a bug in one poll must not end that printer's schedule
            log.exception("%s: poll failed", worker.id)


def _percent(value: float | None) -> float | None:
    if value is None or value != value:  # NaN: a printer's garbage is no progress
        return None
    return min(max(float(value), 0.0), 100.0)


def _close_quietly(worker: PrinterWorker) -> None:
    try:
        worker.printer.close()
    except Exception:  # noqa: BLE001 - one printer's close must not keep the others open
        log.exception("%s: closing failed", worker.id)


def _make_outbox(cfg: AgentConfig, state_dir: Path):
    from agent.outbox import SQLiteOutbox

    return SQLiteOutbox(state_dir / "outbox.sqlite3", cfg.outbox)


def _now():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)

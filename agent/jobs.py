"""Job and connection events from successive snapshots of one printer.

The printer's adapter decides how a job ended: it says so in the snapshot, either as
``Snapshot.ended`` (the printer's own word on the job that was under way, with
``Snapshot.ended_ts`` when its record tells the real end time) or as finished entries of the
printer's own job history (``Snapshot.history``). This tracker only orders those ends after
their starts, de-duplicates them and hands them on: it knows no printer API.

``JobTracker.update`` is pure bookkeeping (no I/O). The open job is handed to a ``save``
callback when it starts or ends, and the ids of the jobs already ended are kept by a
``Ledger`` saved on every change, so an agent restart neither forgets a job nor counts one
twice, for every API whose printer names its jobs.

The open job also keeps the latest material the adapter reported for it (``Snapshot.material``):
it goes on the job's "started" event (when known then) and on its end event, with the progress
the job had reached (the collector counts a failed job's slicer estimate pro rata to it).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Callable

import msgspec

from agent.printers.base import PastJob, Snapshot
from common.protocol import ACTIVE_STATES, JOB_END_KINDS, MaterialUse

log = logging.getLogger(__name__)

CONNECTED_STATES = ACTIVE_STATES | {"idle"}
# A measured amount grows with every poll: saved at most this often (ms), an SD card wears; a
# restarted agent gets the current amount from the printer again at its first poll anyway.
MATERIAL_SAVE_MS = 60_000
UNSAID = "the job ended without the printer saying how"
REPLACED = "job replaced before its end was seen"


@dataclass(slots=True)
class OpenJob:
    file: str | None
    user: str | None
    started_ts: int
    progress: float | None = None
    print_time: float | None = None
    filament_mm: float | None = None
    job_id: str | None = None  # the printer's own job id, where its API has one
    material: tuple = ()  # MaterialUse per tool, the latest the adapter reported

    def saved(self) -> dict:
        return {**asdict(self), "material": msgspec.to_builtins(list(self.material))}

    @classmethod
    def from_saved(cls, saved: dict) -> "OpenJob":
        saved = dict(saved)
        try:
            material = tuple(msgspec.convert(saved.pop("material", None) or [], list[MaterialUse]))
        except msgspec.ValidationError:  # a file from a damaged disk: the job, without its material
            log.warning("the saved job's material is unreadable; the job goes on without it")
            material = ()
        return cls(**saved, material=material)


@dataclass(slots=True)
class JobEvent:
    kind: str
    ts: int
    file: str | None = None
    user: str | None = None
    duration: float | None = None
    print_time: float | None = None
    filament_mm: float | None = None
    error: str | None = None
    job_started: int | None = None
    progress: float | None = None  # on end events: how far the job got
    material: tuple = ()  # on "started" and end events: MaterialUse per tool


class Ledger:
    """Ids of the jobs the agent has seen end (history entries and named jobs alike), saved on
    every change.

    ``ids`` is None until the first job ends or a history is first seen: the entries of a
    history seen first then ended before this agent watched the printer, and are taken as
    known rather than reported late.
    """

    KEEP = 200  # more than a history page the client reads, so no old entry comes back as new

    def __init__(self, saved: dict | None = None, save: Callable[[dict], None] = lambda saved: None):
        # What ``save`` was given last time: {"ids": [...]}. A bare list is the file of an older
        # agent, whose Moonraker ids did not yet carry their start time: taken as not seen.
        ids = saved.get("ids") if isinstance(saved, dict) else None
        self.ids = [str(i) for i in ids] if isinstance(ids, list) else None
        self._known = set(self.ids or ())  # checked for every entry on every poll
        self._save = save

    @property
    def seeded(self) -> bool:
        return self.ids is not None

    def __contains__(self, job_id: str | None) -> bool:
        return job_id in self._known

    def add(self, *job_ids: str) -> None:
        known = self.ids or []
        self.ids = (known + [i for i in dict.fromkeys(job_ids) if i and i not in self._known])[-self.KEEP:]
        self._known = set(self.ids)
        self._save({"ids": self.ids})


class JobTracker:
    def __init__(self, job: dict | None = None, save: Callable[[dict | None], None] = lambda job: None,
                 ledger: Ledger | None = None):
        self.job = OpenJob.from_saved(job) if job else None
        self.prev: Snapshot | None = None
        self._save = save
        self.ledger = ledger or Ledger()
        self._material_saved_at: int | None = None  # snapshot ts of the last save for a material change

    def update(self, snap: Snapshot) -> list[JobEvent]:
        prev, self.prev = self.prev, snap
        if snap.state == "unreachable":
            return []  # the printer unseen: the job may go on; decide when it answers again
        events = self._connection_events(prev, snap)
        if snap.history is not None:
            events.extend(self._from_history(snap.history))
        if self.job and snap.state in ACTIVE_STATES and _replaced(self.job, snap):
            events.append(self._end("failed", snap, error=REPLACED))
        if self.job is None and snap.state in ACTIVE_STATES and not self._ended_before(snap):
            events.append(self._start(snap))
        elif self.job is not None:
            events.extend(self._follow(prev, snap))
        return events

    def _ended_before(self, snap: Snapshot) -> bool:
        # A job whose end was counted may still be reported under way for a moment (a late
        # frame, a printer that lets a person resume it): the same job id is not a new job.
        return snap.job_id is not None and snap.job_id in self.ledger

    def _connection_events(self, prev: Snapshot | None, snap: Snapshot) -> list[JobEvent]:
        if prev is None or prev.state == "unreachable":
            return []
        was, now = prev.state in CONNECTED_STATES, snap.state in CONNECTED_STATES
        if was and not now:
            return [JobEvent("disconnected", snap.ts, error=snap.error or snap.state_text)]
        if now and not was:
            return [JobEvent("connected", snap.ts)]
        return []

    def _from_history(self, history: tuple[PastJob, ...]) -> list[JobEvent]:
        if not self.ledger.seeded:
            self.ledger.add(*(past.job_id for past in history if not self._is_open(past)))
        events = []
        for past in history:
            if past.job_id in self.ledger:
                continue
            if self._is_open(past):
                events.append(self._end_from_history(past))
            else:  # began and ended while the agent was away
                events += [JobEvent("started", past.started_ts, past.file, past.user, material=past.material or ()),
                           _end_event(past, past.started_ts)]
                self.ledger.add(past.job_id)
        return events

    def _is_open(self, past: PastJob) -> bool:
        job = self.job
        if job is None:
            return False
        if job.job_id:
            return job.job_id == past.job_id
        # Not yet named by the printer: the entry that ended after it began, for its file
        # (or for no file: a printer may miss the name of a job that ended as it began).
        return past.file in (job.file, None) and past.ended_ts >= job.started_ts

    def _end_from_history(self, past: PastJob) -> JobEvent:
        job = self.job
        event = _end_event(past, job.started_ts)
        event.file, event.user = job.file or past.file, past.user or job.user
        event.print_time = past.print_time if past.print_time is not None else job.print_time
        event.filament_mm = past.filament_mm if past.filament_mm is not None else job.filament_mm
        event.material = past.material if past.material is not None else job.material
        if event.progress is None:
            event.progress = job.progress
        self._close(past.job_id)
        return event

    def _follow(self, prev: Snapshot | None, snap: Snapshot) -> list[JobEvent]:
        job, prev_state = self.job, prev.state if prev else None
        if snap.ended in JOB_END_KINDS:  # the printer says how it ended
            if _replaced(job, snap):  # ... but of a later job: ours ended while we were away
                return [self._end("failed", snap, error=REPLACED)]
            if snap.ended_ts is not None and snap.ended_ts < job.started_ts:
                return [self._end("failed", snap, error=UNSAID)]  # a record of an earlier job
            error = (snap.ended_error or snap.error or snap.state_text or snap.state) if snap.ended == "failed" else None
            # A job named by the printer only now (its id in this snapshot): remembered as ended.
            job.job_id = job.job_id or snap.job_id
            self._take(snap, ending=True)
            return [self._end(snap.ended, snap, error=error, at=snap.ended_ts)]
        if job.job_id is None and snap.job_id and snap.state in ACTIVE_STATES:
            job.job_id = snap.job_id  # the printer named the job after it started
            self._save(job.saved())
        if snap.state in ACTIVE_STATES:
            self._take(snap)
            if snap.state == "paused" and prev_state in ("printing", "finishing"):
                return [self._event("paused", snap)]
            if snap.state == "printing" and prev_state == "paused":
                return [self._event("resumed", snap)]
            return []
        if snap.history is not None:
            return []  # its history entry will say how and when the job ended
        # Not under way, and the printer did not say how it ended: the job is lost.
        return [self._end("failed", snap, error=snap.error or UNSAID)]

    def _take(self, snap: Snapshot, ending: bool = False) -> None:
        """The open job's latest figures from a snapshot of it (an absent figure keeps the last).

        The snapshot that says the job ended gives only its last progress and material: its
        other figures may already be the idle printer's."""
        job = self.job
        if snap.progress is not None:  # the largest: a printer may reset it as the job ends
            job.progress = max(snap.progress, job.progress or 0.0)
        if not ending:
            job.print_time = snap.print_time if snap.print_time is not None else job.print_time
            job.filament_mm = snap.filament_mm if snap.filament_mm is not None else job.filament_mm
        # An empty material is "not known", as None: it never replaces one the job had.
        if snap.material and tuple(snap.material) != job.material:
            moved_only = _kinds(snap.material) == _kinds(job.material)
            job.material = tuple(snap.material)
            last = self._material_saved_at
            if not moved_only or last is None or snap.ts - last >= MATERIAL_SAVE_MS:
                self._material_saved_at = snap.ts
                self._save(job.saved())  # an agent restart keeps it

    def _start(self, snap: Snapshot) -> JobEvent:
        self.job = OpenJob(snap.file, snap.user, snap.ts, snap.progress, snap.print_time, snap.filament_mm,
                           snap.job_id, tuple(snap.material or ()))
        self._save(self.job.saved())
        self._material_saved_at = snap.ts
        event = self._event("started", snap)
        event.material = self.job.material
        return event

    def _end(self, kind: str, snap: Snapshot, error: str | None = None, at: int | None = None) -> JobEvent:
        job = self.job
        ts = min(at, snap.ts) if at is not None else snap.ts  # the printer's record of the end
        event = JobEvent(
            kind, ts, job.file, job.user,
            duration=round((ts - job.started_ts) / 1000, 3),
            print_time=job.print_time, filament_mm=job.filament_mm, error=error,
            job_started=job.started_ts, progress=100.0 if kind == "done" else job.progress, material=job.material,
        )
        self._close(job.job_id)
        return event

    def _close(self, job_id: str | None) -> None:
        self.job = None
        self._save(None)
        if job_id:
            self.ledger.add(job_id)  # its history entry or a late frame is then already told

    def _event(self, kind: str, snap: Snapshot) -> JobEvent:
        job = self.job
        return JobEvent(kind, snap.ts, job.file, job.user, filament_mm=job.filament_mm,
                        job_started=job.started_ts if kind != "started" else None)


def _end_event(past: PastJob, job_started: int) -> JobEvent:
    return JobEvent(past.kind, past.ended_ts, past.file, past.user,
                    duration=round((past.ended_ts - past.started_ts) / 1000, 3), print_time=past.print_time,
                    filament_mm=past.filament_mm, error=past.error if past.kind == "failed" else None,
                    job_started=job_started, progress=100.0 if past.kind == "done" else None,
                    material=past.material or ())


def _kinds(material) -> list:
    """What a material says apart from its amounts (which tools, sources, types, colours)."""
    return [(use.tool, use.source, use.type, use.colour) for use in material]


def _replaced(job: OpenJob, snap: Snapshot) -> bool:
    """Another job is under way than the open one: a new job id, or else a new file."""
    if job.job_id and snap.job_id:
        return job.job_id != snap.job_id
    return bool(snap.file and job.file and snap.file != job.file)

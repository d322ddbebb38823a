"""What the agent knows of one Moonraker printer, merged from its answers and websocket frames.

Pure bookkeeping, no I/O: the client feeds it, ``snapshot()`` reads it. Unit tests feed it
recorded frames. The mapping of Moonraker's and Klipper's states onto printfarm's is the table
in docs/printers.md.
"""

from __future__ import annotations

from dataclasses import replace

from agent.printers.base import PastJob, Snapshot
from agent.printers.limits import DEFAULT, LimitExceeded
from agent.printers.moonraker_info import with_spool
from agent.printers.moonraker_material import material_of
from agent.printers.values import number as _number, text as _text

# What the agent subscribes to (None: every field of the object).
OBJECTS = {
    "print_stats": None,
    "virtual_sdcard": ["progress", "is_active"],
    "display_status": ["progress"],
    "extruder": ["temperature", "target"],
    "heater_bed": ["temperature", "target"],
    "webhooks": None,
}
HISTORY_PAGE = 50  # entries read after every (re)connect, and kept

# print_stats.state -> printfarm state. "error" is the job's failure (a "failed" event with
# Klipper's message); Klipper itself is ready for the next job, so the printer is idle.
PRINT_STATES = {"standby": "idle", "printing": "printing", "paused": "paused", "complete": "idle",
                "cancelled": "idle", "error": "idle"}
HISTORY_ENDS = {"completed": "done", "cancelled": "cancelled", "error": "failed", "klippy_shutdown": "failed",
                "klippy_disconnect": "failed", "interrupted": "failed", "server_exit": "failed"}
# Moonraker closes its entry when Moonraker itself stops (server_exit; interrupted on the next
# start after a crash), but Klipper prints on and no new entry is made (history.py on_exit,
# component_init; job_state.py sees no transition on reconnecting). print_stats then decides.
MOONRAKER_STOPPED = frozenset({"server_exit", "interrupted"})
PRINT_ENDS = {"complete": "done", "cancelled": "cancelled", "error": "failed", "standby": "cancelled"}
KLIPPER_GONE = frozenset({"shutdown", "error"})  # its print_stats is gone with it
# Moonraker's stand-ins when no person started the job: not a user, and not stored as one.
NOT_A_USER = frozenset({"No User", "_TRUSTED_USER_", "_API_KEY_USER_"})
DISCONNECTED = "Klippy Disconnected"  # Moonraker's own words while Klipper's host is gone
# History times are Moonraker's host clock (history.py PrinterJob: time.time()), the agent's
# samples its own. Below this difference the two are taken as one clock (same host, or NTP).
SKEW_MIN_MS = 2000
CLOCK_SAMPLES = 10


class MoonrakerView:
    def __init__(self, max_keys: int = DEFAULT.object_keys) -> None:
        self.max_keys = max_keys  # fields kept per object: a printer cannot grow our memory
        self.problem: str | None = "not connected yet"  # None while Moonraker answers
        self.klippy = "disconnected"  # Moonraker's klippy_state
        self.status: dict[str, dict] = {}
        self.history: list[PastJob] | None = None  # None: Moonraker keeps no history
        self.latest: dict | None = None  # the newest history entry (maybe still in progress)
        self._offsets: list[int] = []  # our clock minus Moonraker's, per sample (ms; >= the truth)
        self.capabilities: dict = {}  # Info's fields from Klipper's objects (moonraker_info.capabilities)
        self.queue: dict = {}  # queued_jobs, queued_s from Moonraker's job queue
        self.spool: dict | None = None  # Spoolman's active spool: material, colour

    # -- what the client feeds in ---------------------------------------------------------------
    def lost(self, problem: str) -> None:
        self.problem, self.status = problem, {}

    def answered(self, klippy_state: str, message: str | None = None) -> None:
        self.problem, self.klippy = None, klippy_state or "disconnected"
        if message:
            self.status.setdefault("webhooks", {}).update(state=self.klippy, state_message=message)

    def subscribed(self, status: dict) -> None:
        self.status = {}
        self.merge(status)
        self.klippy = _text(self.status.get("webhooks", {}).get("state")) or self.klippy

    def merge(self, update: dict) -> None:
        for name, fields in update.items():
            if name in OBJECTS and isinstance(fields, dict):  # only what we subscribed to is kept
                held = self.status.setdefault(name, {})
                held.update(fields)
                if len(held) > self.max_keys:
                    raise LimitExceeded(f"the printer object {name} has over {self.max_keys} fields "
                                        "(limits.object_keys)")

    def klippy_changed(self, state: str) -> None:
        self.klippy = state
        if state == "disconnected":
            self.status = {}  # Moonraker dropped the subscription with the connection

    def history_loaded(self, jobs: list | None) -> None:
        if jobs is None:
            self.history = self.latest = None
            return
        entries = [job for job in reversed(jobs) if isinstance(job, dict)]  # oldest first
        self.latest = entries[-1] if entries else None
        self.history = [past for past in map(self._past, entries) if past][-HISTORY_PAGE:]

    def history_changed(self, change: dict) -> None:
        job = change.get("job")
        if not isinstance(job, dict) or change.get("action") not in ("added", "finished"):
            return
        self.latest = job
        past = self._past(job)
        if past is not None and self.history is not None:
            self.history = [p for p in self.history if p.job_id != past.job_id][-HISTORY_PAGE + 1:] + [past]

    def clock_sample(self, moonraker_time, received_ms: int) -> None:
        """Moonraker's clock as it sent a frame (``moonraker_stats.time``), and ours as it came."""
        theirs = _number(moonraker_time)
        if theirs is not None:
            self._offsets = self._offsets[-CLOCK_SAMPLES + 1:] + [received_ms - int(theirs * 1000)]

    @property
    def skew_ms(self) -> int:
        """What to add to Moonraker's times to read them on the agent's clock. The smallest of
        the recent samples (each is late by its trip); 0 for a difference below SKEW_MIN_MS."""
        best = min(self._offsets, default=0)
        return best if abs(best) >= SKEW_MIN_MS else 0

    # -- what the agent reads -------------------------------------------------------------------
    def snapshot(self, ts: int) -> Snapshot:
        if self.problem is not None:
            return Snapshot(ts=ts, state="unreachable", state_text=self.problem, error=self.problem)
        state, text, error = printer_state(self.klippy, self.status.get("webhooks", {}),
                                           self.status.get("print_stats", {}))
        snap = Snapshot(ts=ts, state=state, state_text=text, error=error, history=self._history_now(ts))
        if self.capabilities or self.queue or self.spool:
            snap.info = {**with_spool(self.capabilities, self.spool), **self.queue}
        if self.klippy != "disconnected":
            self._fill(snap)
        return snap

    def _history_now(self, ts: int) -> tuple[PastJob, ...] | None:
        if self.history is None:
            return None
        skew = self.skew_ms
        # (the skew is known to a trip's few ms: a job seen ending now ended no later than now)
        history = [replace(p, started_ts=p.started_ts + skew, ended_ts=min(p.ended_ts + skew, ts))
                   for p in self.history] if skew else self.history
        newest = self.latest
        if not history or not newest or newest.get("status") not in MOONRAKER_STOPPED:
            return tuple(history)
        past = history[-1]
        if past.job_id != job_key(newest):
            return tuple(history)
        outcome = self._outcome_after_restart(newest, past, ts)
        return tuple(history[:-1]) + ((outcome,) if outcome else ())

    def _outcome_after_restart(self, entry: dict, past: PastJob, ts: int) -> PastJob | None:
        """The real end of a job Moonraker's history closed when Moonraker stopped: from
        Klipper's print_stats, which went on with it. None: it goes on, or is not yet known."""
        if self.klippy in KLIPPER_GONE:
            return past  # Klipper lost the job, and its print_stats with it: failed
        stats = self.status.get("print_stats")
        if self.klippy != "ready" or not isinstance(stats, dict):
            return None  # Klipper starting or not yet connected to Moonraker: decide when it tells
        if _text(stats.get("filename")) != _text(entry.get("filename")):
            return past  # Klipper moved on to another file: this job's end is not known
        kind = PRINT_ENDS.get(_text(stats.get("state")))
        if kind is None:
            return None  # printing or paused: the job goes on
        # Klipper counts total_duration from its own start of the job, Moonraker's start_time is
        # when it heard of it (up to a status update later): the sum may lie a little ahead, and
        # a job seen to end live ended no later than now.
        total = _number(stats.get("total_duration"))
        ended = min(past.started_ts + int(total * 1000), ts) if total else past.ended_ts
        return PastJob(past.job_id, kind, past.started_ts, ended, past.file, past.user,
                       print_time=_number(stats.get("print_duration")), filament_mm=_number(stats.get("filament_used")),
                       material=material_of(entry.get("metadata"), stats.get("filament_used")),
                       error=(first_line(stats.get("message")) or "print error") if kind == "failed" else None)

    def _fill(self, snap: Snapshot) -> None:
        status, stats = self.status, self.status.get("print_stats", {})
        for name, key in (("extruder", "tool0"), ("heater_bed", "bed")):
            heater = status.get(name)
            if isinstance(heater, dict):
                snap.temps[key] = (_number(heater.get("temperature")), _number(heater.get("target")))
        snap.file = _text(stats.get("filename")) or None
        if snap.file is None:
            return
        snap.progress = _progress(status)
        snap.print_time = _number(stats.get("print_duration"))
        snap.time_left = _time_left(snap.progress, snap.print_time)
        snap.filament_mm = _number(stats.get("filament_used"))
        latest = self.latest if self.latest and self.latest.get("filename") == snap.file else None
        if latest:
            snap.job_id = job_key(latest)
            snap.user = user_of(latest)
        # The file's metadata comes with its history entry (Moonraker adds it as the job starts):
        # until then the material is not known (a few mm measured at the start would say too little).
        if latest or self.history is None:
            snap.material = material_of(latest.get("metadata") if latest else None, stats.get("filament_used"))
        if self.history is None:  # no history: print_stats is the printer's own word on the end
            snap.ended = {"complete": "done", "cancelled": "cancelled", "error": "failed"}.get(stats.get("state"))
        elif self.klippy in KLIPPER_GONE and stats.get("state") in ("printing", "paused"):
            # Klipper shut down under a job: it is lost, say so now rather than after Moonraker
            # has written its history entry (which then names a job already told).
            snap.ended = "failed"

    def _past(self, entry: dict) -> PastJob | None:
        kind = HISTORY_ENDS.get(entry.get("status"))
        job_id, started = job_key(entry), _ms(entry.get("start_time"))
        if kind is None or not job_id or started is None:
            return None
        file = _text(entry.get("filename")) or None
        return PastJob(
            job_id=job_id, kind=kind, started_ts=started, ended_ts=_ms(entry.get("end_time")) or started,
            file=file, user=user_of(entry), print_time=_number(entry.get("print_duration")),
            filament_mm=_number(entry.get("filament_used")),
            material=material_of(entry.get("metadata"), entry.get("filament_used")),
            error=self._why(entry.get("status"), file) if kind == "failed" else None)

    def _why(self, status: str, file: str | None) -> str:
        """Why a job failed: history keeps only a status word, so take Klipper's text while it is there."""
        stats, hooks = self.status.get("print_stats", {}), self.status.get("webhooks", {})
        if status == "error" and stats.get("state") == "error" and stats.get("filename") == file:
            return first_line(stats.get("message")) or "print error"
        if status == "klippy_shutdown" and hooks.get("state") == "shutdown":
            return first_line(hooks.get("state_message")) or "Klipper shut down"
        return {"error": "print error (Klipper's message was no longer shown)",
                "klippy_shutdown": "Klipper shut down during the print",
                "klippy_disconnect": f"{DISCONNECTED} during the print",
                "interrupted": "interrupted: Moonraker restarted during the print",
                "server_exit": "Moonraker stopped during the print"}.get(status, status)


def printer_state(klippy: str, webhooks: dict, stats: dict) -> tuple[str, str, str | None]:
    """(printfarm state, Moonraker's or Klipper's own word for it, error text)."""
    if klippy == "disconnected":
        return "offline", DISCONNECTED, DISCONNECTED
    hooks = _text(webhooks.get("state")) or klippy
    if hooks != "ready":
        message = first_line(webhooks.get("state_message")) or f"Klipper {hooks}"
        if hooks == "startup" or "unable to connect" in message.lower():
            return "offline", hooks, message  # starting, or its board is switched off
        return "error", hooks, message
    word = _text(stats.get("state")) or "standby"
    state = PRINT_STATES.get(word, "error")  # an unknown word: better someone looks
    error = (first_line(stats.get("message")) or "print error") if word == "error" else None
    return state, word, error


def job_key(entry: dict) -> str | None:
    """One job for good: Moonraker's job id with its start time. Its ids are SQLite rowids
    (``job_id INTEGER PRIMARY KEY``, no AUTOINCREMENT): they start again at 1 after all history
    is deleted, and the newest id is given again after that entry is deleted."""
    job_id, started = _text(entry.get("job_id")), _ms(entry.get("start_time"))
    return f"{job_id}@{started}" if job_id and started else None


def user_of(entry: dict) -> str | None:
    user = _text(entry.get("user"))
    return None if not user or user in NOT_A_USER else user


def first_line(value) -> str:
    """Klipper's messages run over several lines of advice; the first says what happened."""
    for line in _text(value).splitlines():
        if line.strip():
            return line.strip()
    return ""


def _progress(status: dict) -> float | None:
    # display_status follows M73 from the slicer when the file sends it, else the file position.
    for name in ("display_status", "virtual_sdcard"):
        value = _number(status.get(name, {}).get("progress"))
        if value is not None:
            return round(min(max(value, 0.0), 1.0) * 100, 2)
    return None


def _time_left(progress: float | None, printed: float | None) -> float | None:
    if not progress or not printed or progress >= 100:
        return None
    return round(printed * (100 - progress) / progress, 1)


def _ms(seconds) -> int | None:
    value = _number(seconds)
    return int(value * 1000) if value else None

"""What the agent knows of one Moonraker printer, merged from its answers and websocket frames.

Pure bookkeeping, no I/O: the client feeds it, ``snapshot()`` reads it. Unit tests feed it
recorded frames. The mapping of Moonraker's and Klipper's states onto printfarm's is the table
in docs/printers.md.
"""

from __future__ import annotations

from agent.printers.base import PastJob, Snapshot
from agent.printers.limits import DEFAULT, LimitExceeded
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
# Moonraker's stand-ins when no person started the job: not a user, and not stored as one.
NOT_A_USER = frozenset({"No User", "_TRUSTED_USER_", "_API_KEY_USER_"})
DISCONNECTED = "Klippy Disconnected"  # Moonraker's own words while Klipper's host is gone


class MoonrakerView:
    def __init__(self, max_keys: int = DEFAULT.object_keys) -> None:
        self.max_keys = max_keys  # fields kept per object: a printer cannot grow our memory
        self.problem: str | None = "not connected yet"  # None while Moonraker answers
        self.klippy = "disconnected"  # Moonraker's klippy_state
        self.status: dict[str, dict] = {}
        self.history: list[PastJob] | None = None  # None: Moonraker keeps no history
        self.latest: dict | None = None  # the newest history entry (maybe still in progress)

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

    # -- what the agent reads -------------------------------------------------------------------
    def snapshot(self, ts: int) -> Snapshot:
        if self.problem is not None:
            return Snapshot(ts=ts, state="unreachable", state_text=self.problem, error=self.problem)
        state, text, error = printer_state(self.klippy, self.status.get("webhooks", {}),
                                           self.status.get("print_stats", {}))
        history = tuple(self.history) if self.history is not None else None
        snap = Snapshot(ts=ts, state=state, state_text=text, error=error, history=history)
        if self.klippy != "disconnected":
            self._fill(snap)
        return snap

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
        if self.latest and self.latest.get("filename") == snap.file:
            snap.job_id = _text(self.latest.get("job_id")) or None
            snap.user = user_of(self.latest)
        if self.history is None:  # no history: print_stats is the printer's own word on the end
            snap.ended = {"complete": "done", "cancelled": "cancelled", "error": "failed"}.get(stats.get("state"))

    def _past(self, entry: dict) -> PastJob | None:
        kind = HISTORY_ENDS.get(entry.get("status"))
        job_id, started = _text(entry.get("job_id")), _ms(entry.get("start_time"))
        if kind is None or not job_id or started is None:
            return None
        file = _text(entry.get("filename")) or None
        return PastJob(
            job_id=job_id, kind=kind, started_ts=started, ended_ts=_ms(entry.get("end_time")) or started,
            file=file, user=user_of(entry), print_time=_number(entry.get("print_duration")),
            filament_mm=_number(entry.get("filament_used")),
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

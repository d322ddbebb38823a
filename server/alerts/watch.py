"""What the alert rules know about each printer and agent: facts kept from the messages seen.

The fleet's PrinterState holds only the newest values; rules also need *since when* (a printer
down since, progress unchanged since, a heater not rising since). This module keeps that
bookkeeping, nothing else. Times are the collector's clock (seconds) when a message arrived:
an agent's clock may drift, and the last-will's ``ts`` is the agent's connect time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common import protocol

DOWN_STATES = frozenset({"offline", "error", "unreachable"})
ACTIVE_STATES = protocol.ACTIVE_STATES
CONNECTED_STATES = ACTIVE_STATES | {"idle"}
STALE_AFTER = 60.0  # seconds without a message after which a printer's values count as unknown


@dataclass(slots=True)
class HeaterWatch:
    actual: float | None = None
    target: float | None = None
    reached: bool = False  # has been within tolerance of the current target
    far_since: float | None = None  # away from the target after having reached it
    rise_at: float | None = None  # below target: when the heater last gained rise_min
    rise_from: float | None = None  # ... and from which temperature


@dataclass(slots=True)
class PrinterWatch:
    printer: str
    site: str
    organisation: str = "unknown"
    county: str = "unknown"
    agent: str | None = None
    state: str = "unknown"  # unknown until the first message after a collector start
    state_text: str = ""
    error: str | None = None
    state_since: float | None = None
    last_seen: float | None = None  # arrival of the newest message
    newest_ts: int | None = None  # sample time (ms) of the newest message
    # A job's end carries the printer's record of it (Moonraker's history entry), which may lie a
    # little before the agent's last sample: an end is old news only if seen already or older
    # than the newest start.
    newest_start_ts: int | None = None
    ends_seen: list[tuple[str, int]] = field(default_factory=list)  # (kind, ts) of recent job ends
    down_since: float | None = None  # entered offline/error/unreachable
    down_while_printing: bool = False
    file: str | None = None
    job_file: str | None = None  # file of the job under way, kept while the printer is down
    progress: float | None = None
    progress_since: float | None = None
    heaters: dict[str, HeaterWatch] = field(default_factory=dict)
    failed: dict | None = None  # the last print failure, until the printer is up again
    done: dict | None = None  # the last finished print
    service: object | None = None  # server.maintenance.ServiceState as last checked; None: not yet

    def stale(self, msg) -> bool:
        """A redelivered or superseded message, which must not re-open anything."""
        if not isinstance(msg, protocol.Event) or msg.kind not in protocol.JOB_END_KINDS:
            stale = self.newest_ts is not None and msg.ts < self.newest_ts
            if not stale and isinstance(msg, protocol.Event) and msg.kind == "started":
                self.newest_start_ts = msg.ts
            return stale
        if (msg.kind, msg.ts) in self.ends_seen:
            return True  # a redelivery
        newest = self.newest_start_ts if self.newest_start_ts is not None else self.newest_ts
        if newest is not None and msg.ts < newest:
            return True
        self.ends_seen = self.ends_seen[-15:] + [(msg.kind, msg.ts)]
        return False

    @property
    def subject(self) -> str:
        """How incidents name this printer: IDs are unique within a site, not across sites."""
        return f"{self.site}/{self.printer}"

    def fresh(self, now: float) -> bool:
        """Data recent enough for rules that read values (a silent agent's printer is not 'stalled')."""
        return self.last_seen is not None and now - self.last_seen <= STALE_AFTER

    def identity(self) -> dict:
        return {"printer": self.printer, "site": self.site, "organisation": self.organisation,
                "county": self.county, "agent": self.agent}

    def set_state(self, new: str, now: float) -> bool:
        """Record a state; True when it changed."""
        old = self.state
        if new == old:
            return False
        if new in DOWN_STATES:
            if self.down_since is None:
                self.down_since = now
                self.down_while_printing = old in ACTIVE_STATES
        else:
            self.down_since, self.down_while_printing = None, False
        if new in CONNECTED_STATES:
            self.failed = None
        if new == "printing" and old != "printing":
            self.progress_since = now
        if new in ACTIVE_STATES and old not in ACTIVE_STATES:
            self.done = None
        self.state, self.state_since = new, now
        return True

    def set_file(self, file: str | None) -> None:
        if file:
            self.file = file
            if self.state in ACTIVE_STATES:
                self.job_file = file

    def set_progress(self, progress: float | None, now: float) -> None:
        if progress != self.progress:
            self.progress, self.progress_since = progress, now

    def set_temps(self, temps: dict, now: float, tolerance: float, rise_min: float) -> None:
        for name, temp in temps.items():
            heater = self.heaters.get(name)
            if heater is None:
                heater = self.heaters[name] = HeaterWatch()
            _follow_heater(heater, temp.actual, temp.target, now, tolerance, rise_min)


def _follow_heater(h: HeaterWatch, actual, target, now: float, tolerance: float, rise_min: float) -> None:
    if target != h.target:
        h.reached, h.far_since, h.rise_at, h.rise_from = False, None, None, None
    h.actual, h.target = actual, target
    if actual is None or not target or target <= 0:
        h.reached, h.far_since, h.rise_at, h.rise_from = False, None, None, None
        return
    if abs(actual - target) <= tolerance:
        h.reached, h.far_since, h.rise_at, h.rise_from = True, None, None, None
        return
    if h.reached and h.far_since is None:
        h.far_since = now
    if actual < target:
        # Heating up: it must keep gaining rise_min within the rule's window.
        if h.rise_at is None or actual >= h.rise_from + rise_min:
            h.rise_at, h.rise_from = now, actual
    else:
        h.rise_at, h.rise_from = None, None  # above target (cooling to a lower one) is not runaway


@dataclass(slots=True)
class AgentWatch:
    agent: str
    state: str = "unknown"
    offline_since: float | None = None
    printing_when_lost: list[str] = field(default_factory=list)  # its printers that were printing
    claimed: list[str] = field(default_factory=list)  # printer IDs in its status: what it says
    printers: list[str] = field(default_factory=list)  # ... as far as the inventory and their status confirm
    dropped: int | None = None  # last count seen; None until the first message
    dropped_from: int | None = None  # count before the newest increase
    dropped_at: float | None = None

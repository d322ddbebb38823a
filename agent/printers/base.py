"""What every printer API delivers, and the config fields every printer has.

A printer module holds one API: a settings struct (its config table, ``type = "<name>"``)
whose ``build()`` makes the client, and the client behind the ``Printer`` protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, runtime_checkable

from agent.printers.limits import DEFAULT as DEFAULT_LIMITS
from common.configkit import Invalid, Section, check_id, check_range


@dataclass(frozen=True, slots=True)
class PastJob:
    """One finished job from the printer's own job history (Moonraker's ``server.history``)."""

    job_id: str
    kind: str  # how it ended: one of common.protocol.JOB_END_KINDS
    started_ts: int  # ms since the epoch, by the printer's clock
    ended_ts: int
    file: str | None = None
    user: str | None = None
    print_time: float | None = None  # seconds actually printed (pauses excluded)
    filament_mm: float | None = None  # measured by the printer
    error: str | None = None
    material: tuple | None = None  # common.protocol.MaterialUse per tool, where the API tells


@dataclass(slots=True)
class Snapshot:
    ts: int  # ms since the epoch, when the poll was answered
    state: str  # one of common.protocol.STATES
    state_text: str = ""  # the printer's own words for its state
    error: str | None = None
    temps: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    progress: float | None = None
    print_time: float | None = None
    time_left: float | None = None
    file: str | None = None
    user: str | None = None
    filament_mm: float | None = None
    # The printer's own identity of the current job, where its API has one (PrusaLink's
    # job id, Moonraker's history job id): a new id is a new job even with the same file.
    job_id: str | None = None
    # How the job that was under way ended ("done", "cancelled", "failed"), as the adapter reads
    # it from its printer (each adapter owns that judgement; the job tracker infers nothing).
    # A job open in the tracker and not under way without ``ended`` (and without a history)
    # is lost: it ends "failed".
    ended: str | None = None
    # When it ended (ms since the epoch), where the printer keeps a record of the end (OctoPrint's
    # file statistics after the agent was away); None: at this snapshot.
    ended_ts: int | None = None
    # Why a job ended "failed" where the printer says so apart from its state (OctoPrint's last
    # error after a firmware error cancelled the print, while it is Operational again); None:
    # the snapshot's error or state text says why.
    ended_error: str | None = None
    # Recently finished jobs from the printer's own history, oldest first, where its API keeps
    # one (Moonraker). Each PastJob.job_id names one job for good (the adapter makes it so where
    # the printer reuses ids). None: no history, so job ends are inferred from states. With a history,
    # the job tracker ends jobs only from it (exact outcome and end time) and reports each
    # entry once, also jobs that began and ended while the agent was away.
    history: tuple[PastJob, ...] | None = None
    layer: int | None = None  # the layer being printed, where the API tells (Bambu)
    layers: int | None = None  # the job's number of layers
    # The current job's material per tool (common.protocol.MaterialUse), where the API tells:
    # the job tracker keeps the last one seen and sends it on the job's start and end events.
    material: tuple | None = None
    # What the printer can do (common.protocol.Info's fields without the message header:
    # model, volume, tools, slots, enclosed, queued_jobs, queued_s), where the API tells; None
    # keeps the last one. The agent sends an info message when it changes.
    info: dict | None = None


class Printer(Protocol):
    def poll(self) -> Snapshot:
        """The printer's state now. Never raises: failures are an 'unreachable' snapshot."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class PushPrinter(Printer, Protocol):
    """A printer whose API pushes changes (a websocket, an MQTT report stream).

    ``start`` opens the connection in the background; the client calls ``changed()`` (from any
    thread) when its state moved, so status and job events leave at once. ``poll()`` returns
    the latest state without network I/O; telemetry still leaves at the configured interval.
    """

    def start(self, changed: Callable[[], None]) -> None: ...


class PrinterSettings(Section, tag_field="type", kw_only=True):
    """The keys of every ``[[printers]]`` table; each API adds its own in a subclass."""

    id: str
    site: str | None = None  # defaults to the agent's site
    interval: float = 5.0  # seconds between polls (telemetry)
    timeout: float = 3.0  # per request; a hung printer costs at most this

    def __post_init__(self):
        self.limits = DEFAULT_LIMITS  # the agent's [limits] table replaces it (agent/config.py)
        check_id("id", self.id)
        if self.site is not None:
            check_id("site", self.site)
        check_range("interval", self.interval, 0.2, 3600)
        check_range("timeout", self.timeout, 0.1, 60)
        if self.timeout >= self.interval * 2:
            raise Invalid("timeout", f"{self.timeout} s is too long for a {self.interval} s interval",
                          "keep timeout below twice the interval")

    @property
    def type(self) -> str:
        return type(self).__struct_config__.tag

    def build(self) -> Printer:
        raise NotImplementedError

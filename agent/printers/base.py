"""What every printer API delivers: one Snapshot per poll."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


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


class Printer(Protocol):
    def poll(self) -> Snapshot:
        """Ask the printer for its state. Never raises: failures are an 'unreachable' snapshot."""
        ...

    def close(self) -> None: ...

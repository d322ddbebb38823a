"""Live state of every printer and agent, as the collector last heard it (the status page, /api/fleet)."""

from __future__ import annotations

import threading

import msgspec
from dataclasses import asdict, dataclass, field, fields

from common import protocol
from server.inventory import Inventory, Tags


@dataclass(slots=True)
class PrinterState:
    printer: str
    site: str
    organisation: str
    county: str
    listed: bool
    model: str = ""
    state: str = "unknown"
    state_text: str = ""
    error: str | None = None
    since: int | None = None  # ms: when the current state began (sample time)
    last_seen: int | None = None  # ms: sample time of the newest message
    file: str | None = None
    user: str | None = None
    progress: float | None = None
    time_left: float | None = None
    temps: dict = field(default_factory=dict)
    agent: str | None = None
    api: str | None = None  # the printer API its agent uses
    info: dict | None = None  # the latest Info's fields (what the printer says it can do), or None
    info_ts: int | None = None  # its sample time (ms)


@dataclass(slots=True)
class AgentState:
    agent: str
    state: str
    ts: int
    dropped: int = 0
    printers: list[str] = field(default_factory=list)  # those of its claims the inventory grants it


class LiveFleet:
    """Printers are known by (site, printer): the same ID at another site is another printer."""

    def __init__(self, inventory: Inventory):
        self.inventory = inventory
        self.printers: dict[tuple[str, str], PrinterState] = {}
        self.agents: dict[str, AgentState] = {}
        self._lock = threading.Lock()
        for printer_id, entry in inventory.printers.items():
            self.printers[(entry.site, printer_id)] = self._new(inventory.tags(entry.site, printer_id), entry.model)

    def apply(self, msg: protocol.Message, tags: Tags | None) -> PrinterState | AgentState:
        with self._lock:
            if isinstance(msg, protocol.AgentStatus):
                return self._apply_agent(msg)
            current = self._entry(tags)
            if isinstance(msg, protocol.Info):
                return _apply_info(current, msg)
            if current.last_seen is None or msg.ts >= current.last_seen:
                current.last_seen = msg.ts
                _apply_printer(current, msg)
            return current

    def entry(self, tags: Tags) -> PrinterState:
        """The printer's entry, made if new. It stays the same object for the collector's life,
        so ingest keeps it on the printer's route and applies telemetry without a look-up."""
        with self._lock:
            return self._entry(tags)

    def _entry(self, tags: Tags) -> PrinterState:
        current = self.printers.get((tags.site, tags.printer))
        if current is None:
            current = self.printers[(tags.site, tags.printer)] = self._new(tags, "")
        return current

    def telemetry(self, p: PrinterState, msg: protocol.Telemetry) -> PrinterState:
        """``apply`` for a telemetry message and its printer's entry (the ingest hot path)."""
        with self._lock:
            ts = msg.ts
            if p.last_seen is None or ts >= p.last_seen:
                p.last_seen = ts
                _apply_telemetry(p, msg)
            return p

    def _apply_agent(self, msg: protocol.AgentStatus) -> AgentState:
        current = self.agents.get(msg.agent)
        if current is None or msg.ts >= current.ts or msg.state == "offline":
            printers = [p for _, p in self.inventory.agent_printers(msg.agent, msg.printers)]
            current = self.agents[msg.agent] = AgentState(msg.agent, msg.state, msg.ts, msg.dropped, printers)
        return current

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "printers": [_public(p) for p in sorted(self.printers.values(), key=lambda p: (p.site, p.printer))],
                "agents": [asdict(a) for a in sorted(self.agents.values(), key=lambda a: a.agent)],
            }

    def counts(self) -> dict[str, int]:
        with self._lock:
            out: dict[str, int] = {}
            for p in self.printers.values():
                out[p.state] = out.get(p.state, 0) + 1
            return out

    @staticmethod
    def _new(tags: Tags, model: str) -> PrinterState:
        return PrinterState(tags.printer, tags.site, tags.organisation, tags.county, tags.listed, model)


def _public(p: PrinterState) -> dict:
    # Shallow is enough: the ingest thread replaces these values, it never changes them in place.
    out = {f.name: getattr(p, f.name) for f in fields(p)}
    out["temps"] = {name: [t.actual, t.target] for name, t in p.temps.items()}
    return out


_HEADER = frozenset(f.name for f in msgspec.structs.fields(protocol.PrinterMessage))


def _apply_info(p: PrinterState, msg: protocol.Info) -> PrinterState:
    """An Info by its own time, apart from the printer's other messages: the retained one comes
    again on every (re)subscription, older than the telemetry that may already be here."""
    if p.info_ts is None or msg.ts >= p.info_ts:
        p.info_ts = msg.ts
        p.info = {k: v for k, v in msgspec.to_builtins(msg).items() if k not in _HEADER}
    return p


def _apply_printer(p: PrinterState, msg) -> None:
    if isinstance(msg, protocol.Telemetry):
        _apply_telemetry(p, msg)
    elif isinstance(msg, protocol.Status):
        if msg.state != p.state:
            p.since = msg.ts
        p.state, p.state_text, p.error, p.agent = msg.state, msg.state_text, msg.error, msg.agent
        p.api = msg.api or p.api


def _apply_telemetry(p: PrinterState, msg: protocol.Telemetry) -> None:
    if msg.state != p.state:
        p.since = msg.ts
    p.state, p.state_text = msg.state, msg.state_text
    p.file, p.user, p.progress, p.time_left = msg.file, msg.user, msg.progress, msg.time_left
    p.temps = msg.temps  # as decoded (name -> Temperature); made JSON in snapshot()

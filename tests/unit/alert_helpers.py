"""Messages, a clock and a recording sender for the alert unit tests."""

from __future__ import annotations

from common import protocol
from server.alerts import config as alerts_config
from server.alerts.engine import Engine
from server import inventory as inventory_mod
from server.inventory import Tags

TS = 1_800_000_000_000


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Recorder:
    """A sender that remembers what it got; ``fail`` makes it raise."""

    def __init__(self, name: str):
        self.name, self.notes, self.fail = name, [], False

    def send(self, note: dict) -> None:
        if self.fail:
            from server.alerts.notifiers import SendError

            raise SendError("receiver down")
        self.notes.append(note)


def tags(printer="vp-1", site="lab", org="Org of lab", county="Västerbotten") -> Tags:
    return Tags(printer=printer, site=site, organisation=org, county=county, listed=True)


def telemetry(state="idle", printer="vp-1", progress=None, temps=None, file=None, seq=1, ts=TS):
    temps = {k: protocol.Temperature(a, t) for k, (a, t) in (temps or {}).items()}
    return protocol.Telemetry(v=1, ts=ts, printer=printer, site="lab", seq=seq, state=state, temps=temps,
                              progress=progress, file=file, state_text=state.title())


def status(state, prev="idle", printer="vp-1", error=None, text=None, file=None):
    return protocol.Status(v=1, ts=TS, printer=printer, site="lab", seq=1, state=state, prev_state=prev,
                           state_text=text or state.title(), error=error, file=file, agent="pi-1")


def event(kind, printer="vp-1", file="cube.gcode", error=None, job_started=TS - 1000, ts=TS):
    return protocol.Event(v=1, ts=ts, printer=printer, site="lab", seq=1, kind=kind, file=file, error=error,
                          job_started=job_started, duration=12.0)


def agent_status(state, dropped=0, printers=("vp-1",)):
    return protocol.AgentStatus(v=1, ts=TS, agent="pi-1", state=state, dropped=dropped, printers=list(printers))


INVENTORY = {"sites": {"lab": {"organisation": "Org of lab", "county": "Västerbotten"}},
             "printers": {"vp-1": {"site": "lab"}, "vp-2": {"site": "lab"}}}


def make_engine(tmp_path, clock=None, raw=None, receivers=("ops",), inventory=None):
    """An engine with Recorder receivers (not started: tests call tick() themselves)."""
    raw = dict(raw or {})
    raw.setdefault("receivers", {name: {"type": "webhook", "url": "http://127.0.0.1:9/hook"} for name in receivers})
    cfg = alerts_config.load(raw, str(tmp_path))
    recorders = {}

    def factory(name, receiver):
        recorders[name] = Recorder(name)
        return [recorders[name]]

    lines: list[str] = []
    engine = Engine(cfg, lines.append, clock or Clock(), sender_factory=factory,
                    inventory=inventory_mod.from_dict(inventory or INVENTORY))
    engine.recorders, engine.lines = recorders, lines
    return engine


def sent(engine, receiver="ops"):
    """Notifications queued for a receiver (the delivery thread is not running in unit tests)."""
    return [note for delivery in engine.deliveries[receiver] for note in delivery.pending()]

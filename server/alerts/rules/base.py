"""What every alert rule shares: the Alert it reports, the printer and agent rule bases, and the
settings every rule has (``enabled``, ``recovery``).

A rule answers two questions: ``evaluate`` — is there something to alert about now (an Alert,
or None)? — and ``clears`` — is an open incident of this rule over? Keeping the second one
explicit matters after a collector restart: the restored incident stays open until a fresh
message shows the printer well again, instead of "resolving" because nothing is known yet.

Dedup, cooldown, repeats, inhibition and routing are the engine's business, not the rules'.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common.configkit import Section, check_range
from server.alerts.severity import check_severity
from server.alerts.watch import CONNECTED_STATES, AgentWatch, PrinterWatch


@dataclass(slots=True)
class Alert:
    rule: str
    subject: str  # "<site>/<printer>", or "agent:<id>"
    severity: str
    summary: str  # one line: "Print failed on vp-1 (lab)"
    message: str  # the detail an operator acts on
    details: dict = field(default_factory=dict)  # printer, site, organisation, county, agent, file, error
    event: str | None = None  # one-shot alerts: which event (dedup key); None for conditions


class RuleSettings(Section):
    """The keys every ``[alerts.rules.<name>]`` table has; a rule's own Settings add to them."""

    enabled: bool = True
    recovery: bool = True  # send a notice when the incident clears
    severity: str = "warning"

    def __post_init__(self):
        check_severity("severity", self.severity)


class GracedSettings(RuleSettings):
    """A rule that waits ``grace`` before alerting, less (``printing_grace``) mid-print."""

    grace: float = 120.0
    printing_grace: float = 0.0  # printing: at once by default
    printing_severity: str = "critical"

    def __post_init__(self):
        check_range("grace", self.grace, 0, 86400)
        check_range("printing_grace", self.printing_grace, 0, 86400)
        super().__post_init__()
        check_severity("printing_severity", self.printing_severity)


def where(w: PrinterWatch) -> str:
    return f"{w.printer} ({w.site})"


def minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


class PrinterRule:
    """A rule about one printer; its name is the one it is registered under (rules/__init__.py)."""

    one_shot = False  # an event, not a condition: nothing to resolve
    inhibited_by: tuple[str, ...] = ()  # open incidents of these rules on the same printer silence this one

    def __init__(self, name: str):
        self.name = name

    def evaluate(self, w: PrinterWatch, now: float, s) -> Alert | None:
        raise NotImplementedError

    def clears(self, w: PrinterWatch, now: float, s) -> bool:
        return w.state in CONNECTED_STATES and self.evaluate(w, now, s) is None

    def _alert(self, w: PrinterWatch, severity: str, summary: str, message: str, **extra) -> Alert:
        details = w.identity()
        details.update(extra)
        return Alert(self.name, w.subject, severity, summary, message, details)


class AgentRule:
    """A rule about one agent (the Pi), not a printer."""

    one_shot = False
    inhibited_by: tuple[str, ...] = ()

    def __init__(self, name: str):
        self.name = name

    def evaluate(self, a: AgentWatch, now: float, s) -> Alert | None:
        raise NotImplementedError

    def clears(self, a: AgentWatch, now: float, s) -> bool:
        return a.state == "online"

    def _alert(self, a: AgentWatch, severity: str, summary: str, message: str) -> Alert:
        return Alert(self.name, f"agent:{a.agent}", severity, summary, message, {"agent": a.agent})

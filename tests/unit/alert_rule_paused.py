"""A test-only alert rule, written the way a new rule is: this module plus one line in RULES
(server/alerts/rules/__init__.py). ``printer_paused``: a print paused for longer than ``after``."""

from __future__ import annotations

from common.configkit import check_range
from server.alerts.rules.base import PrinterRule, RuleSettings, minutes, where


class Settings(RuleSettings):
    after: float = 1800.0  # paused this long
    severity: str = "info"

    def __post_init__(self):
        check_range("after", self.after, 1, 86400)
        super().__post_init__()


class Rule(PrinterRule):
    inhibited_by = ("printer_down",)

    def evaluate(self, w, now, s):
        if w.state != "paused" or w.state_since is None or now - w.state_since < s.after:
            return None
        return self._alert(w, s.severity, f"Print paused on {where(w)}",
                           f"{w.printer} at {w.site} has been paused for {minutes(now - w.state_since)}",
                           file=w.job_file or w.file)

"""``job_stalled``: printing, but the progress has not moved for too long."""

from __future__ import annotations

from common.configkit import check_range
from server.alerts.rules.base import PrinterRule, RuleSettings, minutes, where


class Settings(RuleSettings):
    after: float = 900.0  # progress unchanged this long while printing
    severity: str = "warning"

    def __post_init__(self):
        check_range("after", self.after, 1, 7 * 86400)
        super().__post_init__()


class Rule(PrinterRule):
    def evaluate(self, w, now, s):
        if w.state != "printing" or w.progress_since is None or now - w.progress_since < s.after:
            return None
        if not w.fresh(now):
            return None  # no news at all is agent_offline's business, not a stalled job
        progress = f"{w.progress:.1f} %" if w.progress is not None else "unknown"
        return self._alert(w, s.severity, f"Print stalled on {where(w)}",
                           f"{w.printer} at {w.site} has been printing {w.job_file or w.file or 'a job'} "
                           f"with progress stuck at {progress} for {minutes(now - w.progress_since)}",
                           file=w.job_file or w.file)

    def clears(self, w, now, s):
        return w.state != "unknown" and w.fresh(now) and self.evaluate(w, now, s) is None

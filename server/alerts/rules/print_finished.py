"""``print_finished`` (off by default): a job finished. An event: nothing to resolve."""

from __future__ import annotations

from server.alerts.rules.base import PrinterRule, RuleSettings, minutes, where


class Settings(RuleSettings):
    enabled: bool = False
    severity: str = "info"
    recovery: bool = False


class Rule(PrinterRule):
    one_shot = True

    def evaluate(self, w, now, s):
        if not w.done:
            return None
        file = w.done.get("file")
        alert = self._alert(w, s.severity, f"Print finished on {where(w)}",
                            f"{w.printer} at {w.site} finished {file or 'a job'}"
                            + (f" in {minutes(w.done['duration'])}" if w.done.get("duration") else ""),
                            file=file)
        alert.event = str(w.done.get("id"))
        return alert

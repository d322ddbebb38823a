"""``print_failed``: a job ended as failed (the agent's 'failed' event), with the printer's error text."""

from __future__ import annotations

from server.alerts.rules.base import PrinterRule, RuleSettings, where

# A bare state text as the reason means OctoPrint lost or closed its printer connection.
_CONNECTION_TEXTS = frozenset({"offline", "closed", "offline after error", "error", "unreachable"})


class Settings(RuleSettings):
    severity: str = "critical"


class Rule(PrinterRule):
    inhibited_by = ("heater_fault",)  # a heater fault says more, and names the file too

    def evaluate(self, w, now, s):
        if not w.failed:
            return None
        error, file = w.failed.get("error") or "unknown error", w.failed.get("file")
        on = f" while printing {file}" if file else ""
        why = f"the printer connection closed ({error})" if error.lower() in _CONNECTION_TEXTS else error
        return self._alert(w, s.severity, f"Print failed on {where(w)}",
                           f"{w.printer} at {w.site} failed{on}: {why}", file=file, error=error)

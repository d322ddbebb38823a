"""``printer_down``: offline, in error or unreachable: at once while printing, after a grace
period while idle.

Offline or error in the middle of a print ends the job, which print_failed reports at once;
unreachable does not (OctoPrint may still be printing, unseen), so this rule reports it.
"""

from __future__ import annotations

from server.alerts.rules.base import GracedSettings, PrinterRule, minutes, where
from server.alerts.watch import CONNECTED_STATES, DOWN_STATES


class Settings(GracedSettings):
    grace: float = 120.0  # idle printer: alert only if still down after this long


class Rule(PrinterRule):
    inhibited_by = ("print_failed", "heater_fault")

    def evaluate(self, w, now, s):
        if w.state not in DOWN_STATES or w.down_since is None:
            return None
        printing = w.down_while_printing and w.state == "unreachable"
        grace = s.printing_grace if printing else s.grace
        down_for = now - w.down_since
        if down_for < grace:
            return None
        what = {"unreachable": "unreachable", "offline": "offline", "error": "in error"}[w.state]
        reason = w.error or w.state_text or w.state
        if printing:
            file = w.job_file or w.file
            return self._alert(w, s.printing_severity, f"Printer {what} while printing: {where(w)}",
                               f"{w.printer} at {w.site} became {what} while printing {file or 'a job'}: {reason}",
                               file=file, error=reason)
        return self._alert(w, s.severity, f"Printer {what}: {where(w)}",
                           f"{w.printer} at {w.site} has been {what} for {minutes(down_for)}: {reason}",
                           error=reason)

    def clears(self, w, now, s):
        return w.state in CONNECTED_STATES

"""``heater_fault``: the printer's own thermal error (MINTEMP, MAXTEMP, thermal runaway), a heater
held far from its target after reaching it, or a heater that does not warm towards its target.

The heaters' history (reached, far since, last rise) is kept in watch.py, fed with this rule's
``tolerance`` and ``rise_min`` by the engine as telemetry arrives.
"""

from __future__ import annotations

import re

import msgspec

from common.configkit import Invalid, check_range
from server.alerts.rules.base import PrinterRule, RuleSettings, minutes, where
from server.alerts.watch import ACTIVE_STATES, CONNECTED_STATES

THERMAL_ERRORS = ("mintemp", "maxtemp", "thermal runaway", "heating failed", "thermal malfunction")


class Settings(RuleSettings):
    severity: str = "critical"
    # The printer's own thermal errors (Marlin/Prusa texts): matched case-insensitively.
    error_patterns: list[str] = msgspec.field(default_factory=lambda: list(THERMAL_ERRORS))
    tolerance: float = 15.0  # °C from target that counts as "far"
    far_for: float = 120.0  # seconds far from target, after having reached it once
    rise_min: float = 2.0  # °C the heater must gain ...
    rise_window: float = 60.0  # ... within this many seconds while below its target

    def __post_init__(self):
        super().__post_init__()
        check_range("tolerance", self.tolerance, 0.5, 200)
        check_range("far_for", self.far_for, 1, 86400)
        check_range("rise_min", self.rise_min, 0.1, 100)
        check_range("rise_window", self.rise_window, 1, 3600)
        for i, pattern in enumerate(self.error_patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise Invalid(f"error_patterns[{i}]", f"{pattern!r} is not a regular expression ({exc})",
                              "write a valid Python regular expression, or a plain word") from None
        self.error_re = re.compile("|".join(f"(?:{p})" for p in self.error_patterns), re.I) if self.error_patterns else None


class Rule(PrinterRule):
    def evaluate(self, w, now, s):
        text = " ".join(t for t in (w.error, w.state_text) if t)
        if w.state in ("error", "offline") and s.error_re and s.error_re.search(text):
            file = w.job_file if w.down_while_printing else None
            on = f" while printing {file}" if file else ""
            return self._alert(w, s.severity, f"Heater fault on {where(w)}",
                               f"{w.printer} at {w.site} stopped with a thermal error{on}: {w.error or w.state_text}",
                               error=w.error or w.state_text, file=file)
        if w.state not in CONNECTED_STATES or not w.fresh(now):
            return None  # temperatures are stale
        for name, h in sorted(w.heaters.items()):
            if h.far_since is not None and now - h.far_since >= s.far_for:
                return self._alert(
                    w, s.severity, f"Heater fault on {where(w)}: {name}",
                    f"{name} on {w.printer} at {w.site} is at {h.actual:.0f} °C, target {h.target:.0f} °C, "
                    f"off by more than {s.tolerance:.0f} °C for {minutes(now - h.far_since)}",
                    heater=name, file=w.job_file if w.state in ACTIVE_STATES else None)
            if h.rise_at is not None and now - h.rise_at >= s.rise_window:
                return self._alert(
                    w, s.severity, f"Heater not heating on {where(w)}: {name}",
                    f"{name} on {w.printer} at {w.site} is at {h.actual:.0f} °C with target {h.target:.0f} °C and "
                    f"has not gained {s.rise_min:g} °C in {minutes(now - h.rise_at)} (thermal-runaway hint)",
                    heater=name, file=w.job_file if w.state in ACTIVE_STATES else None)
        return None

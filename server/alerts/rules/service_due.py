"""``service_due``: a printer passed one of its service intervals (inventory ``[maintenance]``).

The counters come from InfluxDB, checked every ``check_interval`` by server/maintenance_watch.py,
which hands each printer's ``ServiceState`` to the engine (``PrinterWatch.service``); this rule
only reads it. It fires once per interval: the incident stays open (and is kept across a collector
restart by the incident store) until a service is recorded (``printfarm-server maintenance
record``), which resets the counters: then it clears, with a recovery notice.
"""

from __future__ import annotations

from datetime import datetime, timezone

from common.configkit import check_range
from server.alerts.rules.base import PrinterRule, RuleSettings, where


class Settings(RuleSettings):
    severity: str = "warning"  # quiet hours hold it until they end
    check_interval: float = 600.0  # seconds between reads of the counters from InfluxDB

    def __post_init__(self):
        check_range("check_interval", self.check_interval, 0.2, 86400)
        super().__post_init__()


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d")


def _since(service) -> str:
    if service.last_service_ms is not None:
        return f"since the last service on {_day(service.last_service_ms)}"
    if service.counted_from_ms is not None:
        return f"since it joined the network on {_day(service.counted_from_ms)} (no service recorded)"
    return "since its first data (no service recorded)"


class Rule(PrinterRule):
    def evaluate(self, w, now, s):
        service = w.service
        if service is None or not service.due:
            return None
        c = service.counters
        return self._alert(w, s.severity, f"Service due: {where(w)}",
                           f"{w.printer} at {w.site} is due for service: {', '.join(service.due)} "
                           f"{_since(service)} ({c.hours:.1f} h printing, {c.jobs} jobs, "
                           f"{c.filament_m:.1f} m filament). Record the service with "
                           f"`printfarm-server maintenance record {w.printer} --note ...`")

    def clears(self, w, now, s):
        # Unknown (just after a collector start, before the first check) is not "serviced".
        return w.service is not None and not w.service.due

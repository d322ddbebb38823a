"""Who gets an incident, and when: routes by site, organisation, county, rule and severity;
quiet hours hold low-severity alerts until they end."""

from __future__ import annotations

from datetime import datetime, timedelta

from server.alerts.config import RANK, QuietHours, Route


def receivers_for(routes: list[Route], severity: str, rule: str, details: dict) -> list[str]:
    """Every receiver of every matching route, once each, in route order."""
    out: list[str] = []
    for route in routes:
        if route.matches(severity, rule, details.get("site") or "", details.get("organisation") or "",
                         details.get("county") or ""):
            out += [r for r in route.receivers if r not in out]
    return out


def quiet_hold(quiet: QuietHours | None, severity: str, now: float) -> float | None:
    """Until when an alert of ``severity`` waits for the quiet hours to end, or None."""
    if quiet and RANK[severity] <= RANK[quiet.max_severity]:
        return quiet_end(quiet, now)
    return None


def quiet_end(quiet: QuietHours, now: float) -> float | None:
    """The end of the quiet hours ``now`` falls in (epoch seconds), or None outside them."""
    local = datetime.fromtimestamp(now, quiet.zone)
    start = local.replace(hour=quiet.start_time.hour, minute=quiet.start_time.minute, second=0, microsecond=0)
    end = local.replace(hour=quiet.end_time.hour, minute=quiet.end_time.minute, second=0, microsecond=0)
    if start <= end:  # e.g. 12:00-14:00
        return end.timestamp() if start <= local < end else None
    if local >= start:  # e.g. 22:00-07:00, before midnight
        return (end + timedelta(days=1)).timestamp()
    return end.timestamp() if local < end else None

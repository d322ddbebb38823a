"""The key figures of a period against the period before: the funder's first questions on one table."""

from __future__ import annotations

FIGURES = ("printers", "printing_h", "available_h", "util_period", "util_available", "jobs_started", "jobs_done",
           "jobs_failed", "jobs_cancelled", "filament_m_est", "customers_served", "enterprises_served",
           "enterprises_new", "enterprises_not_in_previous", "jobs_unattributed")
RATIOS = frozenset({"util_period", "util_available"})


def values(report) -> dict:
    """The key figures of one report (None where it has nothing to say, e.g. new without a previous)."""
    network = report.groupings["network"][0] if report.groupings.get("network") else {}
    enterprises = (report.customer_tables.get("enterprises") or [{}])[0]
    out = {key: network.get(key) for key in FIGURES}
    out.update({key: enterprises.get(key) for key in FIGURES if key in enterprises})
    out["jobs_unattributed"] = report.customers.unattributed_jobs
    return out


def rows(report) -> list[dict]:
    now = values(report)
    before = values(report.previous) if report.previous is not None else {}
    out = []
    for key in FIGURES:
        this, prev = now.get(key), before.get(key)
        change = this - prev if isinstance(this, (int, float)) and isinstance(prev, (int, float)) else None
        out.append({"figure": key, "this_period": this, "previous_period": prev, "change": change})
    return out

"""Per-printer usage and its sums per site, organisation, county and the whole network."""

from __future__ import annotations

from dataclasses import dataclass, field

from server.reports import accounting as acc

GROUPINGS = ("printer", "site", "organisation", "county", "network")
KEY_COLUMNS = {
    "printer": ("site", "site_name", "printer", "organisation", "county"),
    "site": ("site", "site_name", "organisation", "county"),
    "organisation": ("organisation",),
    "county": ("county",),
    "network": ("network",),
}
HOUR_COLUMNS = tuple(f"{c}_h" for c in acc.CATEGORIES)
VALUE_COLUMNS = (
    "printers", "in_network_h", "available_h", *HOUR_COLUMNS, "util_period", "util_available",
    "jobs_started", "jobs_done", "jobs_failed", "jobs_cancelled", "filament_m_est", "users", "organisations_served",
)
MS_PER_HOUR = 3_600_000


@dataclass
class Usage:
    """One printer's figures for the period."""

    site: str
    printer: str
    organisation: str
    county: str
    listed: bool
    ms: dict[str, int]
    jobs: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("started", "done", "failed", "cancelled"), 0))
    filament_mm: float = 0.0  # slicer's estimate, completed jobs only
    users: set[tuple[str, str]] = field(default_factory=set)  # (site, user): accounts are per site
    site_name: str = ""

    @property
    def served(self) -> bool:
        return any(self.jobs.values())


def key_of(u: Usage, grouping: str) -> tuple:
    if grouping == "network":
        return ("network",)
    return tuple(getattr(u, col) for col in KEY_COLUMNS[grouping])


def group(usages: list[Usage], grouping: str) -> list[dict]:
    """One row per group, keys first, sorted by key; figures as plain numbers."""
    buckets: dict[tuple, list[Usage]] = {}
    for u in usages:
        buckets.setdefault(key_of(u, grouping), []).append(u)
    out = []
    for key in sorted(buckets):
        row = dict(zip(KEY_COLUMNS[grouping], key))
        row.update(figures(buckets[key]))
        out.append(row)
    return out


def figures(members: list[Usage]) -> dict:
    ms = dict.fromkeys(acc.CATEGORIES, 0)
    jobs = dict.fromkeys(("started", "done", "failed", "cancelled"), 0)
    users: set = set()
    for u in members:
        for cat, value in u.ms.items():
            ms[cat] += value
        for kind, n in u.jobs.items():
            jobs[kind] += n
        users |= u.users
    in_network, available = acc.in_network(ms), acc.available(ms)
    row = {"printers": len(members), "in_network_h": in_network / MS_PER_HOUR, "available_h": available / MS_PER_HOUR}
    row.update({f"{cat}_h": ms[cat] / MS_PER_HOUR for cat in acc.CATEGORIES})
    row["util_period"] = acc.ratio(ms[acc.PRINTING], in_network)
    row["util_available"] = acc.ratio(ms[acc.PRINTING], available)
    row.update({f"jobs_{kind}": n for kind, n in jobs.items()})
    row["filament_m_est"] = sum(u.filament_mm for u in members) / 1000
    row["users"] = len(users)
    row["organisations_served"] = len({u.organisation for u in members if u.served})
    return row

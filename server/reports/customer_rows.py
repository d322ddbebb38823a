"""The customer view as rows (dicts keyed by column), like aggregate.group for the utilisation tables.

Text that depends on the language (kinds, "unattributed", yes/no) stays a key here; tables.py
translates it. Private persons are one row with their count: the funder needs how many, not who.
"""

from __future__ import annotations

from server.inventory import Inventory
from server.reports.customer_view import (
    KIND_CLASSES, CustomerView, Figures, customer_county, enterprise_key, enterprises, kind_class, sums,
)

MS_PER_HOUR = 3_600_000
FIGURE_COLUMNS = ("jobs_started", "jobs_done", "jobs_failed", "jobs_cancelled", "printing_h", "filament_m_est")
COUNTY_COLUMNS = ("customers_served", "enterprises_served", "enterprises_sme", "enterprises_large",
                  *FIGURE_COLUMNS)
CUSTOMER_COLUMNS = ("customer", "org_number", "kind", "customer_county", *FIGURE_COLUMNS, "sites_used",
                    "not_in_previous", "new_enterprise")
KIND_COLUMNS = ("kind", "customers_served", *FIGURE_COLUMNS, "share_printing")
ENTERPRISE_COLUMNS = ("enterprises_served", "enterprises_sme", "enterprises_micro", "enterprises_small",
                      "enterprises_medium", "enterprises_large", "enterprises_new", "enterprises_not_in_previous",
                      "enterprises_previous", "customers_served", "customers_not_in_previous")
UNATTRIBUTED = "unattributed"  # a label key, never a customer ID (IDs are in [customers])
PRIVATE = "private"


def figures(f: Figures) -> dict:
    row = {f"jobs_{kind}": n for kind, n in f.jobs.items()}
    row["printing_h"] = f.printing_ms / MS_PER_HOUR
    row["filament_m_est"] = f.filament_mm / 1000
    return row


def customers(view: CustomerView, inv: Inventory, previous: set[str] | None,
              new_firms: dict[str, bool | None] | None = None) -> list[dict]:
    """One row per customer served (private persons summed), then the unattributed row.
    ``new_firms``: enterprise key -> new in the funder's sense (RCO05; None: cannot say)."""
    new_firms = new_firms or {}
    per = sums(view, lambda c, _: UNATTRIBUTED if c is None else PRIVATE if inv.customers[c].kind == PRIVATE else c)
    rows = []
    for key in sorted((k for k in per if k not in (UNATTRIBUTED, PRIVATE)), key=lambda c: inv.customers[c].name.lower()):
        total, _ = per[key]
        if not total.active and not total.printing_ms:
            continue
        c = inv.customers[key]
        rows.append({"customer": c.name, "org_number": c.org_number or "", "kind": kind_class(inv, key),
                     "customer_county": c.county, **figures(total), "sites_used": len(total.sites),
                     "not_in_previous": None if previous is None else key not in previous,
                     "new_enterprise": new_firms.get(enterprise_key(inv, key)) if c.enterprise else None})
    if PRIVATE in per:
        total, served = per[PRIVATE]
        rows.append({"customer": (PRIVATE, len(served)), "org_number": "", "kind": PRIVATE, "customer_county": "",
                     **figures(total), "sites_used": len(total.sites), "not_in_previous": None, "new_enterprise": None})
    total, _ = per.get(UNATTRIBUTED, (Figures(), set()))
    rows.append({"customer": UNATTRIBUTED, "org_number": "", "kind": UNATTRIBUTED, "customer_county": "",
                 **figures(total), "sites_used": len(total.sites), "not_in_previous": None, "new_enterprise": None})
    return rows


def kinds(view: CustomerView, inv: Inventory) -> list[dict]:
    per = sums(view, lambda c, _: kind_class(inv, c))
    network = sum(f.printing_ms for f in view.cells.values())
    rows = []
    for kind in KIND_CLASSES:
        total, served = per.get(kind, (Figures(), set()))
        rows.append({"kind": kind, "customers_served": len(served), **figures(total),
                     "share_printing": total.printing_ms / network if network else None})
    return rows


def by_customer_county(view: CustomerView, inv: Inventory) -> list[dict]:
    per = sums(view, lambda c, _: customer_county(inv, c) or UNATTRIBUTED)
    order = sorted(k for k in per if k != UNATTRIBUTED) + ([UNATTRIBUTED] if UNATTRIBUTED in per else [])
    return [{"customer_county": k, **_county_row(per[k], inv)} for k in order]


def by_site_county(view: CustomerView, inv: Inventory) -> list[dict]:
    per = sums(view, lambda _, county: county)
    return [{"county": k, **_county_row(per[k], inv)} for k in sorted(per)]


def _county_row(entry: tuple[Figures, set[str]], inv: Inventory) -> dict:
    total, served = entry
    firms = enterprises(inv, served)
    return {"customers_served": len(served), "enterprises_served": len(firms["all"]),
            "enterprises_sme": len(firms["sme"]), "enterprises_large": len(firms["large"]),
            **figures(total)}


def enterprise_row(view: CustomerView, inv: Inventory, previous: set[str] | None,
                   new_firms: dict[str, bool | None] | None = None) -> dict:
    """Enterprises served (each once, by organisation number) per size class; new ones in the
    funder's sense (``new_firms``, RCO05) and those not served in the previous period."""
    served = view.served()
    now = enterprises(inv, served)
    row = {"enterprises_served": len(now["all"]), "enterprises_sme": len(now["sme"]),
           **{f"enterprises_{size}": len(now[size]) for size in ("micro", "small", "medium", "large")},
           "enterprises_new": None if new_firms is None else sum(1 for k in now["all"] if new_firms.get(k)),
           "customers_served": len(served)}
    if previous is None:
        row.update(dict.fromkeys(("enterprises_not_in_previous", "enterprises_previous", "customers_not_in_previous")))
        return row
    before = enterprises(inv, previous & set(inv.customers))
    row.update({"enterprises_not_in_previous": len(now["all"] - before["all"]),
                "enterprises_previous": len(before["all"]), "customers_not_in_previous": len(served - previous)})
    return row

"""Service intervals from the inventory's ``[maintenance]`` table (docs/maintenance.md).

```toml
[maintenance.models."Prusa MK4"]   # every printer of this model (its [printers.<id>] model)
service_hours = 500                # printing hours since the last service
service_jobs = 400                 # jobs ended since the last service
service_months = 6                 # months since the last service

[maintenance.printers.oru-mk4-01]  # one printer: its keys win over its model's
service_hours = 300
```

A table of its own, not keys in ``[printers.<id>]``: intervals are the maintenance's business,
and a model's interval is written once for all its printers.
"""

from __future__ import annotations

import msgspec

from common.configkit import Invalid, check_range

KEYS = ("service_hours", "service_jobs", "service_months")


class Interval(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """What passes before a service is due; None = not counted. Any one passed makes it due."""

    service_hours: float | None = None
    service_jobs: int | None = None
    service_months: int | None = None

    def __post_init__(self):
        if self.service_hours is not None:
            check_range("service_hours", self.service_hours, 0.001, 100_000)
        if self.service_jobs is not None:
            check_range("service_jobs", self.service_jobs, 1, 1_000_000)
        if self.service_months is not None:
            check_range("service_months", self.service_months, 1, 120)

    def empty(self) -> bool:
        return all(getattr(self, key) is None for key in KEYS)

    def over(self, other: "Interval") -> "Interval":
        """This interval's keys, and ``other``'s where this one has none."""
        return Interval(**{key: getattr(self, key) if getattr(self, key) is not None else getattr(other, key)
                           for key in KEYS})


class Maintenance(msgspec.Struct, forbid_unknown_fields=True):
    models: dict[str, Interval] = {}
    printers: dict[str, Interval] = {}


def check(table: Maintenance, printers: dict) -> None:
    """Every printer and model named must be in the inventory (a typo would silently never alert)."""
    for printer_id in table.printers:
        if printer_id not in printers:
            raise Invalid(f"maintenance.printers.{printer_id}", f"printer {printer_id!r} is not defined",
                          f"add a [printers.{printer_id}] table or correct the ID")
    models = {entry.model for entry in printers.values()}
    for model in table.models:
        if model not in models:
            raise Invalid(f"maintenance.models.{model}", f"no printer has model {model!r}",
                          f"write a model as a [printers.<id>] table's model says ({', '.join(sorted(models)) or 'none'})")


def interval_of(table: Maintenance, printer_id: str, model: str) -> Interval | None:
    """The printer's interval (its own keys over its model's), or None when it has none."""
    mine = table.printers.get(printer_id, Interval())
    found = mine.over(table.models.get(model, Interval())) if model else mine
    return None if found.empty() else found

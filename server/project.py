"""The project the network is funded as: its period and its targets (målvärden).

```toml
[project]
name = "ACES"                  # optional
start = 2025-01-01             # the first day the project counts (local date, [attribution] tz)
end = 2027-12-31               # the last day (included)

[project.targets]              # optional: the funder's targets, by indicator code (2021-27)
RCO01 = 60                     # enterprises supported
RCO04 = 60                     # enterprises with non-financial support
RCO05 = 12                     # new enterprises supported
RCO10 = 25                     # enterprises cooperating with research organisations
```

The indicator report (server/reports/indicators.py) counts each enterprise once from ``start``,
and shows each count against its target.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import msgspec

from common.configkit import Invalid

# The 2014-20 code of each 2021-27 target key, for the message that names the right one.
TARGETS = {"RCO01": "CO01", "RCO04": "CO04", "RCO05": "CO05", "RCO10": "CO26"}


class Project(msgspec.Struct, forbid_unknown_fields=True):
    start: date
    end: date
    name: str = ""
    targets: dict[str, int] = {}

    def __post_init__(self):
        if self.end < self.start:
            raise Invalid("end", f"{self.end} is before start {self.start}", "write the project's last day as end")
        old = {v: k for k, v in TARGETS.items()}
        for key, value in self.targets.items():
            if key not in TARGETS:
                fix = (f"write {old[key]} (its 2021-27 code)" if key in old
                       else f"use one of {', '.join(TARGETS)}")
                raise Invalid(f"targets.{key}", "is not an indicator code", fix)
            if value < 0:
                raise Invalid(f"targets.{key}", f"{value} is negative", "write the target as a count, e.g. 40")

    def bounds_ms(self, tz: str) -> tuple[int, int]:
        """[start, end) in UTC ms: from the start day's midnight to the midnight after the end day."""
        zone = ZoneInfo(tz)
        first = datetime.combine(self.start, time(0), zone)
        after = datetime.combine(self.end + timedelta(days=1), time(0), zone)
        return int(first.timestamp() * 1000), int(after.timestamp() * 1000)

"""Alert severities, in rising order: shared by the rules' settings, routes and quiet hours."""

from __future__ import annotations

from common.configkit import Invalid

SEVERITIES = ("info", "warning", "critical")
RANK = {name: i for i, name in enumerate(SEVERITIES)}


def check_severity(key: str, value: str) -> None:
    if value not in RANK:
        raise Invalid(key, f"{value!r} is not a severity", "use info, warning or critical")

"""What Grafana does to an InfluxQL query before it sends it, so tests can run the same text.

Covers the macros our dashboards use: ``$timeFilter``, ``$__interval``, ``$__interval_ms``,
``$__range_ms``/``$__range_s``/``$__range``, and template variables formatted the way
Grafana's InfluxDB data source formats them (regex-escaped; several values or "All" become
``(a|b)``, which our queries wrap in ``/^...$/``).
"""

from __future__ import annotations

import re
from typing import Callable, Iterator

_REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|[\]{}/]")
_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
# Grafana rounds the raw interval (range / max data points) to one of these.
_NICE_MS = [10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 15_000, 20_000, 30_000, 60_000,
            120_000, 300_000, 600_000, 900_000, 1_200_000, 1_800_000, 3_600_000, 7_200_000,
            10_800_000, 21_600_000, 43_200_000, 86_400_000, 604_800_000]


def escape_regex(value: str) -> str:
    return _REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), value)


def format_variable(values: list[str], multi_or_all: bool) -> str:
    """A variable's value as Grafana's InfluxDB data source writes it into a query."""
    if not multi_or_all:
        return values[0]
    escaped = [escape_regex(v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def parse_duration_ms(text: str) -> int:
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d|w)", text.strip())
    if not match:
        raise ValueError(f"not a Grafana duration: {text!r}")
    return int(match.group(1)) * _UNITS_MS[match.group(2)]


def format_duration(ms: int) -> str:
    for unit in ("w", "d", "h", "m", "s"):
        if ms % _UNITS_MS[unit] == 0 and ms >= _UNITS_MS[unit]:
            return f"{ms // _UNITS_MS[unit]}{unit}"
    return f"{ms}ms"


def interval_ms(range_ms: int, max_data_points: int = 1000, min_interval_ms: int = 1000) -> int:
    raw = max(range_ms // max_data_points, min_interval_ms)
    return next((nice for nice in _NICE_MS if nice >= raw), _NICE_MS[-1])


def substitute(query: str, from_ms: int, to_ms: int, variables: dict[str, str],
               max_data_points: int = 1000, min_interval_ms: int = 1000) -> str:
    """``variables`` maps a name to its already formatted value (see format_variable)."""
    step = interval_ms(to_ms - from_ms, max_data_points, min_interval_ms)
    builtins = {
        "timeFilter": f"time >= {from_ms}ms and time <= {to_ms}ms",
        "__interval_ms": str(step),
        "__interval": format_duration(step),
        "__range_ms": str(to_ms - from_ms),
        "__range_s": str((to_ms - from_ms) // 1000),
        "__range": format_duration(to_ms - from_ms),
    }
    values = {**variables, **builtins}

    def replace(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"query uses ${name}, which is neither a Grafana macro nor a variable")
        return values[name]

    # Longest names first, so $__interval_ms is not read as $__interval followed by "_ms".
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, query)


def panels(board: dict) -> Iterator[dict]:
    """Every panel of a dashboard, those inside collapsed rows too."""
    def walk(items):
        for panel in items:
            yield panel
            yield from walk(panel.get("panels") or [])
    yield from walk(board.get("panels", []))


def variable_values(board: dict, run: Callable[[str], list[dict]], from_ms: int, to_ms: int,
                    chosen: dict[str, str] | None = None) -> dict[str, str]:
    """Run each template variable's query in order (later ones use earlier ones) with ``run``
    and select All, or the value in ``chosen``; each as Grafana writes it into a query."""
    formatted: dict[str, str] = {}
    for var in board.get("templating", {}).get("list", []):
        if var["type"] != "query":
            raise ValueError(f"{var['name']}: only query variables are expected")
        query = var["query"] if isinstance(var["query"], str) else var["query"]["query"]
        values = sorted({row["value"] for row in run(substitute(query, from_ms, to_ms, formatted))})
        if not values:
            raise ValueError(f"variable {var['name']} has no values: {query}")
        if var["name"] in (chosen or {}):
            if chosen[var["name"]] not in values:
                raise ValueError(f"{chosen[var['name']]!r} not among {values}")
            values = [chosen[var["name"]]]
        formatted[var["name"]] = format_variable(values, var.get("multi") or var.get("includeAll"))
    return formatted

"""Reading values out of a printer's JSON, where any field may be missing, null or of the wrong type."""

from __future__ import annotations

import math


def as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def number(value) -> float | None:
    """A finite float, or None for anything else a printer may send (null, text, NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def loose_number(value) -> float | None:
    """``number``, also for numbers sent as strings (Bambu's firmware sends both)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    return number(value)


def loose_int(value) -> int | None:
    value = loose_number(value)
    return int(value) if value is not None and value.is_integer() else None


def clamp(value: float | None, low: float, high: float) -> float | None:
    return None if value is None else min(max(value, low), high)


def text(value) -> str:
    return value.strip()[:500] if isinstance(value, str) else ""

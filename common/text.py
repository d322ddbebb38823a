"""Text from printers and agents as it may appear in a log line: one line, bounded.

A printer's error text, a file name or an MQTT topic can hold newlines; logged as they are,
they would forge extra log lines.
"""

from __future__ import annotations

import re

_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


def one_line(text: object, limit: int = 200) -> str:
    """``text`` with control characters and line breaks as single spaces, at most ``limit`` long."""
    flat = _BREAKS.sub(" ", str(text))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"

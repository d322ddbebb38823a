"""Repeated log lines, rate limited: a misbehaving printer must not fill the card or the journal.

Only the agent's own loggers (``agent.*``): what a printer can make repeat. A line's kind is its logger, its format string and its first argument (by the agent's
convention the printer id): each kind may pass ``per_minute`` times a minute (bursts of up to
ten). The lines held back are counted, and the next line of that kind that passes says how many.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from agent.printers.limits import RateLimit

MAX_KINDS = 2000  # the kinds tracked at once; forgotten all together past that


class LogRateLimit(logging.Filter):
    def __init__(self, per_minute: int, monotonic: Callable[[], float] = time.monotonic):
        super().__init__()
        self.per_minute, self._monotonic = per_minute, monotonic
        self._kinds: dict[tuple, list] = {}  # kind -> [RateLimit, lines held back]

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("agent"):
            return True  # the scheduler's lines come once per poll: bounded by the schedule
        args = record.args if isinstance(record.args, tuple) else ()
        kind = (record.name, str(record.msg), str(args[0])[:64] if args else None)
        entry = self._kinds.get(kind)
        if entry is None:
            if len(self._kinds) >= MAX_KINDS:
                self._kinds.clear()
            entry = self._kinds[kind] = [RateLimit(self.per_minute, monotonic=self._monotonic), 0]
        if not entry[0].allow():
            entry[1] += 1
            return False
        if entry[1]:
            record.msg = f"{record.msg} [{entry[1]} more like this held back; limits.log_lines_per_minute]"
            entry[1] = 0
        return True


def install(per_minute: int) -> None:
    """On every handler of the root logger (call after logging is configured)."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(LogRateLimit(per_minute))

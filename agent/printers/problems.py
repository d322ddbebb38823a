"""A printer's failures in the log: a repeating problem once, then again only when it changes."""

from __future__ import annotations

import logging

from common.text import one_line


class ProblemLog:
    def __init__(self, log: logging.Logger, who: str):
        self._log, self._who = log, who  # who: e.g. "PrusaLink at http://host" (credentials redacted)
        self.last: str | None = None

    def note(self, problem: str | None) -> None:
        """The problem of this poll (None: it answered)."""
        if problem == self.last:
            return
        if problem:
            self._log.warning("%s: %s", self._who, one_line(problem))  # printer text: one log line
        elif self.last:
            self._log.info("%s answers again", self._who)
        self.last = problem

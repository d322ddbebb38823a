"""Bounds on what a printer can make the agent hold or wait for (docs/security.md).

A printer is untrusted input: broken firmware, a misconfigured proxy or a device posing as the
printer must cost at most that printer's data. Every transport (HTTP, websocket, MQTT) checks
these bounds *before* holding the bytes, and a breach raises ``LimitExceeded``: its text is the
reason that printer is shown ``unreachable``; the other printers never notice.

``[limits]`` in the agent's config sets them for every printer (defaults below).
"""

from __future__ import annotations

import heapq
import itertools
import re
import threading
import time
from typing import Callable

from common.configkit import Section, check_range

KIB, MIB = 1024, 1024 * 1024


class Limits(Section):
    reply_bytes: int = 1 * MIB  # one HTTP reply body (OctoPrint, PrusaLink)
    message_bytes: int = 1 * MIB  # one websocket message, all its fragments together (Moonraker)
    fragments: int = 64  # websocket frames one message may be split into
    held_messages: int = 256  # notifications kept while a websocket call waits for its answer ...
    held_bytes: int = 4 * MIB  # ... and their bytes together
    object_keys: int = 256  # fields kept per Moonraker object (only subscribed objects are kept)
    packet_bytes: int = 1 * MIB  # one MQTT packet from a Bambu printer
    json_depth: int = 32  # nesting of any JSON a printer sends
    state_changes_per_minute: int = 30  # status/job reports per printer between polls; the rest coalesce
    log_lines_per_minute: int = 20  # repeats of one log line (per printer) before they are counted

    def __post_init__(self):
        check_range("reply_bytes", self.reply_bytes, 16 * KIB, 256 * MIB)
        check_range("message_bytes", self.message_bytes, 16 * KIB, 256 * MIB)
        check_range("fragments", self.fragments, 1, 100_000)
        check_range("held_messages", self.held_messages, 8, 100_000)
        check_range("held_bytes", self.held_bytes, self.message_bytes, 1024 * MIB)
        check_range("object_keys", self.object_keys, 16, 100_000)
        check_range("packet_bytes", self.packet_bytes, 16 * KIB, 256 * MIB)
        check_range("json_depth", self.json_depth, 8, 1000)
        check_range("state_changes_per_minute", self.state_changes_per_minute, 1, 6000)
        check_range("log_lines_per_minute", self.log_lines_per_minute, 1, 6000)


DEFAULT = Limits()


class LimitExceeded(Exception):
    """A printer sent more than a bound allows; the text says what and which bound."""


def size_text(n: int) -> str:
    if n >= MIB:
        return f"{n / MIB:.1f} MiB"
    return f"{n / KIB:.0f} KiB" if n >= KIB else f"{n} bytes"


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKETS = bytes(range(256)).translate(None, b"[]{}")  # every byte but brackets: deleted


def check_json_depth(data: bytes, limit: int, what: str) -> None:
    """Raise ``LimitExceeded`` if ``data`` (JSON text) nests deeper than ``limit``.

    Checked before decoding: a decoder meeting thousands of brackets recurses until it
    fails with a RecursionError that callers do not expect."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return  # too few brackets to be too deep: the common case costs two counts
    depth = deepest = 0
    for byte in _STRING.sub(b'""', data).translate(None, _BRACKETS):
        depth += 1 if byte in (0x5B, 0x7B) else -1
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                raise LimitExceeded(f"{what} nests deeper than {limit} levels (limits.json_depth)")


class Watchdog:
    """One thread for every deadline of the agent: ``arm(when, fn)`` calls ``fn`` at monotonic
    time ``when`` unless ``disarm``-ed first. Transports use it to cut a socket whose peer
    trickles bytes, which no per-read timeout notices."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic):
        self._monotonic = monotonic
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._armed: set[int] = set()
        self._ids = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, when: float, fn: Callable[[], None]) -> int:
        with self._cond:
            token = next(self._ids)
            heapq.heappush(self._heap, (when, token, fn))
            self._armed.add(token)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="deadlines", daemon=True)
                self._thread.start()
            self._cond.notify()
            return token

    def disarm(self, token: int) -> None:
        with self._cond:
            self._armed.discard(token)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][1] not in self._armed:
                    heapq.heappop(self._heap)  # disarmed: forget it
                wait = self._heap[0][0] - self._monotonic() if self._heap else None
                if wait is None or wait > 0:
                    self._cond.wait(wait)
                    continue
                _, token, fn = heapq.heappop(self._heap)
                self._armed.discard(token)
            try:
                fn()
            except Exception:  # noqa: BLE001 - cutting a socket that is already gone is fine
                pass


WATCHDOG = Watchdog()


class RateLimit:
    """A token bucket: ``allow()`` is true at most ``per_minute`` times a minute on average,
    with bursts of up to ``burst``."""

    def __init__(self, per_minute: float, burst: int | None = None,
                 monotonic: Callable[[], float] = time.monotonic):
        self.rate = per_minute / 60.0
        self.burst = burst if burst is not None else max(1, min(int(per_minute), 10))
        self._tokens = float(self.burst)
        self._monotonic = monotonic
        self._last = monotonic()

    def allow(self) -> bool:
        now = self._monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

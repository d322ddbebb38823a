"""A write barrier: has InfluxDB stored everything the collector received before now?

The rollups read InfluxDB, so a run must not start before the messages that marked printers
dirty are in it, or it would compute from old data and forget the marks. The barrier sends a
token through the writer behind every line put so far (``BatchWriter.track``, as the MQTT loop
does for its deliveries) and waits until the writer reports it durable; durable may mean "in the
spool" during an outage, so it also wants the spool empty. The collector takes these tokens out
of what the writer acknowledges before the rest goes to the MQTT loop (``pick``).
"""

from __future__ import annotations

import threading


class _Token:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class WriteBarrier:
    def __init__(self, writer, spool=None, timeout: float = 15.0):
        self.writer, self.spool, self.timeout = writer, spool, timeout
        self._out = 0  # tokens sent and not yet back
        self._lock = threading.Lock()

    def __call__(self) -> bool:
        token = _Token()
        with self._lock:
            self._out += 1
        self.writer.track([token])
        self.writer.flush(block=False)
        return token.done.wait(self.timeout) and (self.spool is None or len(self.spool) == 0)

    def pick(self, tokens: list) -> list:
        """Called with every durable chunk's tokens: ours are taken out, the rest passed on."""
        if not self._out:
            return tokens
        out = []
        for token in tokens:
            if isinstance(token, _Token):
                with self._lock:
                    self._out -= 1
                token.done.set()
            else:
                out.append(token)
        return out

"""The acknowledgement handshake between the MQTT loop and the InfluxDB writer.

One name per step:

- **track**: right after a QoS 1 message's lines were put to the writer, the loop hands the
  writer the message's token (``BatchWriter.track``); the writer keeps it behind those lines.
- **acknowledge**: once everything put before a token is durable (in InfluxDB or in the
  on-disk spool), the writer calls ``Acknowledgements.acknowledge(tokens)`` from its thread;
  the loop takes them (``take``) and sends the PUBACKs.
- **flush**: when the socket goes quiet, the loop asks the writer to make what it holds
  durable now instead of waiting for a full batch (``BatchWriter.flush``).

The collector passes these callables to the constructors (server/collector.py).

A token is ``connection << 16 | packet_id``: a packet identifier means something only on the
connection it arrived on, so the loop drops tokens of an earlier connection (the broker has
redelivered those messages on the new one, where they get their own token).
"""

from __future__ import annotations

import collections
import socket


def token(connection: int, packet_id: int) -> int:
    return connection << 16 | packet_id


def packet_ids(tokens: list[int], connection: int) -> list[int]:
    """The packet identifiers of those tokens that belong to ``connection``."""
    return [t & 0xFFFF for t in tokens if t >> 16 == connection]


class Acknowledgements:
    """Tokens on their way from the writer's thread to the MQTT loop, which it wakes.

    ``wake`` is also how other threads (and signal handlers) interrupt the loop's wait.
    """

    def __init__(self):
        self._ready: collections.deque[list[int]] = collections.deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    def acknowledge(self, tokens: list[int]) -> None:
        """Any thread: these tokens' data is durable."""
        self._ready.append(tokens)
        self.wake()

    def take(self) -> list[int]:
        """The loop's thread: every token acknowledged since the last call."""
        tokens: list[int] = []
        while self._ready:
            tokens += self._ready.popleft()
        return tokens

    def wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass  # the socket buffer is full: a wake-up is pending already

    def fileno(self) -> int:
        """For select(): readable after ``wake``."""
        return self._wake_r.fileno()

    def clear_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

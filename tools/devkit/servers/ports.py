"""Loopback ports for the servers that tests, benchmarks and the demo start.

A port is picked here and bound later by a child process, so it has to stay free in between,
and while a stopped server waits to start again on it:

- it lies below the kernel's ephemeral range, so no outgoing connection (the suite makes
  thousands) and no bind to port 0 can take it;
- it is reserved machine-wide by a lock on a file in ``RESERVATIONS`` that this process holds,
  so no other test worker, test run or benchmark hands it out too. The kernel drops the lock
  when the process ends, however it ends.
"""

from __future__ import annotations

import fcntl
import random
import socket
import tempfile
import threading
from collections import deque
from pathlib import Path
from typing import IO, Iterator

HOST = "127.0.0.1"
FIRST = 10000
RESERVATIONS = Path(tempfile.gettempdir()) / "printfarm-ports"
# Reservations a process keeps, newest last. By the time one is let go, its server has long
# bound the port (or is gone): the walk reaches that port again only after the whole range.
KEEP = 128

_lock = threading.Lock()
_held: deque[IO] = deque()
_position: int | None = None  # where this process's walk through the range is


def free_port() -> int:
    """A loopback TCP port that is free and reserved for this process."""
    return free_ports(1)[0]


def free_ports(n: int, besides: tuple[int, ...] = ()) -> list[int]:
    """``n`` distinct loopback TCP ports, free and reserved for this process, none of ``besides``."""
    out: list[int] = []
    with _lock:
        for port in _walk():
            if port not in besides and _bindable(port) and reserve(port):
                out.append(port)
                if len(out) == n:
                    return out
    # No room below the ephemeral range on this machine: the kernel picks, unreserved.
    return out + [_kernel_port() for _ in range(n - len(out))]


def reserve(port: int) -> bool:
    """Hold ``port`` for this process; False if another process (or another call here) holds it."""
    try:
        RESERVATIONS.mkdir(exist_ok=True)
    except OSError:
        return True  # nowhere to keep reservations: the bind check alone
    try:
        handle = open(RESERVATIONS / str(port), "a")
    except OSError:
        return False  # another user's reservation
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return False
    _held.append(handle)
    if len(_held) > KEEP:
        _held.popleft().close()
    return True


def ephemeral_floor() -> int:
    """Where the kernel's range for outgoing connections and port 0 starts."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _walk() -> Iterator[int]:
    # Once round the range, on from where the last call stopped: a port this process let go
    # (a server stopped for a restart) is not handed out again soon. The start is random, so
    # processes side by side seldom try the same ports.
    global _position
    ports = range(FIRST, ephemeral_floor())
    if len(ports) < 1000:
        return
    if _position is None:
        _position = random.randrange(len(ports))
    for _ in range(len(ports)):
        _position = (_position + 1) % len(ports)
        yield ports[_position]


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
            return True
        except OSError:
            return False


def _kernel_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]

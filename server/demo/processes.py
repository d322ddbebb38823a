"""Child processes that never outlive the demo: own session, parent-death signal, stop by pid."""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: if the demo is SIGKILLed, the kernel sends
    # SIGTERM to the child, so not even a hard kill leaves servers behind.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class Children:
    """Start named children in their own sessions (Ctrl-C in the terminal reaches only us) and
    stop them in reverse order: SIGTERM, wait, then SIGKILL."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []
        atexit.register(self.kill_all)

    def spawn(self, name: str, cmd: list[str], log_path: Path, env: dict | None = None,
              cwd: Path | None = None) -> subprocess.Popen:
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, preexec_fn=_die_with_parent, env=env, cwd=cwd)
        self.procs.append((name, proc))
        log.debug("started %s (pid %d)", name, proc.pid)
        return proc

    def dead(self) -> list[tuple[str, int]]:
        """(name, exit code) of children that ended on their own."""
        return [(name, p.returncode) for name, p in self.procs if p.poll() is not None]

    def stop(self, name: str, timeout: float = 10.0) -> None:
        for entry in [e for e in self.procs if e[0] == name]:
            _stop(*entry, timeout)
            self.procs.remove(entry)

    def stop_all(self, timeout: float = 10.0) -> None:
        """Stop in reverse start order; signal a whole tier at once so shutdowns overlap."""
        for name, proc in reversed(self.procs):
            _signal(proc, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name, proc in reversed(self.procs):
            try:
                proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.warning("%s (pid %d) ignored SIGTERM; killing it", name, proc.pid)
                _signal(proc, signal.SIGKILL)
                proc.wait()
        self.procs.clear()

    def kill_all(self) -> None:
        for _, proc in self.procs:
            _signal(proc, signal.SIGKILL)
            proc.wait()
        self.procs.clear()


def _signal(proc: subprocess.Popen, sig: int) -> None:
    if proc.poll() is None:  # unreaped: its pid (= process group) cannot have been reused
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass


def _stop(name: str, proc: subprocess.Popen, timeout: float) -> None:
    _signal(proc, signal.SIGTERM)
    _signal(proc, signal.SIGCONT)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("%s (pid %d) ignored SIGTERM; killing it", name, proc.pid)
        _signal(proc, signal.SIGKILL)
        proc.wait()

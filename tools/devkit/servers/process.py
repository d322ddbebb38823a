"""Child processes for tests, benchmarks and the demo: start on free loopback ports (ports.py),
wait until answering, stop by pid and process group, and never outlive the process that started them."""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import subprocess
import logging
import time
from pathlib import Path

import requests

from devkit.servers.ports import HOST, free_port

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 30

# Servers whose process may still be running; the atexit hook kills them so an aborted run
# (Ctrl-C, an exception outside a fixture) leaves no orphans behind.
_live: set["Server"] = set()


def find_binary(name: str, install_hint: str, candidates: tuple[str, ...] = ()) -> str:
    # /usr/sbin is not on every user's PATH, so look at the Debian locations too.
    for path in (shutil.which(name), *candidates):
        if path and os.access(path, os.X_OK):
            return path
    raise RuntimeError(f"{name} not found: {install_hint}")


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: if the parent is SIGKILLed, the kernel sends
    # SIGTERM to the child, so not even a hard kill of a test run or the demo leaves servers behind.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


class Server:
    """One child process: start, wait until it answers, stop by pid (and its process group)."""

    name = "server"
    start_timeout = 30.0
    stop_timeout = 10.0
    # The demo sets this: its servers go when it is SIGKILLed. Off by default, because the
    # kernel ties the signal to the *thread* that started the child, not the process.
    die_with_parent = False

    def __init__(self, tmpdir: str | os.PathLike, port: int | None = None) -> None:
        self.dir = Path(tmpdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = HOST
        self._auto_port = port is None
        self.port = port or free_port()
        self.log_path = self.dir / f"{self.name}.log"
        self.proc: subprocess.Popen | None = None
        self.startup_seconds: float | None = None
        self._started_once = False

    # -- what subclasses provide -------------------------------------------------------------
    def _command(self) -> list[str]:
        raise NotImplementedError

    def _prepare(self) -> None:
        """Write config files before each start."""

    def _answers(self) -> bool:
        """One readiness probe; may raise OSError/requests errors (treated as 'not yet')."""
        raise NotImplementedError

    def _pick_new_ports(self) -> None:
        self.port = free_port()

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> "Server":
        if self.running:
            raise RuntimeError(f"{self.name} already running (pid {self.pid})")
        # free_port() can race with another process; on the very first start pick again.
        attempts = 3 if self._auto_port and not self._started_once else 1
        for attempt in range(attempts):
            try:
                self._start_once()
                break
            except _PortTaken:
                if attempt == attempts - 1:
                    raise RuntimeError(self._failure("could not bind its port")) from None
                self._pick_new_ports()
        self._started_once = True
        return self

    def _start_once(self) -> None:
        self._prepare()
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        began = time.monotonic()
        with open(self.log_path, "ab") as log:
            # Own session: Ctrl-C in the terminal does not hit the server mid-test, and we can
            # signal the whole process group.
            self.proc = subprocess.Popen(
                self._command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.dir, env=self._env(), start_new_session=True,
                preexec_fn=_die_with_parent if self.die_with_parent else None,
            )
        _live.add(self)
        try:
            self._wait_until_answering(log_offset)
        except BaseException:
            self.kill()
            raise
        self.startup_seconds = time.monotonic() - began

    def _wait_until_answering(self, log_offset: int) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                new_log = self.log_path.read_bytes()[log_offset:].decode(errors="replace")
                if "address already in use" in new_log.lower():
                    raise _PortTaken()
                raise RuntimeError(self._failure(f"exited with code {self.proc.returncode}"))
            try:
                if self._answers():
                    return
            except (OSError, requests.RequestException, ValueError):
                pass  # not listening yet, or answering garbage while it boots
            time.sleep(0.02)
        raise RuntimeError(self._failure(f"did not answer within {self.start_timeout:.0f} s"))

    def _failure(self, what: str) -> str:
        return (f"{self.name} on {self.host}:{self.port} {what}; "
                f"last lines of {self.log_path}:\n{log_tail(self.log_path)}")

    def _signal(self, sig: int) -> None:
        # Only while the leader is unreaped: its pid (= the group id) cannot be reused then.
        if self.running:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        """SIGTERM (and SIGCONT, in case it is stopped), then SIGKILL after stop_timeout."""
        if self.running:
            self._signal(signal.SIGTERM)
            self._signal(signal.SIGCONT)
            try:
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        _live.discard(self)

    def kill(self) -> None:
        """SIGKILL: a crash, no chance to save state."""
        if self.proc is not None:
            self._signal(signal.SIGKILL)
            self.proc.wait()
        _live.discard(self)

    def restart(self) -> "Server":
        """Stop and start again on the same port(s) with the same data directory."""
        self.stop()
        return self.start()

    def sigstop(self) -> None:
        """Freeze the process: the port stays open but nothing answers."""
        self._signal(signal.SIGSTOP)

    def sigcont(self) -> None:
        self._signal(signal.SIGCONT)

    def __enter__(self):
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.host}:{self.port} pid={self.pid} dir={self.dir}>"


class _PortTaken(Exception):
    pass


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_live):
        server.kill()


# == the product's own processes (collector, agents, simulator) in the demo and benchmarks ==

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

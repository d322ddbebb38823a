"""Klipper printers through Moonraker's websocket JSON-RPC API: live state pushed, job ends
from Moonraker's job history.

One thread per printer holds the websocket: it reads ``server.info``, subscribes to the printer
objects, reads a page of job history, then merges every pushed frame into a ``MoonrakerView``
and calls ``changed()`` when the printer's state, job or history moved. A lost or silent
connection (no frame or pong for 1.5 intervals) makes the printer ``unreachable`` at once, and
the thread reconnects with backoff. ``poll()`` does no I/O.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import partial
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

from agent.printers.base import PrinterSettings, Snapshot
from agent.printers.jsonrpc_ws import Closed, RpcError, RpcSocket, Timeout
from agent.printers.limits import DEFAULT, LimitExceeded, Limits
from agent.printers.moonraker_info import MAX_QUEUE, capabilities, estimate, loaded_spool, queue_files, queue_info
from agent.printers.moonraker_view import HISTORY_PAGE, OBJECTS, MoonrakerView
from agent.printers.problems import ProblemLog
from common.configkit import Secret, check_http_url, read_secret
from common.text import one_line
from common.urls import redact

log = logging.getLogger(__name__)

BACKOFF_MIN = 0.5
# Moonraker notifies Klipper ready, shutdown and disconnected, but not a start-up that ends in an
# error (a config error after FIRMWARE_RESTART): while Klipper is starting or away, server.info is
# asked again (Moonraker's docs say every 2 s; sooner here, it is one local call).
REQUERY = 1.0
WAITING_FOR_KLIPPER = frozenset({"startup", "disconnected"})
REJECTED = "API key rejected (unauthorized): check api_key_file, or Moonraker's trusted_clients"
IDENTITY = {"client_name": "printfarm-agent", "version": "0.1.0", "type": "other",
            "url": "https://github.com/printfarm/printfarm"}


class MoonrakerSettings(PrinterSettings, tag="moonraker"):
    url: str  # Moonraker's HTTP address, e.g. http://voron.local:7125
    api_key_file: str | None = None  # without a key, Moonraker's trusted_clients decide
    api_key_env: str | None = None

    def __post_init__(self):
        super().__post_init__()
        check_http_url("url", self.url)
        key = read_secret("api_key", self.api_key_file, self.api_key_env, required=False)
        self.api_key = Secret(key) if key else None

    def build(self) -> "Moonraker":
        return Moonraker(self.url, self.api_key, interval=self.interval, timeout=self.timeout,
                         connect=partial(RpcSocket, limits=self.limits), limits=self.limits)


def websocket_url(url: str) -> str:
    parts = urlsplit(url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/websocket", "", ""))


class Moonraker:
    def __init__(self, url: str, api_key: Secret | None = None, interval: float = 5.0, timeout: float = 3.0,
                 connect: Callable[..., RpcSocket] = RpcSocket, clock: Callable[[], float] = time.time,
                 limits: Limits = DEFAULT):
        self.url = url
        self._api_key, self._interval, self._timeout = api_key, interval, timeout
        self._connect, self._clock = connect, clock
        self._view = MoonrakerView(limits.object_keys)
        self._lock = threading.Lock()  # the view is written by our thread, read by the agent's
        self._stop = threading.Event()
        self._changed: Callable[[], None] = lambda: None
        self._rpc: RpcSocket | None = None
        self._thread: threading.Thread | None = None
        self._last_key: tuple | None = None
        self._problems = ProblemLog(log, f"Moonraker at {redact(url)}")
        self._first_answer = threading.Event()
        self._config_too_big = False  # Klipper's configfile overran limits.message_bytes once: not asked again
        self._caps_retry: float | None = None  # when to ask the capabilities again (the last ask timed out)
        # Questions beyond the state (capabilities, queue, spool), asked one at a time from the
        # listening loop when no notification waits: a call holds the notifications that come
        # meanwhile, so none of them may crowd out the state (or make a flood break another bound).
        self._todo: list[Callable[[RpcSocket], None]] = []

    # -- the PushPrinter protocol ---------------------------------------------------------------
    def start(self, changed: Callable[[], None]) -> None:
        self._changed = changed
        self._thread = threading.Thread(target=self._run, name=f"moonraker {redact(self.url)}", daemon=True)
        self._thread.start()
        # The first poll follows at once: let it see the printer, not "not connected yet".
        self._first_answer.wait(self._timeout * 3)

    def poll(self) -> Snapshot:
        with self._lock:
            return self._view.snapshot(int(self._clock() * 1000))

    def close(self) -> None:
        self._stop.set()
        rpc = self._rpc
        if rpc is not None:
            rpc.close()
        if self._thread is not None:
            self._thread.join(self._timeout + 1)

    # -- the connection thread ------------------------------------------------------------------
    def _run(self) -> None:
        # The backoff never exceeds the interval: a Moonraker answering again is seen within two
        # intervals however long it was away (one connection attempt per interval costs nothing).
        delay = BACKOFF_MIN
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                self._session()
            except Exception as exc:  # any failure of the connection is data, not a crash
                if self._stop.is_set():
                    return
                self._lost(_describe(exc))
            if time.monotonic() - began > self._interval:
                delay = BACKOFF_MIN  # it had been up a while: start the backoff over
            self._stop.wait(min(delay, self._interval))
            delay = min(delay * 2, self._interval)

    def _session(self) -> None:
        headers = {"X-Api-Key": self._api_key.reveal()} if self._api_key else {}
        self._rpc = rpc = self._connect(websocket_url(self.url), headers, self._timeout)
        try:
            self._sync(rpc)
            self._listen(rpc)
        finally:
            self._rpc = None
            rpc.close()

    def _sync(self, rpc: RpcSocket) -> None:
        """Everything the agent needs to know at once after (re)connecting."""
        rpc.call("server.connection.identify", IDENTITY)
        self._clock_sample(_proc_time(rpc))  # before the history: its times are on Moonraker's clock
        history = _history(rpc)
        with self._lock:
            self._view.history_loaded(history)
        self._ask_klippy(rpc)
        self._ask_later(self._read_queue, self._read_spool)
        self._problems.note(None)
        self._report()

    def _ask_klippy(self, rpc: RpcSocket) -> None:
        klippy = rpc.call("server.info").get("klippy_state", "disconnected")
        message = _state_message(rpc) if klippy not in ("ready", "disconnected") else None
        with self._lock:
            self._view.answered(klippy, message)
        if klippy == "ready":
            self._subscribe(rpc)

    def _subscribe(self, rpc: RpcSocket) -> None:
        status = rpc.call("printer.objects.subscribe", {"objects": OBJECTS}).get("status", {})
        # Deltas that came while we waited are older than this full status: applied after it,
        # they would turn progress back.
        rpc.drop_pending("notify_status_update")
        with self._lock:
            self._view.subscribed(status)
        self._ask_later(self._read_capabilities)

    def _ask_later(self, *questions: Callable[[RpcSocket], None]) -> None:
        self._todo += [q for q in questions if q not in self._todo]

    def _read_capabilities(self, rpc: RpcSocket) -> None:
        """Build volume, extruders and nozzles, a chamber: read as Klipper (re)starts (after a
        FIRMWARE_RESTART its config may be another)."""
        self._caps_retry = None
        if self._config_too_big:
            return
        query = {"objects": {"configfile": ["settings"], "toolhead": ["axis_minimum", "axis_maximum"]}}
        try:
            status = rpc.call("printer.objects.query", query)
        except RpcError as exc:
            log.info("%s: no capabilities from Klipper (%s)", redact(self.url), one_line(exc))
            return
        except Timeout:  # a busy host: asked again soon (its late answer is dropped as no notification)
            self._caps_retry = time.monotonic() + self._interval * 4
            return
        except LimitExceeded as exc:
            if "message_bytes" not in str(exc):
                raise  # another bound (a flood of notifications meanwhile): not the configuration's size
            self._config_too_big = True  # the connection is lost with it; the next one skips this
            log.warning("%s: Klipper's configuration is larger than limits.message_bytes: capabilities "
                        "come from the inventory", redact(self.url))
            raise
        caps = capabilities(status.get("status", {}) if isinstance(status, dict) else {})
        with self._lock:
            self._view.capabilities = caps

    def _read_queue(self, rpc: RpcSocket) -> None:
        """Moonraker's job queue: how many jobs wait, and their estimated time."""
        try:
            files = queue_files(rpc.call("server.job_queue.status"))
            if files is None:
                return
            estimates = {name: self._estimate(rpc, name) for name in dict.fromkeys(files[:MAX_QUEUE])}
        except (RpcError, Timeout) as exc:  # a Moonraker without a job queue, or a busy one: no queue now
            log.debug("no job queue from Moonraker: %s", exc)
            return
        with self._lock:
            self._view.queue = queue_info(files, estimates)

    def _read_spool(self, rpc: RpcSocket) -> None:
        """Spoolman's active spool, where Moonraker has a [spoolman]: the material loaded."""
        try:
            spool_id = rpc.call("server.spoolman.get_spool_id").get("spool_id")
            answer = None
            if isinstance(spool_id, int) and not isinstance(spool_id, bool):
                answer = rpc.call("server.spoolman.proxy", {"request_method": "GET", "path": f"/v1/spool/{spool_id}",
                                                            "use_v2_response": True})
        except (RpcError, Timeout, AttributeError) as exc:  # no [spoolman], or a busy host
            log.debug("no active spool from Moonraker: %s", exc)
            return
        with self._lock:
            self._view.spool = loaded_spool(answer)

    @staticmethod
    def _estimate(rpc: RpcSocket, name: str) -> float | None:
        try:
            return estimate(rpc.call("server.files.metadata", {"filename": name}))
        except (RpcError, Timeout):  # no metadata (not yet analysed, or gone): the total is not known
            return None

    def _listen(self, rpc: RpcSocket) -> None:
        beat, silent_limit = self._interval / 2, self._interval * 1.5
        heard = asked = time.monotonic()
        while not self._stop.is_set():
            waiting = self._view.klippy in WAITING_FOR_KLIPPER
            if self._caps_retry is not None and time.monotonic() >= self._caps_retry and self._view.klippy == "ready":
                self._caps_retry = None
                self._ask_later(self._read_capabilities)
            if self._todo and not rpc.pending:
                self._todo.pop(0)(rpc)  # bounded by its timeout
                self._report()
            if waiting and time.monotonic() - asked >= REQUERY:
                asked = time.monotonic()
                self._ask_klippy(rpc)
                self._report()
            message = rpc.receive(min(beat, REQUERY) if waiting else beat)
            now = time.monotonic()
            if message is None:
                if now - heard > silent_limit:
                    raise Timeout(f"no frame and no pong for {silent_limit:g} s")
                rpc.ping()
                continue
            heard = now
            if message:
                self._handle(rpc, message)

    def _handle(self, rpc: RpcSocket, message: dict) -> None:
        method, params = message.get("method"), message.get("params") or [{}]
        first = params[0] if isinstance(params, list) and params and isinstance(params[0], dict) else {}
        if method == "notify_proc_stat_update":  # every second, sent as Moonraker samples its clock
            self._clock_sample(first.get("moonraker_stats"), rpc.arrived)
            return
        if method in ("notify_active_spool_set", "notify_spoolman_status_changed"):
            self._ask_later(self._read_spool)  # a new spool, or Spoolman (back) up: its spool can be read now
            return
        if method == "notify_job_queue_changed":  # "state_changed" carries no list: nothing moved
            if queue_files(first.get("updated_queue")) is not None:
                self._ask_later(self._read_queue)
            return
        with self._lock:
            resubscribe = method == "notify_klippy_ready" and self._view.klippy != "ready"
            if method == "notify_status_update":
                self._view.merge(first)
            elif method == "notify_history_changed":
                self._view.history_changed(first)
            elif method == "notify_klippy_shutdown":
                self._view.klippy_changed("shutdown")
            elif method == "notify_klippy_disconnected":
                self._view.klippy_changed("disconnected")
            elif method != "notify_klippy_ready":
                return  # proc stats, G-code responses, file lists: not ours
        if resubscribe:  # Moonraker forgot our subscription when Klipper went away
            self._subscribe(rpc)
        self._report()

    def _clock_sample(self, stats, arrived: float | None = None) -> None:
        """``arrived``: when the frame came (time.monotonic()), if it was held during a call."""
        if isinstance(stats, dict):
            late = time.monotonic() - arrived if arrived is not None else 0.0
            with self._lock:
                self._view.clock_sample(stats.get("time"), int((self._clock() - late) * 1000))

    # -- telling the agent ----------------------------------------------------------------------
    def _report(self) -> None:
        """Call ``changed()`` when what the agent publishes at once has moved."""
        self._first_answer.set()
        snap = self.poll()
        last = snap.history[-1].job_id if snap.history else None
        key = (snap.state, snap.state_text, snap.error, snap.file, snap.job_id, snap.user, last)
        if key != self._last_key:
            self._last_key = key
            self._changed()

    def _lost(self, problem: str) -> None:
        with self._lock:
            self._view.lost(problem)
        self._problems.note(problem)
        self._report()


def _state_message(rpc: RpcSocket) -> str | None:
    try:
        return rpc.call("printer.info").get("state_message")
    except RpcError:
        return None  # Klipper went away between the two calls


def _proc_time(rpc: RpcSocket) -> dict | None:
    """Moonraker's newest process sample (its clock, up to a second old), or None."""
    try:
        samples = rpc.call("machine.proc_stats").get("moonraker_stats")
    except (RpcError, AttributeError):
        return None
    return samples[-1] if isinstance(samples, list) and samples and isinstance(samples[-1], dict) else None


def _history(rpc: RpcSocket) -> list | None:
    try:
        return rpc.call("server.history.list", {"limit": HISTORY_PAGE, "order": "desc"}).get("jobs", [])
    except RpcError as exc:
        log.info("Moonraker keeps no job history (%s): job ends are read from print_stats", one_line(exc))
        return None


def _describe(exc: Exception) -> str:
    if isinstance(exc, LimitExceeded):
        return str(exc)
    if isinstance(exc, Timeout):
        return f"no answer within the timeout ({exc})" if str(exc) else "no answer within the timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (Closed, ConnectionError)):
        return "connection lost"
    status = getattr(exc, "status_code", None)  # a refused websocket handshake
    if status in (401, 403) or isinstance(exc, RpcError) and "unauthorized" in str(exc).lower():
        return REJECTED
    if status:
        return f"HTTP {status} from Moonraker"
    if isinstance(exc, RpcError):
        return f"Moonraker refused {exc}"
    if isinstance(exc, (ValueError, AttributeError, TypeError, KeyError)):
        return f"unreadable answer ({type(exc).__name__})"
    return f"{type(exc).__name__}: {str(exc)[:200]}"

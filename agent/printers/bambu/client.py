"""A Bambu Lab printer in LAN mode: its own MQTT broker on the printer, watched over TLS.

One thread per printer runs paho's network loop (``loop()`` with a short timeout), and between
network events checks two things: has the printer gone silent (TLS up, no report for
``silent_after`` seconds: the failure peers report most, a stale connection nobody notices),
and is a full-state request (``pushall``) due.

Silence is first answered on the same connection: an idle A1 stops reporting until asked
(ha-bambulab #493), so the client sends ``pushing.start``, as ha-bambulab's watchdog does (not
``pushall``: P1 printers lag when asked for everything more often than every five minutes).
Only if that brings nothing within ``ask_wait`` is the printer unreachable and the connection
made anew: P1 and A1 printers take few MQTT connections, and a reconnect loop locks Bambu Studio
and Bambu Handy out (ha-bambulab #174, #471). This MQTT client is the printer's, never the
agent's uplink: a printer broker that misbehaves cannot touch the outbox or the uplink session.

The printer pushes; the agent's schedule only samples: ``poll()`` builds a snapshot from the
merged reports without any I/O, and ``changed()`` is called from this thread when the state,
error, file or job moved, so status and job events leave at once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.printers.base import Snapshot
from agent.printers.bambu import capabilities, report, slice_info, tls
from agent.printers.bambu.ftps import Fetcher
from agent.printers.bambu.settings import BambuSettings
from agent.printers.limits import LimitExceeded, check_json_depth
from agent.printers.problems import ProblemLog
from agent.printers.values import text

log = logging.getLogger(__name__)

USERNAME = "bblp"  # LAN mode's only user; the password is the printer's access code
PUSHALL_GAP = 300.0  # seconds: P1 printers lag when asked for everything more often
KEEPALIVE = 30
BAD_CREDENTIALS = ("Bad user name or password", "Not authorized")


class PushallGate:
    """A full report is asked for on every connect, but never twice within ``gap`` seconds;
    a request made too soon waits and goes out as soon as the gap has passed."""

    def __init__(self, gap: float, monotonic: Callable[[], float]):
        self.gap, self._monotonic = gap, monotonic
        self.wanted = False
        self.last: float | None = None

    def request(self) -> None:
        self.wanted = True

    def due(self) -> bool:
        return self.wanted and (self.last is None or self._monotonic() - self.last >= self.gap)

    def sent(self) -> None:
        self.wanted, self.last = False, self._monotonic()


def paho_client(cfg: BambuSettings) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"printfarm-{cfg.id}",
                         protocol=mqtt.MQTTv311, clean_session=True)
    client.username_pw_set(USERNAME, cfg.access_code.reveal())
    client.tls_set_context(tls.make_context(cfg.serial, cfg.ca_file, cfg.pin, cfg.limits.packet_bytes))
    client.connect_timeout = cfg.timeout
    return client


class Bambu:
    def __init__(self, cfg: BambuSettings, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 client_factory: Callable[[BambuSettings], mqtt.Client] = paho_client,
                 backoff: tuple[float, float] = (0.5, 30.0), tick: float = 0.5):
        self.cfg = cfg
        self.report_topic = f"device/{cfg.serial}/report"
        self.request_topic = f"device/{cfg.serial}/request"
        self._clock, self._monotonic, self._factory = clock, monotonic, client_factory
        self._backoff, self._delay, self._tick = backoff, backoff[0], tick
        self._state = report.PrintState()
        self._lock = threading.Lock()  # the state: written by our thread, read by poll()
        self._connecting = f"connecting to {cfg.host}:{cfg.port}"
        self._problem: str | None = self._connecting  # None while reports flow
        self._headline: tuple | None = None
        self._changed: Callable[[], None] = lambda: None
        self.pushall = PushallGate(PUSHALL_GAP, monotonic)
        self._client: mqtt.Client | None = None
        self._open = False  # a connection is up (TLS done, CONNECT sent)
        self._socket = None  # the TLS socket paho opened: it says why it cut a connection
        self._breach: str | None = None  # a report over the limits: the connection is dropped
        self._refused = False  # the broker refused this attempt (already described)
        self._last_heard = 0.0
        self._asked: float | None = None  # when a silent printer was asked to report again
        self._requests = 0
        self.connects = 0  # connections made: for tests (a silent A1 must not cost one)
        self.retries = 0  # waits before another attempt: for tests
        self.reports = 0  # readable reports received: for tests and benchmarks
        self._announce = True  # log the next connect (the first, or the first after reports flowed)
        self._problems = ProblemLog(log, f"{cfg.id}: Bambu printer {cfg.serial} at {cfg.host}:{cfg.port}")
        self._unreadable = ProblemLog(log, f"{cfg.id}: the report stream of {cfg.serial}")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.fetcher = Fetcher(cfg, lambda: self._changed()) if cfg.fetch_3mf else None
        self._was_active = False  # the last snapshot had a job under way (for the fetcher)
        if cfg.insecure_skip_verify:
            log.warning("%s: insecure_skip_verify = true: the certificate of %s:%d is NOT checked; anyone "
                        "on that network can pose as the printer and receive its access code", cfg.id,
                        cfg.host, cfg.port)

    # -- the Printer protocol ---------------------------------------------------------------
    def start(self, changed: Callable[[], None]) -> None:
        self._changed = changed
        self._thread = threading.Thread(target=self._run, name=f"bambu {self.cfg.id}", daemon=True)
        self._thread.start()

    def poll(self) -> Snapshot:
        ts = int(self._clock() * 1000)
        with self._lock:
            if self._problem is not None:
                return Snapshot(ts=ts, state="unreachable", state_text=self._problem, error=self._problem)
            return self._snapshot(ts)

    def close(self) -> None:
        self._stop.set()
        if self.fetcher is not None:
            self.fetcher.close()
        if self._thread is not None:
            self._thread.join(self.cfg.timeout + 2 * self._tick + 1)

    # -- the thread ------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step() if self._open else self._connect()
            except Exception:  # a bug must not end the watch over this printer for good
                log.exception("%s: MQTT loop failed; reconnecting", self.cfg.id)
                self._open = False  # the next connect() closes whatever socket is left
                self._set_problem("internal error in the printer's MQTT loop; see the agent's log")
                self._wait_backoff()
        if self._open:
            self._client.disconnect()

    def _connect(self) -> None:
        if self._client is None:
            self._client = self._factory(self.cfg)
            self._client.on_connect, self._client.on_message = self._on_connect, self._on_message
            self._client.on_disconnect = self._on_disconnect
            self._client.on_socket_open = self._on_socket_open
        self._refused = False
        try:
            self._client.connect(self.cfg.host, self.cfg.port, keepalive=KEEPALIVE)
        except Exception as exc:  # refused, unreachable, TLS: all described, then retried
            self._set_problem(tls.describe(exc, self.cfg.serial, self.cfg.host, self.cfg.port, self.cfg.timeout))
            self._wait_backoff()
            return
        self._open, self._last_heard, self._asked = True, self._monotonic(), None
        self.connects += 1

    def _step(self) -> None:
        if self._client.loop(timeout=self._tick) != mqtt.MQTT_ERR_SUCCESS:
            self._open = False  # on_disconnect said why
            self._wait_backoff()
            return
        now = self._monotonic()
        if self._breach is not None:
            breach, self._breach = self._breach, None
            self._drop(f"{breach}; reconnecting")
        elif now - self._last_heard > self.cfg.silent_after and self._asked is None:
            self._ask_to_report()
        elif self._asked is not None and now - self._asked > self.ask_wait:
            self._drop(f"no report for {self.cfg.silent_after:g} s on an open connection, nor after asking "
                       "for one; reconnecting")
        if self._open and self.pushall.due():
            self._request_pushall()

    @property
    def ask_wait(self) -> float:
        """How long a silent printer has to answer ``pushing.start`` before we reconnect."""
        return min(self.cfg.silent_after, max(5.0, 2 * self.cfg.timeout))

    def _ask_to_report(self) -> None:
        # ha-bambulab's START_PUSH: the request that wakes an idle A1's report stream.
        self._asked = self._monotonic()
        self._requests += 1
        log.debug("%s: no report for %g s; asking the printer to report", self.cfg.id, self.cfg.silent_after)
        self._client.publish(self.request_topic, json.dumps(
            {"pushing": {"sequence_id": str(self._requests), "command": "start"}}), qos=1)

    def _drop(self, problem: str) -> None:
        self._set_problem(problem)
        if self._open:
            self._open = False
            self._client.disconnect()
        self._wait_backoff()

    def _wait_backoff(self) -> None:
        self.retries += 1
        self._stop.wait(self._delay)
        # Knocking on a printer that is off costs it nothing, and one that answers again is then
        # seen within two intervals; a refusal (a wrong access code) is not fixed soon: up to 30 s.
        cap = self._backoff[1] if self._refused else min(self._backoff[1], max(self.cfg.interval, self._backoff[0]))
        self._delay = min(self._delay * 2, cap)

    def _request_pushall(self) -> None:
        # The payload Bambu Studio sends (OpenBambuAPI mqtt.md, "pushing.pushall").
        self._requests += 1
        payload = {"pushing": {"sequence_id": str(self._requests), "command": "pushall", "version": 1,
                               "push_target": 1}}
        self._client.publish(self.request_topic, json.dumps(payload), qos=1)
        self.pushall.sent()

    # -- paho callbacks (on our thread, inside loop() or connect()) -------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._refused = True
            self._set_problem(_refusal(str(reason_code)))
            return
        client.subscribe(self.report_topic, qos=0)
        self.pushall.request()
        if self._problem == self._connecting:  # say what is missing now; later rounds keep their text
            self._set_problem(f"connected to {self.cfg.host}:{self.cfg.port}; no report from the printer yet",
                              transient=True)  # milliseconds, normally: no warning at every start
        if not self._announce:  # reconnecting to a silent printer again and again: said once
            return
        self._announce = False
        if self.cfg.insecure_skip_verify:
            log.warning("%s: connected to %s:%d WITHOUT checking its certificate (insecure_skip_verify)",
                        self.cfg.id, self.cfg.host, self.cfg.port)
        else:
            log.info("%s: connected to printer %s at %s:%d", self.cfg.id, self.cfg.serial, self.cfg.host,
                     self.cfg.port)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        # Not after a refusal (already described) nor after our own _drop (silence: said so).
        breach = getattr(self._socket, "breach", None)  # our own size guard cut it
        if breach and not self._stop.is_set():
            self._set_problem(f"{breach}; reconnecting")
        elif self._open and not self._refused and not self._stop.is_set():
            self._set_problem(f"connection to {self.cfg.host}:{self.cfg.port} lost ({reason_code})")

    def _on_socket_open(self, client, userdata, sock) -> None:
        self._socket = sock

    def _on_message(self, client, userdata, msg) -> None:
        try:
            check_json_depth(msg.payload, self.cfg.limits.json_depth, "a report")
            fields = report.decode(msg.payload)
        except LimitExceeded as exc:  # hostile rather than broken: this printer is unreachable
            self._breach = str(exc)
            return
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
            self._unreadable.note(f"unreadable report ignored: {str(exc)[:200]}")
            return
        self._unreadable.note(None)
        self._problems.note(None)
        self.reports += 1
        self._announce = True
        self._last_heard, self._delay, self._asked = self._monotonic(), self._backoff[0], None
        with self._lock:
            self._state.merge(fields)
            self._problem = None
        self._publish_if_moved()

    # -- state changes ---------------------------------------------------------------------
    def _set_problem(self, problem: str, transient: bool = False) -> None:
        with self._lock:
            if problem == self._problem:
                return
            self._problem = problem
        if transient:
            log.debug("%s: %s", self.cfg.id, problem)
        else:
            self._problems.note(problem)
        self._publish_if_moved()

    def _publish_if_moved(self) -> None:
        with self._lock:
            headline = (self._problem, *self._state.normalised(), self._state.file(), self._state.job_id())
            moved, self._headline = headline != self._headline, headline
        if moved:
            self._changed()

    def _snapshot(self, ts: int) -> Snapshot:
        s = self._state
        state, text, error, ended = s.normalised()
        layer, layers = s.layers()
        return Snapshot(ts=ts, state=state, state_text=text, error=error,
                        temps=s.temps(self.cfg.has_chamber_sensor), progress=s.progress(),
                        time_left=s.time_left(), file=s.file(), job_id=s.job_id(), ended=ended,
                        layer=layer, layers=layers, material=self._material(state),
                        info=capabilities.info(s.values, capabilities.model_of(self.cfg.model, self.cfg.serial)))

    def _material(self, state: str) -> tuple | None:
        """The job's material: from its 3MF once fetched (grams per filament), else the type and
        colour of the tray feeding the nozzle. The fetch starts while the job is under way."""
        v = self._state.values
        subtask, gcode_file = text(v.get("subtask_name")), text(v.get("gcode_file"))
        active = state in ("printing", "paused")
        began, self._was_active = active and not self._was_active, active
        if self.fetcher is not None and (subtask or gcode_file):
            key = (subtask, gcode_file, slice_info.plate_of(gcode_file))
            if began:
                self.fetcher.forget(key)  # the same name again may be sliced anew: fetch again
            found = self.fetcher.material(key) if active else self.fetcher.known(key)
            if found:
                return found
        tray = capabilities.in_use(v)
        return (tray,) if tray is not None else None


def _refusal(reason: str) -> str:
    if reason in BAD_CREDENTIALS:
        return (f"the printer refused the access code ({reason}) — check access_code_file / access_code_env "
                "(the code changes when LAN mode is switched off and on)")
    return f"the printer refused the connection ({reason})"

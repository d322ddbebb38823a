"""Prusa printers through PrusaLink: the v1 API, or the legacy one of older firmware.

PrusaLink keeps no job history and names no user: a job is known by its ``id`` while it runs,
and how it ended by the state after it (FINISHED, STOPPED, ERROR; ATTENTION is a pause, not an
end). The job tracker persists the open job, so an agent restart neither loses nor doubles an end.

A steady poll of the v1 API is one request (``/api/v1/status``), and every second poll a
second one for the material loaded (``/api/printer``: v1 has it nowhere; a change of filament
shows within two intervals). ``/api/v1/job`` is asked only when a new job id appears, for the
file name and its metadata (the job's material: see prusalink_material; ``/api/v1/files/...``
when the job's answer carries no ``meta``). What the printer can do (``/api/v1/info``) is asked
on connecting and when a job begins or ends. The legacy API takes ``/api/printer``
and ``/api/job``. Why our own client and not ``pyprusalink``: see README, "PrusaLink".
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Literal
from urllib.parse import quote

import requests

from agent.printers.base import PrinterSettings, Snapshot
from agent.printers.digest import DigestAuth
from agent.printers.limits import LimitExceeded
from agent.printers.problems import ProblemLog
from agent.printers.prusalink_http import AuthRejected, HTTPStatus, PrusaLinkHTTP
from agent.printers.prusalink_material import capabilities, job_material, material_name, model_name
from agent.printers.prusalink_states import from_legacy, from_v1, job_file, job_id
from agent.printers.values import as_dict
from common.configkit import Invalid, Secret, check_http_url, read_secret
from common.protocol import ACTIVE_STATES
from common.text import one_line
from common.urls import redact

log = logging.getLogger(__name__)

LOADED_EVERY = 2  # polls between two reads of the material loaded (v1)


class PrusaLinkSettings(PrinterSettings, tag="prusalink"):
    url: str
    username: str = "maker"  # Buddy firmware's fixed user; the Pi add-on's is set in its wizard
    password_file: str | None = None
    password_env: str | None = None
    api_key_file: str | None = None  # firmware older than digest auth (X-Api-Key)
    api_key_env: str | None = None
    api: Literal["auto", "v1", "legacy"] = "auto"
    model: str | None = None  # MK4, MK4S, MK3.9, MK3S, MINI, XL, Core One: where the printer cannot say

    def __post_init__(self):
        super().__post_init__()
        check_http_url("url", self.url)
        if (self.password_file or self.password_env) and (self.api_key_file or self.api_key_env):
            raise Invalid("api_key_file", "is set together with a password",
                          "use the password (digest auth) or, for firmware without it, the API key — not both")
        if self.api_key_file or self.api_key_env:
            self.api_key = Secret(read_secret("api_key", self.api_key_file, self.api_key_env))
            self.password = None
        else:
            self.password = Secret(read_secret("password", self.password_file, self.password_env))
            self.api_key = None

    def build(self) -> "PrusaLink":
        digest = DigestAuth(self.username, self.password.reveal()) if self.password else None
        key = self.api_key.reveal() if self.api_key else None
        http = PrusaLinkHTTP(self.url, self.timeout, digest=digest, api_key=key, limits=self.limits)
        return PrusaLink(http, api=self.api, interval=self.interval, model=self.model)


class PrusaLink:
    def __init__(self, http: PrusaLinkHTTP, api: str = "auto", interval: float = 5.0,
                 clock: Callable[[], float] = time.time, model: str | None = None):
        self.http, self.url = http, http.url
        self._wanted, self._interval, self._clock, self._model = api, interval, clock, model
        self._api: str | None = None  # "v1" or "legacy" once connected
        self._version: dict = {}
        self._file: tuple[str | None, str | None] = (None, None)  # (job id, its file name)
        self._material: tuple[str | None, tuple] = (None, ())  # (job id, its material)
        self._info: tuple[object, dict] | None = None  # (the job id it was read at, /api/v1/info)
        self._loaded_now: str | None = None  # the material loaded, as last read
        self._polls = 0
        self._last_active: Snapshot | None = None  # legacy: the last poll of a job under way
        self._problems = ProblemLog(log, f"PrusaLink at {redact(self.url)}")
        self._extras = ProblemLog(log, f"PrusaLink at {redact(self.url)} (file metadata, capabilities)")

    def poll(self) -> Snapshot:
        try:
            if self._api is None:
                self._connect()
            snap = self._read_v1() if self._api == "v1" else self._read_legacy()
        except Exception as exc:  # any failure of the printer's API is data, not a crash
            return self._unreachable(exc)
        self._problems.note(None)
        return snap

    def close(self) -> None:
        self.http.close()

    def _connect(self) -> None:
        version = self._version = self.http.get("/api/version") or {}
        self._api = "v1" if self._wanted == "auto" else self._wanted
        self._info = None  # read again: the printer may have changed (a new nozzle, an MMU)
        log.info("PrusaLink at %s: %s %s", redact(self.url), one_line(version.get("text", "?"), 40),
                 one_line(version.get("firmware") or version.get("server") or "", 40))

    def _read_v1(self) -> Snapshot:
        try:
            status = self.http.get("/api/v1/status")
        except HTTPStatus as exc:
            if exc.status == 404 and self._wanted == "auto":  # firmware before 4.7 (MINI 5.1)
                log.info("PrusaLink at %s has no v1 API: using the legacy API", redact(self.url))
                self._api = "legacy"
                return self._read_legacy()
            raise
        if status is None:
            raise ValueError("/api/v1/status answered no content")
        ts = int(self._clock() * 1000)
        current = job_id(status)
        snap = from_v1(ts, status, self._file_of(current))
        snap.info = self._capabilities(current)
        if current is not None and self._material[0] == current:
            snap.material = self._material[1] or None
        return snap

    def _file_of(self, current: str | None) -> str | None:
        """The file of job ``current``, asked once per job (it does not change while it runs),
        and with it the job's material."""
        if current is not None and self._file[0] != current:
            job = self.http.get("/api/v1/job")  # 204 if the job ended in between
            if job_id({"job": job}) == current:
                self._file = (current, job_file(job))
                self._material = (current, self._job_material(job))
        return self._file[1] if current is not None and self._file[0] == current else None

    def _job_material(self, job: dict) -> tuple:
        """From the file's meta: in the job's answer (the Pi add-on), else in the file's."""
        file = as_dict(job.get("file"))
        meta = file.get("meta")
        if not isinstance(meta, dict):
            meta = self._extra(self._file_path(file), "meta")
        uses = job_material(meta)
        return uses if any(u.type for u in uses) else job_material(meta, self._loaded())

    def _file_path(self, file: dict) -> str | None:
        """``/api/v1/files/<storage>/<path>`` of the job's file: Buddy gives the whole path in
        ``path`` ("/usb/BENCHY~1.GCO"), the spec's example the folder ("/local") beside ``name``."""
        path, name = file.get("path"), file.get("name")
        if not isinstance(path, str) or not isinstance(name, str) or not path.startswith("/"):
            return None
        whole = path if path.rstrip("/").endswith("/" + name) else f"{path.rstrip('/')}/{name}"
        return "/api/v1/files" + quote(whole)

    def _capabilities(self, current: str | None) -> dict:
        """Info's fields. ``/api/v1/info`` is read on connecting and when a job begins or ends;
        the material loaded every LOADED_EVERY polls besides (v1 has it nowhere else), so a
        change of filament shows within two intervals."""
        self._polls += 1
        if self._info is None or self._info[0] != current:
            info = self._extra("/api/v1/info") if self._api == "v1" else None
            # Legacy firmware: the nozzle is in /api/version.
            self._info = (current, info or {"nozzle_diameter": self._version.get("nozzle_diameter")})
            self._loaded()
        elif self._polls % LOADED_EVERY == 0:
            self._loaded()
        return capabilities(self._info[1], model_name(self._version, self._model), self._loaded_now)

    def _loaded(self) -> str | None:
        """The material loaded, as the legacy ``/api/printer`` says (v1 has no such field); the
        last one known when the printer does not answer it."""
        printer = self._extra("/api/printer")
        if printer is not None:
            self._loaded_now = material_name(as_dict(as_dict(printer).get("telemetry")).get("material"))
        return self._loaded_now

    def _extra(self, path: str | None, key: str | None = None):
        """A read besides the state: its failure is logged once and costs only what it would tell.
        The log names the endpoint, never the file (file names are the labs' secrets)."""
        if path is None:
            return None
        try:
            answer = self.http.get(path)
        except Exception as exc:  # the state's poll says whether the printer answers at all
            where = "/api/v1/files/..." if path.startswith("/api/v1/files") else path
            self._extras.note(f"{where}: {self._describe(exc).replace(path, where)}")
            return None
        self._extras.note(None)
        return as_dict(answer).get(key) if key else answer

    def _read_legacy(self) -> Snapshot:
        job = self.http.get("/api/job") or {}
        ts = int(self._clock() * 1000)
        printer = self.http.get("/api/printer") or {}
        snap = from_legacy(ts, printer, job)
        self._judge_legacy_end(snap)
        # No file meta here: the job's material is the one loaded (telemetry.material).
        loaded = material_name(as_dict(printer.get("telemetry")).get("material"))
        snap.info = capabilities({"nozzle_diameter": self._version.get("nozzle_diameter")},
                                 model_name(self._version, self._model), loaded)
        if snap.state in ACTIVE_STATES:
            snap.material = job_material(None, loaded) or None
        return snap

    def _judge_legacy_end(self, snap: Snapshot) -> None:
        """Legacy firmware says "Operational" after a finished and after a cancelled job alike.
        Judge by the last poll of the job: cancelling, or not near its end, is a cancel."""
        if snap.state in ACTIVE_STATES:
            self._last_active = snap
            return
        last, self._last_active = self._last_active, None
        if last is None or snap.ended is not None or snap.state != "idle":
            return
        near_end = (last.progress or 0) >= 99.0 or (
            last.time_left is not None and last.time_left <= 2 * self._interval)
        snap.ended = "done" if near_end and last.state != "cancelling" else "cancelled"

    def _unreachable(self, exc: Exception) -> Snapshot:
        problem = self._describe(exc)
        self._problems.note(problem)
        self._api = None  # on its return, ask again what it speaks (firmware may have changed)
        return Snapshot(ts=int(self._clock() * 1000), state="unreachable", state_text=problem, error=problem)

    def _describe(self, exc: Exception) -> str:
        if isinstance(exc, LimitExceeded):
            return str(exc)
        if isinstance(exc, requests.Timeout):
            return "no answer within the timeout"
        if isinstance(exc, requests.ConnectionError):
            return "connection refused or lost"
        if isinstance(exc, AuthRejected):
            which = "password_file" if self.http.uses_digest else "api_key_file"
            return f"credentials rejected (HTTP {exc.args[0]}): check username and {which}"
        if isinstance(exc, HTTPStatus):
            return str(exc)
        if isinstance(exc, (ValueError, AttributeError, TypeError)):
            return f"unreadable answer ({type(exc).__name__})"
        return f"{type(exc).__name__}: {str(exc)[:200]}"

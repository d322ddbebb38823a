"""Prusa printers through PrusaLink: the v1 API, or the legacy one of older firmware.

PrusaLink keeps no job history and names no user: a job is known by its ``id`` while it runs,
and how it ended by the state after it (FINISHED, STOPPED, ERROR; ATTENTION is a pause, not an
end). The job tracker persists the open job, so an agent restart neither loses nor doubles an end.

A steady poll of the v1 API is one request (``/api/v1/status``); ``/api/v1/job`` is asked only
when a new job id appears, for the file name. The legacy API takes ``/api/printer`` and
``/api/job``. Why our own client and not ``pyprusalink``: see README, "PrusaLink".
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Literal

import requests

from agent.printers.base import PrinterSettings, Snapshot
from agent.printers.digest import DigestAuth
from agent.printers.limits import LimitExceeded
from agent.printers.problems import ProblemLog
from agent.printers.prusalink_http import AuthRejected, HTTPStatus, PrusaLinkHTTP
from agent.printers.prusalink_states import from_legacy, from_v1, job_file, job_id
from common.configkit import Invalid, Secret, check_http_url, read_secret
from common.protocol import ACTIVE_STATES
from common.text import one_line
from common.urls import redact

log = logging.getLogger(__name__)


class PrusaLinkSettings(PrinterSettings, tag="prusalink"):
    url: str
    username: str = "maker"  # Buddy firmware's fixed user; the Pi add-on's is set in its wizard
    password_file: str | None = None
    password_env: str | None = None
    api_key_file: str | None = None  # firmware older than digest auth (X-Api-Key)
    api_key_env: str | None = None
    api: Literal["auto", "v1", "legacy"] = "auto"

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
        return PrusaLink(http, api=self.api, interval=self.interval)


class PrusaLink:
    def __init__(self, http: PrusaLinkHTTP, api: str = "auto", interval: float = 5.0,
                 clock: Callable[[], float] = time.time):
        self.http, self.url = http, http.url
        self._wanted, self._interval, self._clock = api, interval, clock
        self._api: str | None = None  # "v1" or "legacy" once connected
        self._file: tuple[str | None, str | None] = (None, None)  # (job id, its file name)
        self._last_active: Snapshot | None = None  # legacy: the last poll of a job under way
        self._problems = ProblemLog(log, f"PrusaLink at {redact(self.url)}")

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
        version = self.http.get("/api/version") or {}
        self._api = "v1" if self._wanted == "auto" else self._wanted
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
        return from_v1(ts, status, self._file_of(job_id(status)))

    def _file_of(self, current: str | None) -> str | None:
        """The file of job ``current``, asked once per job (it does not change while it runs)."""
        if current is not None and self._file[0] != current:
            job = self.http.get("/api/v1/job")  # 204 if the job ended in between
            if job_id({"job": job}) == current:
                self._file = (current, job_file(job))
        return self._file[1] if current is not None and self._file[0] == current else None

    def _read_legacy(self) -> Snapshot:
        job = self.http.get("/api/job") or {}
        ts = int(self._clock() * 1000)
        snap = from_legacy(ts, self.http.get("/api/printer") or {}, job)
        self._judge_legacy_end(snap)
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

"""OctoPrint's REST API through ``octorest``, with the timeouts and error handling it lacks."""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import Any, Callable
from urllib.parse import urljoin

import requests

from agent.printers.base import PrinterSettings, Snapshot
from agent.printers.http_bounds import BoundedSession
from agent.printers.limits import DEFAULT, LimitExceeded, Limits
from agent.printers.octoprint_ends import EndJudge
from agent.printers.octoprint_profile import PROFILE_EVERY, ProfileReader, material_of
from agent.printers.octoprint_states import normalise
from agent.printers.problems import ProblemLog
from agent.printers.values import as_dict as _dict, clamp as _clamp, number as _number, text as _text
from common.configkit import Secret, check_http_url, read_secret
from common.urls import redact

log = logging.getLogger(__name__)


class OctoPrintSettings(PrinterSettings, tag="octoprint"):
    url: str
    api_key_file: str | None = None
    api_key_env: str | None = None

    def __post_init__(self):
        super().__post_init__()
        check_http_url("url", self.url)
        self.api_key = Secret(read_secret("api_key", self.api_key_file, self.api_key_env))

    def build(self) -> "OctoPrint":
        return OctoPrint(self.url, self.api_key, timeout=self.timeout,
                         client_factory=partial(_default_client_factory, limits=self.limits))


def _default_client_factory(url: str, api_key: str, timeout: float, limits: Limits = DEFAULT):
    import octorest  # imported late: ~70 ms the agent only pays once

    # octorest sets no timeout and reads replies whole: the bounded session adds a deadline per
    # request, a size cap, and keeps the API key off redirects to other hosts.
    return octorest.OctoRest(url=url, apikey=api_key, session=BoundedSession(timeout, limits))


class OctoPrint:
    def __init__(
        self,
        url: str,
        api_key: Secret,
        timeout: float = 3.0,
        client_factory: Callable[[str, str, float], Any] = _default_client_factory,
        clock: Callable[[], float] = time.time,
        profile_every: float = PROFILE_EVERY,
    ):
        self.url = url
        self._api_key = api_key
        self._timeout = timeout
        self._factory = client_factory
        self._clock = clock
        self._client = None
        self._problems = ProblemLog(log, f"OctoPrint at {redact(self.url)}")
        self._ends = EndJudge()
        self._profile = ProfileReader(clock, profile_every)
        self._no_last_error = False  # /api/printer/error answered 404 or 403 (logged once)

    def poll(self) -> Snapshot:
        try:
            if self._client is None:
                self._client = self._factory(self.url, self._api_key.reveal(), self._timeout)
            snap = self._read(self._client)
        except Exception as exc:  # any failure of the printer's API is data, not a crash
            return self._unreachable(exc)
        self._problems.note(None)
        return snap

    def close(self) -> None:
        if self._client is not None:
            self._client.session.close()
            self._client = None

    def _read(self, client) -> Snapshot:
        job = client.job_info()
        if not isinstance(job, dict):
            raise ValueError("/api/job did not answer a JSON object")
        ts = int(self._clock() * 1000)
        text = _text(job.get("state")) or "Unknown"
        state = normalise(text)
        snap = Snapshot(ts=ts, state=state, state_text=text, error=_text(job.get("error")) or None)
        _fill_job(snap, job)
        snap.material = material_of(_dict(job.get("job")))
        snap.info = self._profile.current(client, connected=state not in ("offline", "error"))
        if state not in ("offline", "error"):
            # /api/printer answers 409 while disconnected; only ask when connected.
            _fill_temps(snap, _printer_or_empty(client))
        record = _file_record(client, job) if self._ends.needs_record(snap) else None
        self._ends.judge(snap, record, last_error=partial(self._last_error, client))
        return snap

    def _last_error(self, client) -> dict | None:
        """OctoPrint's last error (``GET /api/printer/error``, OctoPrint's ``ErrorInformation``:
        error, reason, consequence), or None where it cannot tell."""
        try:
            reply = client.session.get(urljoin(client.url, "/api/printer/error"))
            if reply.status_code in (403, 404):  # older than the endpoint, or a key without Status
                if not self._no_last_error:
                    log.info("%s answers %d to /api/printer/error: a cancel after a firmware error "
                             "counts as cancelled", redact(self.url), reply.status_code)
                self._no_last_error = True
                return None
            reply.raise_for_status()
            return reply.json()
        except Exception as exc:  # no answer is no evidence: the cancel stays a cancel
            log.debug("no last error from OctoPrint: %s", type(exc).__name__)
            return None

    def _unreachable(self, exc: Exception) -> Snapshot:
        problem = _describe(exc)
        self._problems.note(problem)
        self._profile.forget()
        if _is_auth_problem(problem):
            self._client = None  # the key may be fixed without restarting the agent
        snap = Snapshot(ts=int(self._clock() * 1000), state="unreachable", state_text=problem, error=problem)
        self._ends.judge(snap)
        return snap



def _printer_or_empty(client) -> dict:
    try:
        return client.printer(exclude=["sd"])
    except RuntimeError as exc:
        if "(409)" in str(exc):  # disconnected between our two requests
            return {}
        raise


def _file_record(client, data: dict) -> dict | None:
    """The selected file's entry in ``/api/files`` (its print statistics), or None."""
    file = _dict(_dict(data.get("job")).get("file"))
    origin, path = _text(file.get("origin")), _text(file.get("path"))
    if not origin or not path:
        return None
    try:
        record = client.files_info(origin, path)
    except Exception as exc:  # no statistics is no evidence, not a lost printer
        log.debug("no statistics for the selected file: %s", type(exc).__name__)
        return None
    return record if isinstance(record, dict) else None


def _fill_job(snap: Snapshot, data: dict) -> None:
    job = _dict(data.get("job"))
    progress = _dict(data.get("progress"))
    file = _dict(job.get("file"))
    snap.file = _text(file.get("display") or file.get("name")) or None
    snap.user = _text(job.get("user")) or None
    snap.progress = _clamp(_number(progress.get("completion")), 0.0, 100.0)
    snap.print_time = _number(progress.get("printTime"))
    snap.time_left = _number(progress.get("printTimeLeft"))
    filament = _dict(job.get("filament"))
    lengths = [_number(t.get("length")) for t in filament.values() if isinstance(t, dict)]
    lengths = [x for x in lengths if x is not None]
    snap.filament_mm = round(sum(lengths), 2) if lengths else None


def _fill_temps(snap: Snapshot, data: dict) -> None:
    temps = _dict(_dict(data).get("temperature"))
    for name, reading in temps.items():
        if name == "history" or not isinstance(reading, dict):
            continue
        if name.startswith("tool") or name in ("bed", "chamber"):
            snap.temps[name] = (_number(reading.get("actual")), _number(reading.get("target")))


def _describe(exc: Exception) -> str:
    if isinstance(exc, LimitExceeded):
        return str(exc)
    if isinstance(exc, requests.Timeout):
        return "no answer within the timeout"
    if isinstance(exc, requests.ConnectionError):
        return "connection refused or lost"
    text = str(exc)
    if "(403)" in text or "(401)" in text:
        return "API key rejected (403): check api_key_file"
    if isinstance(exc, RuntimeError) and "Reply for" in text:
        code = text.rsplit("(", 1)[-1].rstrip(")")
        return f"HTTP {code} from OctoPrint"
    if isinstance(exc, (ValueError, AttributeError, TypeError)):
        return f"unreadable answer ({type(exc).__name__})"
    return f"{type(exc).__name__}: {text[:200]}"


def _is_auth_problem(problem: str) -> bool:
    return problem.startswith("API key rejected")

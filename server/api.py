"""The collector's small HTTP API: fleet status, health and Prometheus metrics.

The status page and every ``/api/`` route need a token (server/access.py: an organisation's
shows its printers in full and the others' state only; the network's, state only), sent as
``Authorization: Bearer <token>`` or as the cookie ``POST /login`` sets; without one they answer
401, unless ``[http] public = "status"``. ``/healthz``, ``/metrics`` (no printer, file or user in
either) and ``/login`` need none. Every answer carries ``X-Content-Type-Options: nosniff`` and a
Content-Security-Policy (a page may run only its own inline script and style, by hash, and
fetch or post only to here). A request whose ``Host`` is not in ``allowed_hosts`` is refused
before anything else, so a web page whose DNS name is rebound to 127.0.0.1 cannot read the API
through a browser on this machine, with or without its cookie.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Callable
from urllib.parse import parse_qs

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server.access import COOKIE, Access, Viewer
from server.directory import Directory
from server.directory_query import BadQuery, from_params
from server.metrics import Metrics

log = logging.getLogger(__name__)

Answer = tuple[int, str, bytes]  # status, content type, body; or with a 4th item: extra headers


@dataclass(frozen=True)
class Request:
    """What a route may know of the request: who asks, and what they may see."""
    viewer: Viewer
    access: Access
    query: str = ""  # the URL's query string


Route = Callable[[Request], Answer]
OPEN_PATHS = ("/healthz", "/metrics", "/login")
MAX_FORM_BYTES = 4096
COOKIE_MAX_AGE = 400 * 86400  # browsers cap cookies at 400 days; revoking the token ends it sooner
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
COMMON_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def page_policy(page: bytes) -> str:
    """The status page's CSP: its own inline <script> and <style> by hash, fetches to here only."""
    def hashes(tag: str) -> str:
        blocks = re.findall(rb"<%s>(.*?)</%s>" % (tag.encode(), tag.encode()), page, re.S)
        return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(b).digest()).decode()}'" for b in blocks) or "'none'"

    form = "'self'" if b"<form" in page else "'none'"
    return (f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; "
            f"connect-src 'self'; img-src 'self'; base-uri 'none'; form-action {form}; frame-ancestors 'none'")


def host_name(header: str) -> str:
    """The host of a Host header, without port, brackets or a final dot, in lower case."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    host = header.rsplit(":", 1)[0] if header.count(":") == 1 else header
    return host.rstrip(".")


class Api:
    def __init__(self, host: str, port: int, fleet, health: Callable[[], dict], metrics: Metrics,
                 allowed_hosts: tuple[str, ...] | list[str] = LOOPBACK_NAMES, *, access: Access,
                 directory: Directory | None = None):
        self.fleet = fleet
        self.metrics = metrics
        self.collector_health = health
        self.access = access
        self.allowed = {host_name(h) for h in allowed_hosts}
        web = files("server.web")  # shipped inside the package
        self.page, self.login_page = web.joinpath("status.html").read_bytes(), web.joinpath("login.html").read_bytes()
        self.directory_page = web.joinpath("directory.html").read_bytes()
        self.policies = {page: page_policy(page) for page in (self.page, self.login_page, self.directory_page)}
        self.directory = directory
        self.routes: dict[str, Route] = {
            "/": self._status_page,
            "/api/fleet": self._fleet,
            "/healthz": self._healthz,
            "/metrics": self._metrics,
            "/login": self._login_form,
        }
        if directory is not None:  # the regional directory (docs/directory.md)
            self.routes.update({"/directory": self._directory_page, "/api/directory": self._directory})
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="http-api", daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> None:
        self._thread.start()
        log.info("HTTP API on http://%s:%d/ (tokens from %s; public: %s)", *self.server.server_address[:2],
                 self.access.tokens.path, self.access.public)

    stop_stage = "last"  # /healthz answers until the writer's last flush (server/subsystems.py)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def health(self) -> dict:
        return {"port": self.port}

    def host_allowed(self, header: str | None) -> bool:
        return "*" in self.allowed or (header is not None and host_name(header) in self.allowed)

    def answer(self, path: str, headers, method: str = "GET", body: bytes = b"") -> Answer:
        if not self.host_allowed(headers.get("Host")):  # first: a rebound name learns nothing else
            return 403, "text/plain", b"host not allowed: add it to [http] allowed_hosts\n"
        path, _, query = path.partition("?")
        if method == "POST":
            if path != "/login":
                return 405, "text/plain", b"method not allowed\n"
            return self._login(body, headers.get("X-Forwarded-Proto", "").lower() == "https")
        route = self.routes.get(path)
        if route is None:
            return 404, "text/plain", b"not found\n"
        if path in OPEN_PATHS:
            return route(None)
        viewer = self.access.viewer(headers.get("Authorization"), headers.get("Cookie"))
        if viewer is None:
            return self._unauthorised(path)
        return route(Request(viewer, self.access, query))

    def _unauthorised(self, path: str) -> Answer:
        if path.startswith("/api/"):
            return 401, "application/json", b'{"error": "a token is needed: Authorization: Bearer <token>"}', \
                {"WWW-Authenticate": 'Bearer realm="printfarm"'}
        return 401, "text/html; charset=utf-8", self.login_page, {"WWW-Authenticate": 'Bearer realm="printfarm"'}

    def _login_form(self, _request):
        return 200, "text/html; charset=utf-8", self.login_page

    def _login(self, body: bytes, tls: bool = False) -> Answer:
        """The login form's POST: a known token becomes an HttpOnly, SameSite=Lax cookie (Lax: a
        link to the page from elsewhere still shows it; every GET here only reads), Secure when
        a TLS proxy says it served the request."""
        if len(body) > MAX_FORM_BYTES:
            return 413, "text/plain", b"too large\n"
        token = (parse_qs(body.decode("utf-8", "replace")).get("token") or [""])[0].strip()
        if not token or self.access.tokens.scope(token) is None:
            return 401, "text/html; charset=utf-8", self.login_page
        cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={COOKIE_MAX_AGE}" + ("; Secure" if tls else "")
        return 303, "text/plain", b"signed in\n", {"Location": "./", "Set-Cookie": cookie}

    def _status_page(self, _request):
        return 200, "text/html; charset=utf-8", self.page

    def _fleet(self, request: Request):
        return 200, "application/json", json.dumps(request.access.fleet(self.fleet.snapshot(), request.viewer)).encode()

    def _directory_page(self, _request):
        return 200, "text/html; charset=utf-8", self.directory_page

    def _directory(self, request: Request):
        """The regional directory (server/directory.py): every token sees every published printer's
        capabilities; its own organisation's printers with live state whatever their policy."""
        try:
            query = from_params({k: v[-1] for k, v in parse_qs(request.query, keep_blank_values=True).items()})
        except BadQuery as exc:
            return 400, "application/json", json.dumps({"error": str(exc)}).encode()
        own = request.viewer.scope if request.viewer.scope in request.access.site_orgs.values() else None
        printers = self.directory.answer(query, int(time.time() * 1000), own)
        return 200, "application/json", json.dumps({"printers": printers}).encode()

    def _healthz(self, _request):
        report = self.collector_health()
        return (200 if report.get("ok") else 503), "application/json", json.dumps(report).encode()

    def _metrics(self, _request):
        return 200, CONTENT_TYPE_LATEST, generate_latest(self.metrics.registry)

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self._send(api.answer(self.path, self.headers))

            def do_POST(self):
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if not 0 <= length <= MAX_FORM_BYTES:
                    self._send((413, "text/plain", b"too large\n"))
                    return
                self._send(api.answer(self.path, self.headers, "POST", self.rfile.read(length)))

            def _send(self, answer: Answer) -> None:
                code, ctype, body, *extra = answer
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                policy = next((pol for page, pol in api.policies.items() if body is page), API_POLICY)
                for name, value in {**COMMON_HEADERS, "Content-Security-Policy": policy, **(extra[0] if extra else {})}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt, *args):  # keep request logs out of the service log
                log.debug(fmt, *args)

        return Handler

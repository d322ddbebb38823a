"""The collector's small HTTP API: fleet status, health and Prometheus metrics.

It has no authentication: keep it on loopback (the default) or behind a reverse proxy that
authenticates. Every answer carries ``X-Content-Type-Options: nosniff`` and a Content-Security-
Policy (the status page may run only its own inline script and style, by hash, and fetch only
from here). A request whose ``Host`` is not in ``allowed_hosts`` is refused, so a web page whose
DNS name is rebound to 127.0.0.1 cannot read the API through a browser on this machine.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server.metrics import Metrics

log = logging.getLogger(__name__)

Route = Callable[[], tuple[int, str, bytes]]
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
COMMON_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def page_policy(page: bytes) -> str:
    """The status page's CSP: its own inline <script> and <style> by hash, fetches to here only."""
    def hashes(tag: str) -> str:
        blocks = re.findall(rb"<%s>(.*?)</%s>" % (tag.encode(), tag.encode()), page, re.S)
        return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(b).digest()).decode()}'" for b in blocks)

    return (f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; "
            "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def host_name(header: str) -> str:
    """The host of a Host header, without port, brackets or a final dot, in lower case."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    host = header.rsplit(":", 1)[0] if header.count(":") == 1 else header
    return host.rstrip(".")


class Api:
    def __init__(self, host: str, port: int, fleet, health: Callable[[], dict], metrics: Metrics,
                 allowed_hosts: tuple[str, ...] | list[str] = LOOPBACK_NAMES):
        self.fleet = fleet
        self.metrics = metrics
        self.collector_health = health
        self.allowed = {host_name(h) for h in allowed_hosts}
        self.page = files("server.web").joinpath("status.html").read_bytes()  # shipped inside the package
        self.page_policy = page_policy(self.page)
        self.routes: dict[str, Route] = {
            "/": self._status_page,
            "/api/fleet": self._fleet,
            "/healthz": self._healthz,
            "/metrics": self._metrics,
        }
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="http-api", daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> None:
        self._thread.start()
        log.info("HTTP API on http://%s:%d/ (no authentication: keep it on loopback or behind a proxy that "
                 "authenticates)", *self.server.server_address[:2])

    stop_stage = "last"  # /healthz answers until the writer's last flush (server/subsystems.py)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def health(self) -> dict:
        return {"port": self.port}

    def host_allowed(self, header: str | None) -> bool:
        return "*" in self.allowed or (header is not None and host_name(header) in self.allowed)

    def answer(self, path: str, host: str | None) -> tuple[int, str, bytes]:
        if not self.host_allowed(host):
            return 403, "text/plain", b"host not allowed: add it to [http] allowed_hosts\n"
        route = self.routes.get(path.split("?", 1)[0])
        return (404, "text/plain", b"not found\n") if route is None else route()

    def _status_page(self):
        return 200, "text/html; charset=utf-8", self.page

    def _fleet(self):
        return 200, "application/json", json.dumps(self.fleet.snapshot()).encode()

    def _healthz(self):
        report = self.collector_health()
        return (200 if report.get("ok") else 503), "application/json", json.dumps(report).encode()

    def _metrics(self):
        return 200, CONTENT_TYPE_LATEST, generate_latest(self.metrics.registry)

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                code, ctype, body = api.answer(self.path, self.headers.get("Host"))
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                policy = api.page_policy if ctype.startswith("text/html") else API_POLICY
                for name, value in {**COMMON_HEADERS, "Content-Security-Policy": policy}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt, *args):  # keep request logs out of the service log
                log.debug(fmt, *args)

        return Handler

"""The collector's small HTTP API: fleet status, health and Prometheus metrics."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server.metrics import Metrics

log = logging.getLogger(__name__)

Route = Callable[[], tuple[int, str, bytes]]


class Api:
    def __init__(self, host: str, port: int, fleet, health: Callable[[], dict], metrics: Metrics):
        self.fleet = fleet
        self.metrics = metrics
        self.health = health
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
        log.info("HTTP API on http://%s:%d/", *self.server.server_address[:2])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _status_page(self):
        from importlib.resources import files  # the page ships inside the package (server/web)

        return 200, "text/html; charset=utf-8", files("server.web").joinpath("status.html").read_bytes()

    def _fleet(self):
        return 200, "application/json", json.dumps(self.fleet.snapshot()).encode()

    def _healthz(self):
        report = self.health()
        return (200 if report.get("ok") else 503), "application/json", json.dumps(report).encode()

    def _metrics(self):
        return 200, CONTENT_TYPE_LATEST, generate_latest(self.metrics.registry)

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                route = api.routes.get(self.path.split("?", 1)[0])
                if route is None:
                    code, ctype, body = 404, "text/plain", b"not found\n"
                else:
                    code, ctype, body = route()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt, *args):  # keep request logs out of the service log
                log.debug(fmt, *args)

        return Handler

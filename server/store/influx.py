"""Batched writes to InfluxDB's v1 HTTP API (/write, /query).

InfluxDB 1.x serves this API natively; 2.x and 3.x serve it as their v1
compatibility API (a token in ``Authorization: Token ...``), so one client reaches all.
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import threading
import time
from urllib.parse import urlencode, urlparse

import urllib3

from server import metrics

log = logging.getLogger(__name__)


class InfluxError(Exception):
    pass


class InfluxHTTP:
    """A small keep-alive client for /ping, /write and /query."""

    def __init__(self, url: str, database: str, username: str | None = None, password=None, token=None,
                 timeout: float = 10.0):
        parsed = urlparse(url)
        self.base = url.rstrip("/")
        self.database = database
        self.pool = urllib3.PoolManager(num_pools=2, maxsize=2, retries=False,
                                        timeout=urllib3.Timeout(connect=min(timeout, 3.0), read=timeout))
        self.headers = {}
        if token is not None:
            self.headers["Authorization"] = f"Token {token.reveal()}"
        elif username and password is not None:
            raw = f"{username}:{password.reveal()}".encode()
            self.headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        self.host = parsed.hostname

    def ping(self) -> bool:
        try:
            return self.pool.request("GET", f"{self.base}/ping", headers=self.headers).status == 204
        except urllib3.exceptions.HTTPError:
            return False

    def write(self, body: bytes, precision: str = "ms") -> None:
        query = urlencode({"db": self.database, "precision": precision})
        try:
            resp = self.pool.request("POST", f"{self.base}/write?{query}", body=body,
                                     headers={**self.headers, "Content-Type": "text/plain"})
        except urllib3.exceptions.HTTPError as exc:
            raise InfluxError(f"InfluxDB unreachable: {type(exc).__name__}") from None
        if resp.status >= 500 or resp.status in (401, 403, 404, 429):
            raise InfluxError(f"InfluxDB /write answered {resp.status}: {resp.data[:200]!r}")
        if resp.status == 400:
            # Bad points: retrying cannot help; InfluxDB wrote the good ones in the batch.
            log.error("InfluxDB rejected points: %s", resp.data[:300].decode(errors="replace"))
            metrics.counter_inc("influx_points_rejected_batches")

    def query(self, q: str, epoch: str = "ms", db: str | None = None) -> list[dict]:
        params = {"q": q, "db": db or self.database, "epoch": epoch}
        try:
            resp = self.pool.request("POST", f"{self.base}/query", fields=params, headers=self.headers,
                                     encode_multipart=False)
        except urllib3.exceptions.HTTPError as exc:
            raise InfluxError(f"InfluxDB unreachable: {type(exc).__name__}") from None
        if resp.status != 200:
            raise InfluxError(f"InfluxDB /query answered {resp.status}: {resp.data[:200]!r}")
        data = json.loads(resp.data)
        return data.get("results", [])

    def create_database(self) -> None:
        self.query(f'CREATE DATABASE "{self.database}"')


def rows(results: list[dict]) -> list[dict]:
    """Flatten a /query answer to rows: one dict per value row, with series tags merged in."""
    out = []
    for result in results:
        if "error" in result:
            raise InfluxError(result["error"])
        for series in result.get("series", []):
            tags = series.get("tags", {})
            for values in series.get("values", []):
                row = dict(zip(series["columns"], values))
                row.update(tags)
                if "name" in series:
                    row.setdefault("_measurement", series["name"])
                out.append(row)
    return out


class BatchWriter:
    """Collects lines from the ingest thread and writes them in batches on its own thread.

    The queue is bounded: when InfluxDB cannot keep up, ``put`` blocks, which stops the
    MQTT loop reading, and the broker holds the rest (backpressure, not memory growth).
    """

    def __init__(self, client: InfluxHTTP, batch_size: int = 5000, flush_interval: float = 1.0,
                 max_queue: int = 50_000, retry_max: float = 30.0):
        self.client = client
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self.retry_max = retry_max
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="influx-writer", daemon=True)
        self._last_error: str | None = None
        self.written = 0

    def start(self) -> None:
        self._thread.start()

    def put(self, line: str) -> None:
        self.queue.put(line)

    def stop(self, timeout: float = 30.0) -> None:
        """Flush everything queued, then stop."""
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not (self._stop.is_set() and self.queue.empty()):
            batch = self._collect()
            if batch:
                self._write_until_done(batch)

    def _collect(self) -> list[str]:
        batch: list[str] = []
        deadline = time.monotonic() + self.flush_interval
        while len(batch) < self.batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self._stop.is_set() and self.queue.empty()):
                break
            try:
                batch.append(self.queue.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    def _write_until_done(self, batch: list[str]) -> None:
        body = ("\n".join(batch)).encode()
        delay = 0.5
        while True:
            started = time.perf_counter()
            try:
                self.client.write(body)
            except InfluxError as exc:
                self._note(str(exc))
                metrics.counter_inc("influx_write_errors")
                time.sleep(delay)
                delay = min(delay * 2, self.retry_max)
                continue
            metrics.observe_write(time.perf_counter() - started, len(batch))
            self.written += len(batch)
            self._note(None)
            return

    def _note(self, problem: str | None) -> None:
        if problem != self._last_error:
            if problem:
                log.error("%s; retrying", problem)
            elif self._last_error:
                log.info("InfluxDB writes succeed again")
            self._last_error = problem

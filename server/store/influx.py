"""Batched writes to InfluxDB's v1 HTTP API (/write, /query).

InfluxDB 1.x serves this API natively; 2.x and 3.x serve it as their v1
compatibility API (a token in ``Authorization: Token ...``), so one client reaches all.
"""

from __future__ import annotations

import base64
import copy
import logging
import queue
import threading
import time
from typing import Callable
from urllib.parse import urlencode, urlparse

import msgspec
import urllib3

from common.text import one_line
from common.urls import redact
from server.metrics import Metrics
from server.store.spool import Spool
from server.store.wire import WriteConnection

log = logging.getLogger(__name__)


class InfluxError(Exception):
    pass


class TooLarge(InfluxError):
    """InfluxDB refused the body as larger than its ``max-body-size`` (HTTP 413)."""


class InfluxHTTP:
    """A small keep-alive client for /ping, /write and /query."""

    def __init__(self, url: str, database: str, username: str | None = None, password=None, token=None,
                 timeout: float = 10.0, metrics: Metrics | None = None):
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
        # /write on a connection of our own where the URL is plain http (server/store/wire.py);
        # another thread writing meanwhile (the purge) goes through the pool.
        self._wire = (WriteConnection(parsed.hostname, parsed.port or 80, min(timeout, 3.0), timeout, self.headers)
                      if parsed.scheme == "http" and not parsed.path.strip("/") else None)
        self._wire_lock = threading.Lock()
        self.metrics = metrics or Metrics()
        self.create_missing = False  # 1.x: create the database when a write finds it missing
        # How a missing database is made (its retention policies, its reader's grant): by default
        # CREATE DATABASE alone (server/store/tenants.py gives the rest).
        self.make_database: Callable[[str], None] = self.create_database

    def ping(self) -> bool:
        try:
            return self.pool.request("GET", f"{self.base}/ping", headers=self.headers).status == 204
        except urllib3.exceptions.HTTPError:
            return False

    def write(self, body: bytes, precision: str = "ms", rp: str | None = None, db: str | None = None) -> None:
        """Into ``db`` (default: this client's database)."""
        params = {"db": db or self.database, "precision": precision}
        if rp is not None:  # a retention policy other than the database's default
            params["rp"] = rp
        query = urlencode(params)
        resp = self._post_write(query, body)
        if 200 <= resp.status < 300:
            return  # only a 2xx means written
        if resp.status in (400, 422):
            # Bad points (2.x: 422 for points it cannot take): retrying cannot help; InfluxDB
            # wrote the good ones in the batch.
            log.error("InfluxDB rejected points: %s", one_line(resp.data[:300].decode(errors="replace")))
            self.metrics.inc("influx_points_rejected_batches")
            return
        raise self._failure(resp, db or self.database)

    def _post_write(self, query: str, body: bytes):
        if self._wire is not None and self._wire_lock.acquire(blocking=False):
            try:
                return self._wire.post(f"/write?{query}", body)
            except OSError as exc:
                raise InfluxError(f"InfluxDB unreachable: {type(exc).__name__}") from None
            finally:
                self._wire_lock.release()
        try:
            return self.pool.request("POST", f"{self.base}/write?{query}", body=body,
                                     headers={**self.headers, "Content-Type": "text/plain"})
        except urllib3.exceptions.HTTPError as exc:
            raise InfluxError(f"InfluxDB unreachable: {type(exc).__name__}") from None

    def _failure(self, resp, db: str) -> InfluxError:
        if resp.status == 413:
            return TooLarge("InfluxDB /write answered 413: the body is over its max-body-size")
        if resp.status == 404 and self.create_missing and b"database not found" in resp.data:
            log.warning("database %r is missing; creating it", db)
            try:
                self.make_database(db)
            except InfluxError as exc:
                return InfluxError(f"database {db!r} is missing, and could not be created: {exc}")
            return InfluxError(f"database {db!r} was missing (created it)")
        if 300 <= resp.status < 400:
            where = redact(resp.headers.get("location") or "")  # urllib3: any case; wire: lower case
            return InfluxError(f"InfluxDB /write answered {resp.status}, a redirect to {where or 'nowhere'}: "
                               f"set [influx] url to the address it names")
        return InfluxError(f"InfluxDB /write answered {resp.status}: {resp.data[:200]!r}")

    def query(self, q: str, epoch: str = "ms", db: str | None = None) -> list[dict]:
        params = {"q": q, "db": db or self.database, "epoch": epoch}
        try:
            resp = self.pool.request("POST", f"{self.base}/query", fields=params, headers=self.headers,
                                     encode_multipart=False)
        except urllib3.exceptions.HTTPError as exc:
            raise InfluxError(f"InfluxDB unreachable: {type(exc).__name__}") from None
        if resp.status != 200:
            raise InfluxError(f"InfluxDB /query answered {resp.status}: {resp.data[:200]!r}")
        return _results(resp.data)

    def create_database(self, db: str | None = None) -> None:
        found = self.query(f'CREATE DATABASE "{db or self.database}"')
        error = next((r["error"] for r in found if "error" in r), None)
        if error:
            raise InfluxError(f"CREATE DATABASE: {error}")

    def clone(self) -> "InfluxHTTP":
        """The same server and credentials on connections of its own: a forked process must not
        share its parent's sockets."""
        twin = copy.copy(self)
        twin.reconnect()
        return twin

    def reconnect(self) -> None:
        """New connections, none shared with a copy of this client."""
        self.pool = urllib3.PoolManager(num_pools=2, maxsize=2, retries=False,
                                        timeout=self.pool.connection_pool_kw["timeout"])
        if self._wire is not None:
            self._wire = WriteConnection(*self._wire.address, self._wire.connect_timeout, self._wire.read_timeout,
                                         self.headers)
            self._wire_lock = threading.Lock()


def client_for(cfg) -> InfluxHTTP:
    """An InfluxDB client from the server config's [influx] table, for the batch commands
    (report, rollup, purge-users): their queries span months, so it waits at least 60 s."""
    ic = cfg.influx
    return InfluxHTTP(ic.url, ic.database, ic.username, ic.password, ic.token, max(ic.timeout, 60.0))


def _results(body: bytes) -> list[dict]:
    """The statement results of a /query answer (msgspec: the same dicts, lists and numbers as the
    json module, a little faster: a year's report reads ~20 MB of answers, 0.13 s against 0.18 s)."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise InfluxError(f"InfluxDB /query answered with malformed JSON ({exc}): {body[:200]!r}") from None
    if not isinstance(data, dict):
        raise InfluxError(f"InfluxDB /query answered {type(data).__name__}, not an object: {body[:200]!r}")
    return data.get("results", [])


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


class Chunk:
    """Lines handed from the ingest thread to the writer, and the tokens of the MQTT
    deliveries to acknowledge once those lines are durable (server/mqtt/acks.py)."""

    __slots__ = ("lines", "tokens", "more")

    def __init__(self, lines: list[str], tokens: list, more: dict[str, list[str]] | None = None):
        # ``lines`` go to the client's database, ``more`` to others by name (docs/organisations.md)
        self.lines, self.tokens, self.more = lines, tokens, more

    def parts(self) -> list[tuple[str | None, list[str]]]:
        """(database or None for the client's own, lines) of each database with lines."""
        out = [(None, self.lines)] if self.lines else []
        if self.more:
            out += [(db, lines) for db, lines in self.more.items() if lines]
        return out

    def size(self) -> int:
        return len(self.lines) + (sum(map(len, self.more.values())) if self.more else 0)


class BatchWriter:
    """Collects lines from the ingest thread and writes them in batches on its own thread.

    Lines gather in a buffer; a full buffer (``batch_size``), an old one (``flush_interval``)
    or ``flush()`` moves it as one chunk onto a bounded queue, so the hot path pays a list
    append per line, not a queue operation. When the queue is full, the producer blocks:
    the MQTT loop stops reading and the broker holds the rest (backpressure, not memory).

    A buffer is also handed off once it holds ``max_batch_bytes``, below InfluxDB's body limit
    (25 MB by default); a body it still refuses as too large (413) is split in halves, down to
    single lines, and a single line it refuses is logged and counted, never retried for ever.

    A chunk is *durable* once InfluxDB took it or it is in the on-disk spool; only then are
    the tokens ``track``ed with it passed to ``acknowledge`` (the MQTT loop sends the PUBACKs).
    While the spool holds anything, new chunks go behind it, so points reach InfluxDB in
    the order they came. A full spool blocks (the broker keeps the backlog).
    """

    def __init__(self, client: InfluxHTTP, batch_size: int = 5000, flush_interval: float = 1.0,
                 max_queue: int = 50_000, retry_max: float = 5.0, spool: Spool | None = None,
                 max_batch_bytes: int = 10_000_000,
                 acknowledge: Callable[[list], None] = lambda tokens: None,
                 clock: Callable[[], float] = time.monotonic, metrics: Metrics | None = None):
        self.client = client
        self.batch_size = batch_size
        self.max_batch_bytes = max_batch_bytes
        self.flush_interval = flush_interval
        self.queue: queue.Queue[Chunk] = queue.Queue(maxsize=max(2, max_queue // batch_size))
        self.retry_max = retry_max
        self.spool = spool
        self.acknowledge = acknowledge
        self.clock = clock
        self.metrics = metrics or client.metrics
        self._lines: list[str] = []
        self._more: dict[str, list[str]] = {}  # lines for other databases than the client's
        # Lines for other databases as they came, and the database of each: grouped into _more
        # once per chunk (flush), not once per burst of messages (put_many).
        self._routed: list[str] = []
        self._routed_to: list[str] = []
        self._count = 0  # lines in _lines, _more and _routed
        self._tokens: list = []
        self._bytes = 0  # the buffer's size in characters: bytes, for these mostly-ASCII lines
        self._since = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="influx-writer", daemon=True)
        self.last_error: str | None = None
        self._retry_at = 0.0
        self._delay = 0.5
        self.written = 0

    # -- producer side (ingest thread, or anyone) ---------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def put(self, line: str, db: str | None = None) -> None:
        """One line for ``db`` (default: the client's database)."""
        self.put_many([line], db)

    def put_many(self, lines: list[str], db: str | None = None, more: dict[str, list[str]] | None = None,
                 routed: tuple[list[str], list[str]] | None = None) -> None:
        """``put`` for many lines at once: one lock for a whole burst of messages; ``more``: lines
        for other databases too, by name; ``routed``: (lines, the database of each) for other
        databases, in any mix (the caller may clear its lists after)."""
        with self._lock:
            if not self._count:
                self._since = self.clock()
            if db is None:
                self._lines += lines
            else:
                self._more.setdefault(db, []).extend(lines)
            n, size = len(lines), sum(map(len, lines))
            for other, extra in (more or {}).items():
                if extra:
                    self._more.setdefault(other, []).extend(extra)
                    n, size = n + len(extra), size + sum(map(len, extra))
            if routed is not None and routed[0]:
                self._routed += routed[0]
                self._routed_to += routed[1]
                n, size = n + len(routed[0]), size + sum(map(len, routed[0]))
            self._count += n
            self._bytes += size + n
            full = self._count >= self.batch_size or self._bytes >= self.max_batch_bytes
        if full:
            self.flush()

    def track(self, tokens: list) -> None:
        """Acknowledge these deliveries once every line put before them is durable."""
        with self._lock:
            if not self._count and not self._tokens:
                self._since = self.clock()
            self._tokens += tokens

    def flush(self, block: bool = True) -> bool:
        """Move the buffer onto the queue now; False if the queue stayed full (buffer kept)."""
        with self._lock:
            if not self._count and not self._tokens:
                return True
            if self._routed:
                self._group_routed()
            chunk = Chunk(self._lines, self._tokens, self._more or None)
            self._lines, self._tokens, size, self._bytes = [], [], self._bytes, 0
            self._more, self._count = {}, 0
        try:
            self.queue.put(chunk, block=block)
        except queue.Full:
            with self._lock:  # put it back in front of anything added meanwhile
                self._lines[:0], self._tokens[:0] = chunk.lines, chunk.tokens
                for db, lines in (chunk.more or {}).items():
                    self._more.setdefault(db, [])[:0] = lines
                self._count += chunk.size()
                self._bytes += size
            return False
        return True

    def _group_routed(self) -> None:
        """The routed lines into _more, by database, in the order they came (holding the lock)."""
        more = self._more
        for db, line in zip(self._routed_to, self._routed):
            lines = more.get(db)
            if lines is None:
                more[db] = [line]
            else:
                lines.append(line)
        self._routed, self._routed_to = [], []

    def pending(self) -> int:
        """Lines not yet durable: buffered plus queued."""
        with self.queue.mutex:
            queued = sum(c.size() for c in self.queue.queue)
        return self._count + queued

    def stop(self, timeout: float = 30.0) -> None:
        """Flush everything buffered, queued and spooled (as far as InfluxDB lets), then stop."""
        self.flush()
        self._stop.set()
        if self._thread.is_alive():
            try:  # wake the writer if it waits on an empty queue
                self.queue.put_nowait(Chunk([], []))
            except queue.Full:
                pass  # it is busy, and will see the stop flag
            self._thread.join(timeout)
        else:  # never started (tests, or a failed start): flush on this thread
            self._finish(self.clock() + timeout)

    # -- writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self.step(wait=self.flush_interval)
        self._finish(self.clock() + 25.0)

    def step(self, wait: float = 0.0) -> None:
        """One unit of work: store a chunk, or flush an old buffer, or retry the spool."""
        spooled = self.spool is not None and len(self.spool) > 0
        if spooled and self.clock() >= self._retry_at:
            wait = 0.0  # the spool is waiting to drain: don't sleep on the queue
        try:
            chunk = self.queue.get(timeout=wait) if wait > 0 else self.queue.get_nowait()
        except queue.Empty:
            chunk = None
        if chunk is not None:
            self._store(chunk)
        elif self._count or self._tokens:
            if self.clock() - self._since >= self.flush_interval:
                self.flush(block=False)
        if self.spool is not None and len(self.spool) > 0:
            self._drain_one()

    def _finish(self, deadline: float) -> None:
        while True:
            self.flush(block=False)  # a full queue keeps the buffer: go round again
            try:
                self._store(self.queue.get_nowait())
            except queue.Empty:
                if not self._count and not self._tokens:
                    break
        while self.spool is not None and len(self.spool) > 0 and self.clock() < deadline:
            self._retry_at = 0.0
            if not self._drain_one():
                break
        if self.spool is not None and len(self.spool) > 0:
            log.warning("stopping with %d batch(es) (%d bytes) in the spool %s; they are written at the next start",
                        len(self.spool), self.spool.bytes, self.spool.dir)

    def _store(self, chunk: Chunk) -> None:
        """Each database's lines of the chunk, then its tokens: durable once every part is."""
        for db, lines in chunk.parts():
            body = "\n".join(lines).encode()
            if self.spool is not None and len(self.spool) > 0:
                self._spool(body, db)  # keep the order: behind what waits already
            elif not self._write(body, len(lines), db):
                if self.spool is None:
                    self._write_until_done(body, len(lines), db)
                else:
                    self._spool(body, db)
        if chunk.tokens:
            self.acknowledge(chunk.tokens)

    def _spool(self, body: bytes, db: str | None = None) -> None:
        while not self.spool.has_room(len(body)):
            # Full: only draining makes room. Until then the queue fills and ingest blocks.
            self._note(f"spool {self.spool.dir} is full ({self.spool.bytes} bytes)")
            if not self._drain_one():
                time.sleep(min(self._delay, 1.0))
        self.spool.append(body, db)
        self.metrics.inc("points_spooled", body.count(b"\n") + 1)

    def _drain_one(self) -> bool:
        if self.clock() < self._retry_at:
            return False
        body, db = self.spool.peek_with_database()
        if not self._write(body, body.count(b"\n") + 1, db):
            return False
        self.spool.pop()
        if len(self.spool) == 0:
            log.info("spool drained: InfluxDB has everything again")
        return True

    def _write(self, body: bytes, points: int, db: str | None = None) -> bool:
        started = time.perf_counter()
        try:
            if db is None:
                self.client.write(body)
            else:
                self.client.write(body, db=db)
        except TooLarge:
            self.metrics.inc("influx_write_too_large")
            return self._write_halves(body, db)
        except InfluxError as exc:
            self._note(str(exc))
            self.metrics.inc("influx_write_errors")
            self._retry_at = self.clock() + self._delay
            self._delay = min(self._delay * 2, self.retry_max)
            return False
        self.metrics.observe_write(time.perf_counter() - started, points)
        self.written += points
        self._delay = 0.5
        self._note(None)
        return True

    def _write_halves(self, body: bytes, db: str | None = None) -> bool:
        """A body over InfluxDB's limit: each half on its own, down to single lines."""
        lines = body.split(b"\n")
        if len(lines) == 1:
            log.error("InfluxDB refused a single line of %d bytes as too large (its max-body-size); "
                      "dropped it: %.120r", len(body), body)
            self.metrics.inc("influx_points_rejected_too_large")
            return True  # retrying cannot help: it is done with, as a 400's bad points are
        half = len(lines) // 2
        return (self._write(b"\n".join(lines[:half]), half, db)
                and self._write(b"\n".join(lines[half:]), len(lines) - half, db))

    def _write_until_done(self, body: bytes, points: int, db: str | None = None) -> None:
        """Without a spool: retry in place (the queue fills and ingest blocks meanwhile)."""
        while not self._write(body, points, db):
            time.sleep(max(0.0, self._retry_at - self.clock()))

    def _note(self, problem: str | None) -> None:
        if problem != self.last_error:
            if problem:
                log.error("%s; batches go to the spool and are retried", problem)
            elif self.last_error:
                log.info("InfluxDB writes succeed again")
            self.last_error = problem

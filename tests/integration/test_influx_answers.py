"""Only a 2xx from InfluxDB means written: a body over its limit (413) is split until it fits,
a redirect (3xx) or any other answer is a failure that keeps the points (spool, retry) and holds
back the acknowledgement. A real InfluxDB with a small ``max-body-size``; a stub for 3xx."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devkit.pipeline import wait_for
from devkit.servers import InfluxDB
from server.metrics import Metrics
from server.store.influx import BatchWriter, InfluxError, InfluxHTTP
from server.store.spool import Spool

pytestmark = pytest.mark.integration

DB = "answers"
LIMIT = 4096  # InfluxDB's max-body-size for these tests, in bytes


@pytest.fixture(scope="module")
def small_influx(tmp_path_factory):
    with InfluxDB(tmp_path_factory.mktemp("influx"), extra_config={"http": {"max-body-size": LIMIT}}) as server:
        yield server


@pytest.fixture
def db(small_influx, request):
    name = f"{DB}_{request.node.name.split('[')[0][-40:]}".replace("-", "_")
    small_influx.create_database(name)
    yield small_influx, name
    small_influx.drop_database(name)


def lines(n: int, size: int = 100, first: int = 0) -> list[str]:
    return [f'm,k=v s="{"x" * (size - 40)}",n={i}i {1_790_000_000_000 + i}' for i in range(first, first + n)]


def writer_for(url: str, database: str, acked: list, spool=None, **kw) -> BatchWriter:
    client = InfluxHTTP(url, database, timeout=5, metrics=Metrics())
    return BatchWriter(client, flush_interval=0.05, spool=spool, acknowledge=acked.extend, **kw)


def stored(influx, database: str) -> list[int]:
    return sorted(row["n"] for row in influx.query("SELECT n FROM m", db=database))


def feed(writer: BatchWriter, batch: list[str], token) -> None:
    for line in batch:
        writer.put(line)
    writer.track([token])
    writer.flush()


def test_a_batch_over_the_body_limit_is_split_until_every_point_is_stored(db):
    influx, name = db
    acked: list = []
    writer = writer_for(influx.url, name, acked, batch_size=10_000)  # default byte cap: far above 30 kB
    writer.start()
    feed(writer, lines(300), "t1")  # ~30 kB in one body: 413, then halves, quarters, ...
    wait_for(lambda: acked == ["t1"], 20, "the batch to be acknowledged")
    writer.stop()
    assert stored(influx, name) == list(range(300))
    assert writer.written == 300 and writer.metrics.counters["influx_write_too_large"] > 0


def test_a_single_line_over_the_limit_is_dropped_and_counted_and_the_rest_is_stored(db, caplog):
    influx, name = db
    acked: list = []
    writer = writer_for(influx.url, name, acked, batch_size=10_000)
    writer.start()
    huge = lines(1, size=LIMIT + 500, first=999)
    feed(writer, lines(20) + huge + lines(20, first=20), "t1")
    wait_for(lambda: acked == ["t1"], 20, "the batch to be acknowledged, not retried for ever")
    feed(writer, lines(5, first=40), "t2")  # the writer goes on
    wait_for(lambda: acked == ["t1", "t2"], 20, "the next batch")
    writer.stop()
    assert stored(influx, name) == list(range(45))
    assert writer.metrics.counters["influx_points_rejected_too_large"] == 1
    assert any("single line" in r.getMessage() for r in caplog.records)


def test_batches_are_capped_by_bytes_below_the_body_limit(db):
    influx, name = db
    acked: list = []
    writer = writer_for(influx.url, name, acked, batch_size=10_000, max_batch_bytes=LIMIT // 2)
    writer.start()
    for i in range(10):
        feed(writer, lines(30, first=30 * i), i)
    wait_for(lambda: len(acked) == 10, 20, "every batch to be acknowledged")
    writer.stop()
    assert stored(influx, name) == list(range(300))
    assert writer.metrics.counters["influx_write_too_large"] == 0  # never over the limit


# -- a stub that answers what we tell it -------------------------------------------------------------

class Stub:
    """An HTTP server on loopback answering every POST with ``status`` (and a Location for 3xx)."""

    def __init__(self, status: int):
        self.status, self.posts = status, 0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stub.posts += 1
                self.send_response(stub.status)
                if 300 <= stub.status < 400:
                    self.send_header("Location", "http://admin:s3cret@127.0.0.1:1/write")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("status", [301, 307, 418])
def test_a_redirect_or_other_non_2xx_is_not_written_and_not_acknowledged_until_a_2xx(status):
    stub = Stub(status)
    acked: list = []
    writer = writer_for(stub.url, DB, acked, batch_size=10, retry_max=0.2)
    writer.start()
    try:
        feed(writer, lines(3), "t1")
        wait_for(lambda: stub.posts >= 3, 10, "the writer to try, and try again")
        assert acked == [] and writer.written == 0
        assert str(status) in writer.last_error and "s3cret" not in writer.last_error
        stub.status = 204  # positive control: the same writer acknowledges once a write succeeds
        wait_for(lambda: acked == ["t1"], 10, "the acknowledgement after a 204")
        assert writer.written == 3
    finally:
        writer.stop()
        stub.close()


def test_a_redirect_with_a_spool_keeps_the_points_in_the_spool(tmp_path):
    stub = Stub(307)
    acked: list = []
    spool = Spool(tmp_path / "spool", 1 << 20)
    writer = writer_for(stub.url, DB, acked, spool=spool, batch_size=10, retry_max=0.2)
    writer.start()
    try:
        feed(writer, lines(3), "t1")
        wait_for(lambda: acked == ["t1"], 10, "the acknowledgement once the batch is in the spool")
        assert len(spool) == 1 and writer.written == 0
        stub.status = 204
        wait_for(lambda: len(spool) == 0, 10, "the spool to drain after a 204")
        assert writer.written == 3
    finally:
        writer.stop()
        stub.close()


def test_a_query_answer_is_decoded_and_an_empty_or_malformed_one_is_a_clear_influx_error(db):
    influx, name = db
    client = InfluxHTTP(influx.url, name, timeout=5)
    client.write("\n".join(lines(3)).encode())
    [result] = client.query("SELECT n FROM m")
    assert [v[1] for v in result["series"][0]["values"]] == [0, 1, 2]  # ints stay ints
    stub = Stub(200)  # 200 with an empty body
    try:
        with pytest.raises(InfluxError, match="malformed JSON"):
            InfluxHTTP(stub.url, name, timeout=5).query("SELECT n FROM m")
    finally:
        stub.close()

"""BatchWriter: batching, acknowledgement only once durable, spool while InfluxDB is away."""

import threading

from devkit.pipeline import wait_for
from server.metrics import Metrics
from server.store.influx import BatchWriter, InfluxError
from server.store.spool import Spool


class FakeInflux:
    def __init__(self):
        self.up = True
        self.bodies: list[bytes] = []

    def write(self, body: bytes) -> None:
        if not self.up:
            raise InfluxError("InfluxDB unreachable: test")
        self.bodies.append(body)

    def lines(self) -> list[str]:
        return [line for body in self.bodies for line in body.decode().split("\n")]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def make(tmp_path, batch_size=3, spool_bytes=1 << 20, **kw):
    influx, clock, acked = FakeInflux(), Clock(), []
    writer = BatchWriter(influx, batch_size=batch_size, flush_interval=1.0, spool=Spool(tmp_path, spool_bytes),
                         acknowledge=acked.extend, clock=clock, metrics=Metrics(), **kw)
    return writer, influx, clock, acked


def test_a_full_buffer_is_written_as_one_batch_and_then_acknowledged(tmp_path):
    writer, influx, _, acked = make(tmp_path)
    for i in range(3):
        writer.put(f"m v={i}i {i}")
        writer.track([i])
    assert acked == [] and influx.bodies == []  # nothing durable yet
    writer.step()
    # The third token was tracked after the buffer had been flushed: it waits for the next batch.
    assert influx.bodies == [b"m v=0i 0\nm v=1i 1\nm v=2i 2"]
    assert acked == [0, 1]
    assert writer.metrics.counters["points_written"] == 3


def test_an_old_partial_buffer_is_flushed_by_age(tmp_path):
    writer, influx, clock, acked = make(tmp_path, batch_size=100)
    writer.put("m v=1i 1")
    writer.track(["t1"])
    writer.step()
    assert influx.bodies == []
    clock.now += 1.0
    writer.step()  # hands the old buffer off
    writer.step()  # writes it
    assert influx.lines() == ["m v=1i 1"] and acked == ["t1"]


def test_batches_go_to_the_spool_while_influx_is_down_and_come_back_in_order(tmp_path):
    writer, influx, clock, acked = make(tmp_path, batch_size=2)
    influx.up = False
    for i in range(6):
        writer.put(f"m v={i}i {i}")
        writer.track([i])
        writer.step()
    # Durable on disk, so acknowledged, though InfluxDB has nothing.
    assert influx.bodies == [] and len(writer.spool) == 3
    assert acked == [0, 1, 2, 3, 4]
    assert writer.metrics.counters["points_spooled"] == 6

    influx.up = True
    writer.put("m v=6i 6")
    writer.track([6])
    writer.flush()
    clock.now += 60
    for _ in range(10):
        writer.step()
    assert influx.lines() == [f"m v={i}i {i}" for i in range(7)]
    assert len(writer.spool) == 0 and acked == list(range(7))


def test_a_spool_left_by_a_crash_is_written_first_after_a_restart(tmp_path):
    Spool(tmp_path, 1 << 20).append(b"old v=1i 1")
    writer, influx, _, _ = make(tmp_path)
    writer.put("new v=2i 2")
    writer.flush()
    writer.step()
    writer.step()
    assert influx.lines() == ["old v=1i 1", "new v=2i 2"]


def test_stop_flushes_buffer_queue_and_spool(tmp_path):
    writer, influx, clock, acked = make(tmp_path, batch_size=100)
    influx.up = False
    writer.put("a v=1i 1")
    writer.track(["a"])
    writer.flush()
    writer.step()
    assert len(writer.spool) == 1
    influx.up = True
    writer.put("b v=2i 2")
    writer.track(["b"])
    writer.stop()  # never started: flushes on this thread
    assert influx.lines() == ["a v=1i 1", "b v=2i 2"] and acked == ["a", "b"]
    assert len(writer.spool) == 0


def test_stop_with_influx_down_leaves_the_batches_in_the_spool(tmp_path):
    writer, influx, _, acked = make(tmp_path)
    influx.up = False
    writer.put("a v=1i 1")
    writer.track(["a"])
    writer.stop()
    assert acked == ["a"]  # durable on disk
    assert Spool(tmp_path, 1 << 20).peek() == b"a v=1i 1"


def test_a_full_queue_blocks_the_producer_instead_of_growing(tmp_path):
    writer, _, _, _ = make(tmp_path, batch_size=1, max_queue=2)
    writer.put("a 1")
    writer.put("b 2")  # queue holds 2 chunks now
    calls, real_put = [], writer.queue.put
    writer.queue.put = lambda chunk, block=True, timeout=None: calls.append(block) or real_put(chunk, block, timeout)
    blocked = threading.Thread(target=writer.put, args=("c 3",), daemon=True)
    blocked.start()
    # It is queueing its chunk with a blocking put on a full queue: it can only wait there.
    wait_for(lambda: calls, 5, "the producer to queue its chunk", interval=0.01)
    assert calls == [True] and blocked.is_alive(), "put must block while the queue is full"
    assert writer.queue.qsize() == 2 and writer.pending() == 2  # the third waits in the producer's hand
    writer.step()
    blocked.join(2)
    assert not blocked.is_alive()


def test_flush_without_blocking_keeps_the_buffer_when_the_queue_is_full(tmp_path):
    writer, _, _, _ = make(tmp_path, batch_size=10, max_queue=20)  # queue of 2 chunks
    for name in ("a", "b"):
        writer.put(f"{name} 1")
        writer.flush()
    writer.put("c 1")
    writer.track(["c"])
    assert writer.flush(block=False) is False
    assert writer._lines == ["c 1"] and writer._tokens == ["c"]


def test_a_full_spool_holds_acknowledgements_back(tmp_path):
    writer, influx, clock, acked = make(tmp_path, batch_size=10, spool_bytes=10)
    influx.up = False
    writer.put("a v=1i 1")
    writer.track(["a"])
    writer.flush()
    writer.step()
    assert acked == ["a"] and len(writer.spool) == 1
    writer.put("b v=2i 2")
    writer.track(["b"])
    writer.flush()
    done = threading.Thread(target=writer.step, daemon=True)
    done.start()
    # It has found the spool full and waits for room (the same call acknowledges once it has some).
    wait_for(lambda: "is full" in (writer.last_error or ""), 5, "the writer to find the spool full", interval=0.01)
    assert done.is_alive() and acked == ["a"], "b is neither in InfluxDB nor on disk: no ack"
    influx.up = True
    clock.now += 60
    done.join(5)
    assert acked == ["a", "b"]


def test_stop_returns_at_once_when_the_writer_is_idle(tmp_path):
    import time
    writer, influx, _, _ = make(tmp_path)
    writer.flush_interval = 30.0  # the writer thread waits up to this long on an empty queue
    writer.start()
    writer.put("m v=1i 1")
    writer.flush()
    wait_for(lambda: influx.bodies, 5, "the first write", interval=0.01)  # then it waits on the queue again
    began = time.monotonic()
    writer.stop()
    assert time.monotonic() - began < 2


def test_many_lines_put_at_once_are_one_batch_and_acknowledged_behind_them(tmp_path):
    writer, influx, _, acked = make(tmp_path, batch_size=4)
    writer.put_many(["m v=0i 0", "m v=1i 1"])
    writer.track(["t1"])
    writer.put_many(["m v=2i 2", "m v=3i 3"])  # fills the batch: handed off
    writer.step()
    assert influx.bodies == [b"m v=0i 0\nm v=1i 1\nm v=2i 2\nm v=3i 3"] and acked == ["t1"]

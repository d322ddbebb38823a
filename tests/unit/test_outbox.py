"""The on-disk outbox: order, caps (count, bytes, age), drop counting, surviving a reopen."""

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from agent.config import OutboxConfig
from agent.outbox import MemoryOutbox, SQLiteOutbox


class Clock:
    def __init__(self, now=1_700_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def cfg(**over):
    base = {"max_messages": 1000, "max_bytes": 10 * 1024 * 1024, "max_age_hours": 24.0}
    base.update(over)
    return OutboxConfig(**base)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "state" / "outbox.sqlite3"


def payloads(outbox, limit=10_000, after=0):
    return [p for _, _, p, _ in outbox.peek_batch(limit, after)]


def test_outbox_keeps_messages_in_order_with_topic_and_retain(path):
    box = SQLiteOutbox(path, cfg())
    box.put("a/status", b"1", True)
    box.put_many([("a/telemetry", b"2", False), ("a/telemetry", b"3", False)])
    items = box.peek_batch(10)
    assert [(t, p, r) for _, t, p, r in items] == [
        ("a/status", b"1", True), ("a/telemetry", b"2", False), ("a/telemetry", b"3", False)]
    assert [i for i, *_ in items] == sorted(i for i, *_ in items)
    assert box.pending() == 3 and box.last_id() == items[-1][0]


def test_peek_after_skips_items_already_handed_over(path):
    box = SQLiteOutbox(path, cfg())
    box.put_many([("t", str(i).encode(), False) for i in range(5)])
    first = box.peek_batch(2)
    assert payloads(box, 10, after=first[-1][0]) == [b"2", b"3", b"4"]


def test_remove_upto_deletes_only_acknowledged_prefix(path):
    box = SQLiteOutbox(path, cfg())
    box.put_many([("t", str(i).encode(), False) for i in range(5)])
    ids = [i for i, *_ in box.peek_batch(5)]
    box.remove_upto(ids[2])
    assert payloads(box) == [b"3", b"4"] and box.pending() == 2


def test_ids_are_never_reused_after_a_drain_and_reopen(path):
    box = SQLiteOutbox(path, cfg())
    box.put("t", b"x", False)
    first = box.last_id()
    box.remove_upto(first)
    box.close()
    box = SQLiteOutbox(path, cfg())
    assert box.pending() == 0 and box.last_id() == first
    box.put("t", b"y", False)
    assert box.last_id() > first


def test_count_cap_drops_the_oldest_and_counts_them(path):
    box = SQLiteOutbox(path, cfg(max_messages=100))
    box.put_many([("t", str(i).encode(), False) for i in range(130)])
    box.put("t", b"130", False)
    assert box.pending() == 100
    assert payloads(box)[0] == b"31" and payloads(box)[-1] == b"130"
    assert box.dropped_total() == 31


def test_byte_cap_drops_the_oldest_until_the_new_message_fits(path):
    box = SQLiteOutbox(path, cfg(max_bytes=64 * 1024))
    blob = b"x" * 1023  # + 1 byte topic = 1 KiB each
    for i in range(70):
        box.put("t", blob[:-3] + b"%03d" % i, False)
    left = payloads(box)
    assert sum(len(p) + 1 for p in left) <= 64 * 1024
    assert len(left) == 64 and left[0].endswith(b"006") and left[-1].endswith(b"069")
    assert box.dropped_total() == 6


def test_age_cap_drops_messages_older_than_max_age(path):
    clock = Clock()
    box = SQLiteOutbox(path, cfg(max_age_hours=1.0), clock=clock)
    box.put("t", b"old", False)
    clock.now += 1800
    box.put("t", b"half-hour", False)
    clock.now += 1900  # "old" is now 62 min old, "half-hour" 32 min
    box.put("t", b"new", False)
    assert payloads(box) == [b"half-hour", b"new"] and box.dropped_total() == 1


def test_drop_count_and_backlog_survive_a_reopen(path):
    box = SQLiteOutbox(path, cfg(max_messages=100))
    box.put_many([("t", str(i).encode(), False) for i in range(105)])
    box.close()
    box = SQLiteOutbox(path, cfg(max_messages=100))
    assert box.dropped_total() == 5 and box.pending() == 100 and payloads(box)[0] == b"5"
    box.put("t", b"105", False)
    assert box.dropped_total() == 6


def test_outbox_file_is_in_wal_mode_with_full_sync(path):
    box = SQLiteOutbox(path, cfg())
    assert box._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert box._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_what_put_returned_for_survives_kill_9_of_the_writer(path):
    # A child process puts messages and prints each id after put() returns, then is
    # killed with SIGKILL (no close, no atexit). Every printed id must be there.
    code = textwrap.dedent(f"""
        import os, signal, sys
        from agent.config import OutboxConfig
        from agent.outbox import SQLiteOutbox
        box = SQLiteOutbox({str(path)!r}, OutboxConfig())
        for i in range(50):
            box.put("t", b"%d" % i, False)
            print(box.last_id(), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == -9, done.stderr
    committed = [int(x) for x in done.stdout.split()]
    assert len(committed) == 50
    box = SQLiteOutbox(path, cfg())
    assert [i for i, *_ in box.peek_batch(100)] == committed
    assert payloads(box) == [b"%d" % i for i in range(50)]


def test_a_corrupt_table_is_not_silently_ignored(path):
    path.parent.mkdir(parents=True)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE outbox (nonsense TEXT)")
    db.commit()
    db.close()
    with pytest.raises(sqlite3.Error):
        SQLiteOutbox(path, cfg())


def test_memory_outbox_has_the_same_order_and_drop_behaviour():
    box = MemoryOutbox(max_messages=3)
    box.put_many([("t", str(i).encode(), False) for i in range(5)])
    assert payloads(box) == [b"2", b"3", b"4"] and box.dropped_total() == 2
    assert payloads(box, after=box.peek_batch(1)[0][0]) == [b"3", b"4"]
    box.remove_upto(box.last_id())
    assert box.pending() == 0


def test_a_second_agent_on_the_same_state_dir_is_refused_with_a_clear_error(path, monkeypatch):
    monkeypatch.setattr("agent.outbox.LOCK_TIMEOUT", 0.05)
    box = SQLiteOutbox(path, cfg())
    box.put("t", b"x", False)
    with pytest.raises(RuntimeError, match="another agent"):
        SQLiteOutbox(path, cfg())
    box.close()


def test_no_shared_memory_file_is_written_beside_the_outbox(path):
    box = SQLiteOutbox(path, cfg())
    box.put("t", b"x", False)
    assert not path.with_name(path.name + "-shm").exists()
    box.close()

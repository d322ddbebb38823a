"""The on-disk spool: FIFO order, survives a restart, bounded, crash-safe."""

import pytest

from server.store.spool import Spool, SpoolFull


def test_spool_gives_batches_back_oldest_first(tmp_path):
    spool = Spool(tmp_path, max_bytes=1000)
    for body in (b"a 1", b"b 2", b"c 3"):
        spool.append(body)
    out = []
    while len(spool):
        out.append(spool.peek())
        spool.pop()
    assert out == [b"a 1", b"b 2", b"c 3"]
    assert spool.bytes == 0 and list(tmp_path.iterdir()) == []


def test_spool_survives_a_restart_in_order_and_drops_half_written_batches(tmp_path):
    first = Spool(tmp_path, max_bytes=1000)
    for i in range(12):  # more than 10, so order must be numeric, not by string
        first.append(f"m v={i}i".encode())
    (tmp_path / "0000000000000099.tmp").write_bytes(b"half a batch")  # a crash mid-write

    again = Spool(tmp_path, max_bytes=1000)
    assert len(again) == 12 and again.bytes == first.bytes
    assert again.peek() == b"m v=0i"
    again.append(b"m v=12i")
    bodies = []
    while len(again):
        bodies.append(again.peek())
        again.pop()
    assert bodies == [f"m v={i}i".encode() for i in range(13)]
    assert not list(tmp_path.glob("*.tmp"))


def test_spool_refuses_batches_beyond_its_cap_but_always_takes_one(tmp_path):
    spool = Spool(tmp_path, max_bytes=10)
    spool.append(b"x" * 50)  # empty spool: takes even an oversized batch, so progress is possible
    assert not spool.has_room(1)
    with pytest.raises(SpoolFull):
        spool.append(b"y")
    spool.pop()
    spool.append(b"y" * 10)
    assert not spool.has_room(1)


def test_stray_files_in_the_spool_folder_are_left_alone_and_do_not_stop_the_start(tmp_path, caplog):
    from server.store.spool import Spool

    first = Spool(tmp_path, 1 << 20, fsync=False)
    first.append(b"m v=1i 1")
    (tmp_path / "notes.lp").write_text("an operator's note")
    (tmp_path / "0001a.lp").write_text("x")
    (tmp_path / "\u0661\u0662.lp").write_text("x")  # Arabic-Indic digits: isdigit(), yet not ours
    (tmp_path / "42.lp").mkdir()
    spool = Spool(tmp_path, 1 << 20, fsync=False)
    assert len(spool) == 1 and spool.peek() == b"m v=1i 1"
    assert "ignoring 4 file(s)" in caplog.text
    spool.append(b"m v=2i 2")  # and it goes on numbering after its own batches
    spool.pop()
    assert spool.peek() == b"m v=2i 2" and (tmp_path / "notes.lp").exists()

"""Which messages mark a printer's rolled-up hours dirty, and which do not."""

from types import SimpleNamespace

from common import protocol
from server.inventory import Tags
from server.rollups.dirty import DirtyMarks

H = 3_600_000
A, B = ("s", "a"), ("s", "b")


def tags(key) -> Tags:
    return Tags(printer=key[1], site=key[0], organisation="o", county="c", listed=True)


def message(marks: DirtyMarks, key, ts: int) -> None:
    marks.on_message(SimpleNamespace(ts=ts), tags(key), None)


def test_data_in_order_after_the_rolled_up_hours_marks_nothing_once_the_printer_is_known():
    marks = DirtyMarks()
    marks.rolled_until = 10 * H
    message(marks, A, 10 * H + 5)  # the first message after a start: its data before may be in a rolled-up hour
    assert marks.take() == {A: 10 * H + 5}
    for ts in (10 * H + 10, 10 * H + 20, 11 * H):
        message(marks, A, ts)
    assert marks.take() == {}


def test_a_late_message_for_a_rolled_up_hour_marks_its_printer_with_the_earliest_time():
    marks = DirtyMarks()
    marks.rolled_until = 10 * H
    message(marks, A, 10 * H + 5)
    marks.take()
    message(marks, A, 7 * H)
    message(marks, A, 6 * H)
    message(marks, A, 8 * H)
    message(marks, B, 10 * H + 1)  # positive control: B's first message is marked too
    assert marks.take() == {A: 6 * H, B: 10 * H + 1}


def test_an_out_of_order_session_start_marks_its_printer_but_other_out_of_order_data_does_not():
    """A session start makes the time since the printer's previous data unknown, and that data
    may lie in a rolled-up hour; other data in the hour under way changes only that hour."""
    marks = DirtyMarks()
    marks.rolled_until = 10 * H
    message(marks, A, 10 * H + 50)
    marks.take()
    message(marks, A, 10 * H + 40)  # out of order, but telemetry: the hour under way is redone anyway
    assert marks.take() == {}
    restart = protocol.Status(v=1, ts=10 * H + 30, printer="a", site="s", seq=1, state="idle", prev_state=None)
    marks.on_message(restart, tags(A), None)
    change = protocol.Status(v=1, ts=10 * H + 35, printer="a", site="s", seq=2, state="printing", prev_state="idle")
    marks.on_message(change, tags(A), None)
    assert marks.take() == {A: 10 * H + 30}


def test_a_printer_silent_across_a_rolled_up_hour_end_is_marked_when_its_data_goes_on():
    """Its rolled-up hour ended 'unknown' after its last data; the new data may change that."""
    marks = DirtyMarks()
    marks.rolled_until = 10 * H
    message(marks, A, 10 * H - 5)  # late and first: marked
    marks.take()
    marks.rolled_until = 11 * H  # the next hour was rolled up while A was silent
    message(marks, A, 11 * H + 3)
    assert marks.take() == {A: 11 * H + 3}


def test_agent_messages_mark_nothing_and_restored_marks_keep_the_earliest_time():
    marks = DirtyMarks()
    marks.on_message(SimpleNamespace(ts=1), None, None)
    assert marks.take() == {}
    marks.mark(A, 5 * H)
    marks.restore({A: 3 * H, B: 4 * H})
    assert marks.pending() == {A: 3 * H, B: 4 * H}


def test_a_steady_printer_is_not_marked_when_the_hours_behind_it_are_rolled_up():
    """What it sent is noted often enough that the next rolled_until (settle s behind) is before it."""
    marks = DirtyMarks()
    marks.rolled_until = 10 * H
    for ts in range(10 * H + 1000, 11 * H + 120_000, 1000):  # a poll a second for over an hour
        if ts == 11 * H + 60_000:
            marks.rolled_until = 11 * H  # the job rolls up hour 10 a minute after it ended
        message(marks, A, ts)
    assert marks.take() == {A: 10 * H + 1000}  # only its first message after the start


def test_a_primed_printer_is_not_marked_for_its_first_message_after_a_start():
    marks = DirtyMarks()
    marks.rolled_until = 10 * H
    marks.prime({tags(A): 10 * H + 500, tags(B): 9 * H})
    message(marks, A, 10 * H + 900)
    message(marks, B, 10 * H + 900)  # positive control: its data before the restart is older
    assert marks.take() == {B: 10 * H + 900}


def test_in_the_collector_a_bursts_marks_count_only_once_its_lines_are_handed_to_the_writer():
    marks = DirtyMarks(bursts=True)
    marks.rolled_until = 10 * H
    message(marks, A, 7 * H)  # late, in a burst still being read
    assert marks.take() == {}  # its line is not in the writer yet: a run must not count on it
    marks.end_burst()
    assert marks.take() == {A: 7 * H}


def test_the_job_waits_for_the_burst_under_way_but_not_when_there_is_none():
    import threading
    marks = DirtyMarks(bursts=True)
    assert marks.await_burst(timeout=5)  # nothing under way: at once
    message(marks, A, 10 * H)  # a burst begins (checked against the old rolled_until)
    assert marks.await_burst(timeout=0.05) is False  # still under way
    threading.Timer(0.05, marks.end_burst).start()
    assert marks.await_burst(timeout=5)

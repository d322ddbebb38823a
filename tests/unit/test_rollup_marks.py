"""Which messages mark a printer's rolled-up hours dirty, and which do not."""

from types import SimpleNamespace

from server.rollups.dirty import DirtyMarks

H = 3_600_000
A, B = ("s", "a"), ("s", "b")


def message(marks: DirtyMarks, key, ts: int) -> None:
    marks.on_message(SimpleNamespace(ts=ts), SimpleNamespace(site=key[0], printer=key[1]), None)


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


def test_an_out_of_order_message_in_the_hour_under_way_marks_its_printer():
    marks = DirtyMarks()
    marks.rolled_until = 10 * H
    message(marks, A, 10 * H + 50)
    marks.take()
    message(marks, A, 10 * H + 40)
    assert marks.take() == {A: 10 * H + 40}


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

"""OctoPrint's adapter judges how its jobs end (the job tracker infers nothing): from the states
when it saw the end, from the file's print statistics when it did not."""

from agent.jobs import JobTracker
from agent.printers.base import Snapshot
from agent.printers.octoprint_ends import EndJudge


def snap(ts, state, progress=None):
    return Snapshot(ts=ts * 1000, state=state, state_text=state, progress=progress, file="cube.gcode")


def ends(*snaps, record=None, last_error=None, errors=False):
    judge, tracker, out = EndJudge(), JobTracker(), []
    for s in snaps:
        judge.judge(s, record if judge.needs_record(s) else None, last_error=lambda: last_error)
        out += [(e.kind, e.ts // 1000) + ((e.error,) if errors else ()) for e in tracker.update(s)]
    return out


def test_a_print_seen_to_finish_is_done_and_a_cancel_is_cancelled_whether_or_not_cancelling_was_seen():
    assert ends(snap(0, "idle"), snap(1, "printing", 10), snap(2, "printing", 90), snap(3, "idle", 100),
                snap(4, "idle", 100)) == [("started", 1), ("done", 3)]
    assert ends(snap(0, "idle"), snap(1, "printing", 5), snap(2, "cancelling", 30), snap(3, "idle", 30),
                snap(4, "idle", 30)) == [("started", 1), ("cancelled", 3)]
    assert ends(snap(0, "idle"), snap(1, "printing", 5), snap(2, "idle", 31)) == [("started", 1), ("cancelled", 2)]
    assert ends(snap(0, "idle"), snap(1, "printing", 5), snap(2, "error")) == [
        ("started", 1), ("disconnected", 2), ("failed", 2)]


def test_an_end_not_seen_is_read_from_the_files_last_print_with_its_own_time():
    record = {"prints": {"last": {"date": 7.5, "success": True, "printTime": 6.0}}}
    tracker = JobTracker({"file": "cube.gcode", "user": None, "started_ts": 1_000})  # saved before a restart
    judge = EndJudge()
    after = snap(9, "idle", 100)
    judge.judge(after, record if judge.needs_record(after) else None)
    (done,) = tracker.update(after)
    assert (done.kind, done.ts, done.duration) == ("done", 7_500, 6.5)
    failed = {"prints": {"last": {"date": 7.5, "success": False}}}
    assert ends(snap(1, "printing", 5), snap(2, "unreachable"), snap(9, "idle"), record=failed) == [
        ("started", 1), ("cancelled", 7)]


def test_no_record_is_asked_for_while_the_agent_watches():
    judge = EndJudge()
    asked = []
    for s in (snap(0, "idle"), snap(1, "printing"), snap(2, "idle", 100)):
        asked.append(judge.needs_record(s))
        judge.judge(s)
    assert asked == [True, False, False]


FIRMWARE_CANCEL = {"error": "Printer halted. kill() called!", "reason": "firmware", "consequence": "cancel"}


def test_a_cancel_that_octoprint_made_for_a_firmware_error_is_a_failure_with_its_text():
    """comm.py _handle_errors with serial.disconnectOnErrors false: on_comm_error(error, "firmware",
    consequence="cancel"), then cancelPrint; /api/printer/error keeps it until the next job."""
    cancel = (snap(0, "idle"), snap(1, "printing", 5), snap(2, "cancelling", 30), snap(3, "idle", 30))
    assert ends(*cancel, last_error=FIRMWARE_CANCEL, errors=True) == [
        ("started", 1, None), ("failed", 3, "Printer halted. kill() called!")]
    person = {"error": "", "reason": ""}  # what OctoPrint answers with no error since the job began
    disconnected = {"error": "Too many timeouts", "reason": "timeout", "consequence": "disconnect"}
    for info in (person, None, disconnected, {"reason": "firmware"}, "garbage"):
        assert ends(*cancel, last_error=info) == [("started", 1), ("cancelled", 3)], info
    away = {"prints": {"last": {"date": 7.5, "success": False}}}
    assert ends(snap(1, "printing", 5), snap(2, "unreachable"), snap(9, "idle"), record=away,
                last_error=dict(FIRMWARE_CANCEL, error="")) == [("started", 1), ("failed", 7)]


def test_the_last_error_is_asked_only_for_a_job_judged_cancelled():
    asked = []
    judge = EndJudge()
    for s in (snap(0, "idle"), snap(1, "printing", 5), snap(2, "idle", 100), snap(3, "printing", 5),
              snap(4, "error"), snap(5, "idle"), snap(6, "printing", 5), snap(7, "idle", 40), snap(8, "idle")):
        judge.judge(s, last_error=lambda: asked.append(s.ts // 1000))
    assert asked == [7]

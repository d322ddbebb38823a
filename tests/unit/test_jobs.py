from agent.jobs import UNSAID, JobTracker, Ledger
from agent.printers.base import Snapshot
from agent.printers.octoprint_states import normalise


def snap(ts, state, progress=None, file="cube.gcode", error=None, text="", ended=None):
    return Snapshot(ts=ts * 1000, state=state, state_text=text or state, progress=progress, file=file,
                    user="operator", error=error, ended=ended)


def run(tracker, *snaps):
    return [(e.kind, e.ts // 1000) for s in snaps for e in tracker.update(s)]


def test_a_finished_print_gives_started_then_one_done_with_duration():
    t = JobTracker()
    events = []
    for s in [snap(0, "idle", 0), snap(5, "printing", 10), snap(10, "printing", 90),
              snap(15, "idle", 100, ended="done")]:
        events += t.update(s)
    assert [e.kind for e in events] == ["started", "done"]
    done = events[-1]
    assert (done.file, done.user, done.duration, done.job_started) == ("cube.gcode", "operator", 10.0, 5000)


def test_the_tracker_infers_no_outcome_it_ends_a_job_as_its_printer_says_once():
    # A high progress is no "done" and a "cancelling" before idle no "cancel": the adapter judges.
    assert run(JobTracker(), snap(0, "printing", 5), snap(1, "cancelling", 30), snap(2, "idle", 30, ended="cancelled"),
               snap(3, "idle", 30, ended="cancelled")) == [("started", 0), ("cancelled", 2)]
    events = []
    t = JobTracker()
    for s in (snap(0, "printing", 99.99), snap(1, "idle", 100), snap(2, "idle", 100, ended="done")):
        events += t.update(s)
    assert [(e.kind, e.error) for e in events] == [("started", None), ("failed", UNSAID)]


def test_an_end_the_printer_recorded_earlier_is_the_events_time_but_one_before_the_job_is_not_its_end():
    t = JobTracker({"file": "cube.gcode", "user": None, "started_ts": 10_000})
    (done,) = t.update(Snapshot(ts=90_000, state="idle", ended="done", ended_ts=50_000))
    assert (done.kind, done.ts, done.duration) == ("done", 50_000, 40.0)
    t = JobTracker({"file": "cube.gcode", "user": None, "started_ts": 10_000})
    (lost,) = t.update(Snapshot(ts=90_000, state="idle", ended="done", ended_ts=5_000))  # an earlier print's
    assert (lost.kind, lost.ts, lost.error) == ("failed", 90_000, UNSAID)


def test_error_mid_print_fails_the_job_with_the_printers_text():
    t = JobTracker()
    t.update(snap(0, "printing", 5))
    events = t.update(snap(1, "error", 7, error="boom", text="Offline after error"))
    kinds = [e.kind for e in events]
    assert kinds == ["disconnected", "failed"]
    assert events[1].error == "boom"


def test_pause_and_resume():
    assert run(JobTracker(), snap(0, "printing"), snap(1, "paused"), snap(2, "paused"), snap(3, "printing"),
               snap(4, "idle", 100, ended="done")) == [("started", 0), ("paused", 1), ("resumed", 3), ("done", 4)]


def test_unreachable_keeps_the_job_open_until_octoprint_answers():
    t = JobTracker()
    assert run(t, snap(0, "printing", 10), snap(1, "unreachable"), snap(2, "unreachable"),
               snap(3, "printing", 50), snap(4, "idle", 100, ended="done")) == [("started", 0), ("done", 4)]


def test_a_restarted_agent_continues_the_saved_job_without_a_second_start():
    saved = []
    first = JobTracker(save=saved.append)
    first.update(snap(0, "printing", 10))
    second = JobTracker(job=saved[-1], save=saved.append)
    assert run(second, snap(5, "printing", 60), snap(9, "idle", 100, ended="done")) == [("done", 9)]
    assert saved[-1] is None


def test_connection_events_from_state_changes():
    assert run(JobTracker(), snap(0, "idle"), snap(1, "offline"), snap(2, "idle")) == [
        ("disconnected", 1), ("connected", 2)]


def test_octoprint_state_texts_map_to_the_small_set():
    cases = {"Operational": "idle", "Printing": "printing", "Printing from SD": "printing", "Paused": "paused",
             "Pausing": "paused", "Finishing": "finishing", "Cancelling": "cancelling", "Offline": "offline",
             "Offline after error": "error", "Error: Thermal runaway": "error", "Resuming": "printing",
             "Something new": "error"}
    assert {text: normalise(text) for text in cases} == cases


def test_the_printers_own_outcome_wins_over_progress():
    from agent.jobs import JobTracker
    from agent.printers.base import Snapshot

    tracker = JobTracker()
    tracker.update(Snapshot(ts=1_000, state="printing", file="a.gcode", progress=40.0))
    # A stop at 40 % looks like a cancel by progress; the printer says it failed.
    events = tracker.update(Snapshot(ts=2_000, state="idle", file="a.gcode", progress=40.0, ended="failed",
                                     state_text="ERROR"))
    assert [(e.kind, e.error) for e in events] == [("failed", "ERROR")]
    tracker.update(Snapshot(ts=3_000, state="printing", file="b.gcode", progress=10.0))
    events = tracker.update(Snapshot(ts=4_000, state="idle", file="b.gcode", progress=100.0, ended="cancelled"))
    assert [(e.kind, e.error) for e in events] == [("cancelled", None)]


def test_a_new_job_id_is_a_new_job_even_with_the_same_file():
    from agent.jobs import JobTracker
    from agent.printers.base import Snapshot

    tracker = JobTracker()
    tracker.update(Snapshot(ts=1_000, state="printing", file="a.gcode", job_id="7"))
    events = tracker.update(Snapshot(ts=2_000, state="printing", file="a.gcode", job_id="8"))
    assert [e.kind for e in events] == ["failed", "started"]


def _id_snap(ts, state, job_id, ended=None, text=""):
    return Snapshot(ts=ts * 1000, state=state, state_text=text or state, file="cube.gcode", job_id=job_id,
                    ended=ended, error=text or None)


def test_a_job_whose_end_was_counted_is_not_started_again_when_it_goes_on():
    # PrusaLink ATTENTION ends the job as failed; if the person at the printer lets it go on,
    # the same job id must not become a second job (and a second end).
    t = JobTracker()
    assert run(t, _id_snap(0, "printing", "7"), _id_snap(1, "error", "7", "failed", "ATTENTION"),
               _id_snap(2, "printing", "7"), _id_snap(3, "idle", None, "done")) == [
        ("started", 0), ("disconnected", 1), ("failed", 1), ("connected", 2)]
    # positive control: the next job (a new id) starts and ends as usual
    assert run(t, _id_snap(4, "printing", "8"), _id_snap(5, "idle", None, "done")) == [("started", 4), ("done", 5)]


def test_the_printers_word_on_the_end_is_used_and_persisted_job_ends_once_after_a_restart():
    saved = []
    first = JobTracker(save=saved.append)
    first.update(_id_snap(0, "printing", "7"))
    second = JobTracker(job=saved[-1], save=saved.append)  # the agent restarted mid-print
    assert run(second, _id_snap(5, "printing", "7"), _id_snap(6, "idle", None, "cancelled"),
               _id_snap(7, "idle", None, "cancelled")) == [("cancelled", 6)]
    assert saved[-1] is None


def test_an_outcome_reported_for_a_later_job_does_not_close_ours_as_that_outcome():
    # The agent was away while job 7 ended and job 8 ran to its end: the printer now says
    # "done" about job 8. Job 7's end was not seen; it must not be counted as done.
    tracker = JobTracker({"file": "a.gcode", "user": None, "started_ts": 1_000, "job_id": "7"})
    events = tracker.update(Snapshot(ts=9_000, state="idle", file="a.gcode", job_id="8", ended="done"))
    assert [(e.kind, e.error) for e in events] == [("failed", "job replaced before its end was seen")]
    tracker = JobTracker({"file": "a.gcode", "user": None, "started_ts": 1_000, "job_id": "7"})
    events = tracker.update(Snapshot(ts=9_000, state="idle", file="a.gcode", job_id="7", ended="done"))
    assert [e.kind for e in events] == ["done"]  # its own end: counted as the printer says


def test_the_end_of_a_named_job_is_remembered_across_an_agent_restart_for_any_api():
    # A printer that lets a person resume a job whose end it reported (the same job id under
    # way again) must not give a second job after the agent restarted, either.
    saved_job, saved_ids = [], []
    first = JobTracker(save=saved_job.append, ledger=Ledger(save=saved_ids.append))
    assert run(first, _id_snap(0, "printing", "7"), _id_snap(1, "idle", "7", "failed", "STOPPED")) == [
        ("started", 0), ("failed", 1)]
    second = JobTracker(saved_job[-1] if saved_job else None, saved_job.append,
                        Ledger(saved_ids[-1], saved_ids.append))
    assert run(second, _id_snap(2, "printing", "7"), _id_snap(3, "idle", None, "done")) == []
    assert run(second, _id_snap(4, "printing", "8"), _id_snap(5, "idle", None, "done")) == [
        ("started", 4), ("done", 5)]

"""Job events for printers that keep a job history (Moonraker): ends come from the history,
exactly once, across agent restarts, at the job's own times."""

from agent.jobs import JobTracker, Ledger
from agent.printers.base import PastJob, Snapshot


def past(job_id, kind="done", start=100, end=160, file="cube.gcode", user="anna", error=None):
    return PastJob(job_id, kind, start * 1000, end * 1000, file, user, print_time=55.0, filament_mm=900.0,
                   error=error)


def snap(ts, state, history=(), file="cube.gcode", job_id=None):
    return Snapshot(ts=ts * 1000, state=state, state_text=state, file=file if state != "idle" else None,
                    job_id=job_id, history=tuple(history))


def kinds(events):
    return [(e.kind, e.file, e.ts // 1000) for e in events]


def test_entries_there_when_the_history_is_first_seen_are_not_reported_but_later_ones_are():
    t = JobTracker(ledger=Ledger())
    old = [past("000001", end=50), past("000002", end=70)]
    assert t.update(snap(90, "idle", old)) == []
    new = past("000003", start=95, end=99, file="new.gcode")
    assert kinds(t.update(snap(100, "idle", old + [new]))) == [("started", "new.gcode", 95), ("done", "new.gcode", 99)]


def test_a_job_ends_from_its_history_entry_once_with_its_own_end_time_and_outcome():
    t = JobTracker(ledger=Ledger())
    t.update(snap(100, "idle"))
    assert kinds(t.update(snap(101, "printing"))) == [("started", "cube.gcode", 101)]
    t.update(snap(102, "printing", job_id="00000A"))
    assert t.update(snap(161, "idle")) == []  # idle alone ends nothing: the entry will say how
    entry = past("00000A", "failed", start=101, end=160, error="Move out of range: 1 2 3 [4]")
    (failed,) = t.update(snap(162, "idle", [entry]))
    assert (failed.kind, failed.ts, failed.error, failed.job_started) == ("failed", 160_000,
                                                                        "Move out of range: 1 2 3 [4]", 101_000)
    assert (failed.duration, failed.print_time, failed.filament_mm, failed.user) == (59.0, 55.0, 900.0, "anna")
    assert t.update(snap(163, "idle", [entry])) == []  # the same entry again: already told
    assert t.job is None


def test_a_job_named_only_after_it_ended_matches_its_entry_by_file():
    t = JobTracker(ledger=Ledger())
    t.update(snap(100, "idle"))
    t.update(snap(101, "printing"))  # ended before Moonraker named it
    (done,) = t.update(snap(102, "idle", [past("00000B", start=101, end=102)]))
    assert (done.kind, done.file, done.job_started) == ("done", "cube.gcode", 101_000)


def test_an_agent_restart_reports_a_job_that_ended_meanwhile_once_and_one_that_ran_entirely_unseen():
    saved_job, saved_ids = [], []
    first = JobTracker(save=saved_job.append, ledger=Ledger(save=saved_ids.append))
    first.update(snap(100, "idle", [past("000001", end=50)]))
    first.update(snap(101, "printing", [past("000001", end=50)], job_id="000002"))
    # The agent stops; job 2 ends at 150, job 3 runs from 160 to 170; the agent comes back.
    second = JobTracker(saved_job[-1], saved_job.append, Ledger(saved_ids[-1], saved_ids.append))
    history = [past("000001", end=50), past("000002", start=101, end=150),
               past("000003", start=160, end=170, file="unseen.gcode", user="erik")]
    events = second.update(snap(200, "idle", history))
    assert kinds(events) == [("done", "cube.gcode", 150), ("started", "unseen.gcode", 160),
                             ("done", "unseen.gcode", 170)]
    assert events[0].job_started == 101_000 and events[2].job_started == 160_000
    third = JobTracker(saved_job[-1], saved_job.append, Ledger(saved_ids[-1], saved_ids.append))
    assert third.update(snap(201, "idle", history)) == []  # and again after another restart
    assert saved_job[-1] is None and saved_ids[-1] == {"ids": ["000001", "000002", "000003"]}


def test_a_printing_snapshot_of_a_job_already_told_starts_nothing():
    t = JobTracker(ledger=Ledger())
    t.update(snap(100, "idle"))
    t.update(snap(101, "printing", job_id="00000C"))
    t.update(snap(110, "printing", [past("00000C", start=101, end=109)], job_id="00000C"))
    assert t.job is None
    # A late "printing" frame for the job that just ended, then the next job.
    assert t.update(snap(111, "printing", [past("00000C", start=101, end=109)], job_id="00000C")) == []
    assert kinds(t.update(snap(112, "printing", [past("00000C", start=101, end=109)], job_id="00000D"))) == [
        ("started", "cube.gcode", 112)]


def test_printers_without_a_history_keep_the_ids_of_their_ended_jobs_in_the_ledger():
    written = []
    t = JobTracker(ledger=Ledger(save=written.append))
    for s in (Snapshot(0, "printing", file="a.gcode", job_id="7"), Snapshot(1000, "idle", ended="done")):
        t.update(s)
    assert written == [{"ids": ["7"]}] and t.job is None


def test_a_ledger_saved_by_an_older_agent_is_taken_as_not_seen():
    t = JobTracker(ledger=Ledger(["000001"]))  # plain Moonraker ids, which are reused
    assert t.update(snap(90, "idle", [past("000001@5", end=50)])) == []  # first sight: known, not late

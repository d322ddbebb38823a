"""Job events counted per job, so that a job end stored twice shows.

A redelivered message lands on its own InfluxDB point again (same series, same time), so a
plain point count never sees it twice. The double counts that matter are one job's end sent
twice under two timestamps (an agent restart, a replay, a collector restart): two points of
the same job. A job is named by its printer and start time: ``started`` events carry it as
their time, every later event of the job in ``job_started``.
"""

from __future__ import annotations

from collections import Counter

from devkit.pipeline import DB, wait_for

JOB_KINDS = ("started", "done", "failed", "cancelled")


def events_per_job(influx, printer: str | None = None) -> dict[tuple[str, int], Counter]:
    """(printer, job start ms) -> Counter of its started/done/failed/cancelled points."""
    where = f" WHERE printer = '{printer}'" if printer else ""
    rows = influx.query(f"SELECT seq, job_started, kind, printer FROM job{where}", db=DB)
    jobs: dict[tuple[str, int], Counter] = {}
    for row in rows:
        if row["kind"] in JOB_KINDS:
            start = row["time"] if row["kind"] == "started" else row["job_started"]
            jobs.setdefault((row["printer"], start), Counter())[row["kind"]] += 1
    return jobs


def ends(counts: Counter) -> int:
    return sum(n for kind, n in counts.items() if kind != "started")


def assert_each_job_started_and_ended_once(jobs: dict[tuple[str, int], Counter]) -> None:
    wrong = {job: dict(c) for job, c in jobs.items() if c["started"] != 1 or ends(c) != 1}
    assert not wrong, f"jobs not started and ended exactly once: {wrong}"


def wait_later_telemetry(influx, printer: str, after_seq: int, polls: int = 3, timeout: float = 30) -> None:
    """The positive control of "no second event": wait until telemetry of ``polls`` polls sent
    after ``after_seq`` is stored. A worker numbers all its messages in one sequence and they
    travel one connection and one collector in order, so an event the agent sent before those
    polls would be stored by now."""
    q = f"SELECT count(seq) FROM telemetry WHERE printer = '{printer}' AND seq > {after_seq}"
    wait_for(lambda: (influx.query(q, db=DB) or [{"count": 0}])[0]["count"] >= polls, timeout,
             f"{polls} polls of {printer} after seq {after_seq} in InfluxDB", interval=0.05)

"""The XLSX workbook written by a forked child while this process does the rest of the report.

A year's job list is ~100,000 rows, over a million cells and seconds of XlsxWriter, and it is
known as soon as the job events are in. ``XlsxAhead`` forks its child the moment the job list is
made: the child inherits it (copy-on-write, nothing pickled: a year's rows cost ~0.5 s to pickle
and as much to unpickle) and writes the job sheet while this process still reads and accounts;
the finished report (without its job list: small) follows through a pipe, then the other sheets.
Given a finished report instead, the child inherits it and writes everything. The workbook holds
the same cells as ``xlsx.write`` makes of the finished report (a test holds them equal).

The fork happens while the report's reader threads wait on influxd: the child uses none of their
state (no sockets, no locks they hold), and what it runs is imported before the fork.
"""

from __future__ import annotations

import dataclasses
import gc
import multiprocessing
import threading
from pathlib import Path


class XlsxAhead:
    """A forked child writing one workbook. ``jobs`` starts it with the job list, ``send_report``
    sends the rest, ``wait`` waits for the file; ``close`` before ``send_report`` ends it without a
    file. No child until then: a report failing before its job list leaves nothing to end."""

    def __init__(self, path: Path, lang: str, csv_jobs: Path | None = None):
        """``csv_jobs``: where the child also writes the job list's CSV, after the job sheet (the CSV
        of the rest is written by the parent, ``csv.write(jobs_written=True)``)."""
        self.path, self.lang, self.csv_jobs = Path(path), lang, csv_jobs
        self.jobs_csv_written = False  # by the child: the job list came first
        self.child: multiprocessing.Process | None = None
        self.send = None
        self.sender: threading.Thread | None = None

    def jobs(self, rows: list, users_shown: str) -> None:
        """Start the child on the job list (it inherits ``rows``, which must not change after)."""
        self._fork(_write_jobs_then_rest, (rows, users_shown, self.csv_jobs))
        self.jobs_csv_written = self.csv_jobs is not None

    def send_report(self, report) -> None:
        """The finished report: what the child still needs of it. Sent by a thread: the child reads
        it only once its job sheet is written, and this process has other files to write meanwhile."""
        if self.child is None:
            self._fork(_write_all, (report,))  # no job list came first: it inherits the whole report
            return
        from server.reports import cost_tables
        lean = dataclasses.replace(report, jobs=[], cost=cost_tables.without_jobs(report, self.lang))
        self.sender = threading.Thread(target=self._send_last, args=(lean,),
                                       name="report-xlsx-send", daemon=True)
        self.sender.start()

    def _fork(self, work, args: tuple) -> None:
        from server.reports import csv, tables, xlsx  # noqa: F401  imported here, not in the child (see above)
        ctx = multiprocessing.get_context("fork")
        receive, self.send = ctx.Pipe(duplex=False)
        # fork: the child starts from this process as it is, nothing pickled or re-imported. Frozen
        # objects are skipped by the collector, so neither side's GC touches (and copies) shared pages.
        gc.freeze()
        try:
            self.child = ctx.Process(target=_child, args=(receive, self.send, self.path, self.lang, work, args),
                                     name="report-xlsx", daemon=True)
            self.child.start()
        finally:
            gc.unfreeze()
        receive.close()

    def _send_last(self, message) -> None:
        try:
            self.send.send(message)
        except OSError:  # the child ended early: wait() says so with its exit code
            pass
        self.send.close()

    def wait(self) -> Path:
        if self.sender is not None:
            self.sender.join()
        self.child.join()
        if self.child.exitcode != 0:
            raise RuntimeError(f"writing {self.path.name} failed (exit code {self.child.exitcode}); see the log above")
        return self.path

    def close(self) -> None:
        if self.child is None:
            return
        if self.sender is not None:
            self.sender.join()
        if not self.send.closed:
            self.send.close()  # the child reads the end of the pipe and stops without a workbook
        self.child.join()


def _child(receive, send, path: Path, lang: str, work, args: tuple) -> None:
    gc.disable()  # a short-lived process: collecting would only copy pages
    send.close()  # its copy of the writing end: else it would never read the end of the pipe
    work(receive, path, lang, *args)


def _write_all(receive, path: Path, lang: str, report) -> None:
    from server.reports import xlsx
    xlsx.write(report, lang, path)


def _write_jobs_then_rest(receive, path: Path, lang: str, rows: list, users_shown: str,
                          csv_jobs: Path | None) -> None:
    from server.reports import csv, tables, xlsx
    book = xlsx.Book(path, lang)
    jobs = tables.job_table(rows, users_shown, lang)
    book.table(jobs)
    if csv_jobs is not None:  # while the parent is still accounting: off its path
        csv.write_table(jobs, csv_jobs)
    try:
        report = receive.recv()
    except EOFError:  # the report failed: no workbook, and no job list without the rest
        book.discard()
        if csv_jobs is not None:
            csv_jobs.unlink(missing_ok=True)
        raise SystemExit(3) from None
    book.about(report)
    for table in tables.report_tables(report, lang):
        book.table(table)
    book.close()

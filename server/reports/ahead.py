"""The XLSX workbook written by a forked child while this process does the rest of the report.

A year's job list is ~100,000 rows, over a million cells and seconds of XlsxWriter, and it is
known as soon as the job events are in. ``XlsxAhead`` forks its child before the report starts
reading (no reader threads yet: nothing half-way to copy), sends it the job list through a pipe as
soon as it is made, and the finished report (without its job list: small) when the files are
written: the child writes the job sheet while this process still reads and accounts, then the
other sheets. Given a finished report instead, the child inherits it and writes everything.
The workbook holds the same cells as ``xlsx.write`` makes of the finished report (a test holds
them equal).
"""

from __future__ import annotations

import dataclasses
import gc
import multiprocessing
import threading
from pathlib import Path


class XlsxAhead:
    """A forked child writing one workbook. ``jobs`` sends it the job list, ``send_report`` the
    rest, ``wait`` waits for the file; ``close`` before ``send_report`` ends it without a file."""

    def __init__(self, path: Path, lang: str, report=None):
        self.path, self.lang = Path(path), lang
        self.sent_jobs = report is not None
        self.sender: threading.Thread | None = None
        ctx = multiprocessing.get_context("fork")
        receive, self.send = ctx.Pipe(duplex=False)
        # fork: the child starts from this process as it is, nothing pickled or re-imported. Frozen
        # objects are skipped by the collector, so neither side's GC touches (and copies) shared pages.
        gc.freeze()
        try:
            self.child = ctx.Process(target=_child, args=(receive, self.send, self.path, lang, report), name="report-xlsx",
                                     daemon=True)
            self.child.start()
        finally:
            gc.unfreeze()
        receive.close()
        if report is not None:
            self.send.close()

    def jobs(self, rows: list, users_shown: str) -> None:
        self._send((rows, users_shown))
        self.sent_jobs = True

    def send_report(self, report) -> None:
        """The finished report: what the child still needs of it. Sent by a thread: the child reads
        it only once its job sheet is written, and this process has other files to write meanwhile."""
        if self.send.closed:
            return  # it has it
        if not self.sent_jobs:
            self.jobs(report.jobs, report.users_shown)
        self.sender = threading.Thread(target=self._send_last, args=(dataclasses.replace(report, jobs=[]),),
                                       name="report-xlsx-send", daemon=True)
        self.sender.start()

    def _send_last(self, message) -> None:
        self._send(message)
        self.send.close()

    def wait(self) -> Path:
        if self.sender is not None:
            self.sender.join()
        self.child.join()
        if self.child.exitcode != 0:
            raise RuntimeError(f"writing {self.path.name} failed (exit code {self.child.exitcode}); see the log above")
        return self.path

    def close(self) -> None:
        if self.sender is not None:
            self.sender.join()
        if not self.send.closed:
            self.send.close()  # the child reads the end of the pipe and stops without a workbook
        self.child.join()

    def _send(self, message) -> None:
        try:
            self.send.send(message)
        except OSError:  # the child ended early: wait() says so with its exit code
            pass


def _child(receive, send, path: Path, lang: str, report) -> None:
    gc.disable()  # a short-lived process: collecting would only copy pages
    send.close()  # its copy of the writing end: else it would never read the end of the pipe
    from server.reports import tables, xlsx

    if report is not None:
        xlsx.write(report, lang, path)
        return
    try:
        rows, users_shown = receive.recv()
        book = xlsx.Book(path, lang)
        book.table(tables.job_table(rows, users_shown, lang))
        report = receive.recv()
    except EOFError:  # the report failed: no workbook
        raise SystemExit(3) from None
    book.about(report)
    for table in tables.report_tables(report, lang):
        book.table(table)
    book.close()

"""One report run: read InfluxDB, build the report, write the requested files."""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import multiprocessing
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from server.attribution import Attribution
from server.inventory import Inventory
from server.reports import build as build_mod
from server.reports import csv as csv_out
from server.reports import indicators, labels, periods, query, timelines
from server.reports import maintenance as report_maintenance
from server.reports.ahead import XlsxAhead
from server.reports.people import People
from server.reports.periods import Period
from server.reports.query import Reader
from server.store.influx import InfluxError, InfluxHTTP

log = logging.getLogger(__name__)


def _few_collections(fn):
    """``fn`` with Python's cyclic garbage collector paused. A report makes millions of objects
    that live until it is written (points, rows, cells); the collector would scan them again each
    time the heap grew by a quarter (for a year, seconds: see docs/reports.md "Speed"), while they
    hold no cycles worth collecting. Reference counting still frees what is dropped;
    the collector resumes after (and did not run meanwhile in the forked children either)."""
    @functools.wraps(fn)
    def paused(*args, **kwargs):
        was = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if was:
                gc.enable()
    return paused


@_few_collections
def make_report(client: InfluxHTTP, inventory: Inventory, period: Period, now_ms: int | None = None,
                grace_s: float = 120.0, progress: Callable[[str], None] = lambda step: None,
                people: People | None = None, compare: bool = True, ahead: XlsxAhead | None = None,
                sources: query.Sources = query.HERE, detail: bool = True, use_rollups: bool = True) -> build_mod.Report:
    """The report of ``period``; with ``compare`` also the period before it (key figures, new customers).
    ``ahead`` gets the job list as soon as it is known, to write it while the rest is read.
    ``sources``: the databases read (docs/organisations.md); ``detail`` False leaves every file name
    and user out of the job list (the network's report): the figures stay the same."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    people = people or People()
    if people.pseudonyms is not None:
        people.stored_keys = query.key_ids(client, sources)
    if people.show == "name" and detail:
        people.names = query.raw_names(client, period.start_ms, period.end_ms, sources)
    before = periods.before(period)
    previous = (_previous(client, inventory, before, now_ms, grace_s, people, period, sources)
                if compare else None)
    # The maintenance section's look-ups (server/reports/maintenance.py) on connections of their own,
    # while the rest is read: they need only the period, and would otherwise wait for it all.
    # The period's jobs come from the events read below (``period_jobs``), not read a second time.
    period_jobs: Future = Future()
    upkeep = _beside(report_maintenance.rows, client.clone(), inventory, period,
                     timelines.counted_until(period.start_ms, period.end_ms, now_ms), use_rollups, sources,
                     notes=detail, period_jobs=period_jobs.result)  # ``use_rollups``: [rollups] enabled
    jobs: list[build_mod.JobRow] = []
    shown = (lambda rows: rows) if detail else _without_detail

    def jobs_in(data: query.RawData) -> None:
        jobs.extend(shown(build_mod.job_rows(data, inventory, period, people)))
        ahead.jobs(jobs, people.show)
    reader = Reader(client, int(grace_s * 1000), progress, on_jobs=jobs_in if ahead else lambda data: None,
                    sources=sources)
    try:
        data = reader.fetch(period.start_ms, period.end_ms, now_ms)
    except BaseException as exc:
        period_jobs.set_exception(exc)  # the section's thread must not wait for ever
        raise
    period_jobs.set_result([(j.ts, j.site, j.printer, j.filament_mm, j.duration) for j in data.jobs
                            if j.kind in report_maintenance.ENDED])
    earlier = previous() if previous else None
    since = (earlier.project_before if earlier
             else project_before(client, inventory, period, people, sources=sources))
    report = build_mod.build(data, inventory, period, now_ms, people, earlier,
                             jobs=jobs if ahead else None, project_before=since)
    report.jobs = shown(report.jobs)
    report.maintenance = upkeep()
    progress("accounting")
    return report


def _beside(fn: Callable, *args, **kwargs) -> Callable:
    """``fn(*args, **kwargs)`` run by a thread; a function that waits for its result (or raises its error)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-beside")
    found = pool.submit(fn, *args, **kwargs)
    pool.shutdown(wait=False)
    return found.result


def project_before(client: InfluxHTTP, inventory: Inventory, period: Period, people: People,
                   known: query.RawData | None = None, sources: query.Sources = query.HERE) -> dict | None:
    """Each customer's use (``indicators.uses``) since the project's start up to ``period``: the
    job events of that range, attributed. None without a [project]. ``known``: data read already
    (pseudonymised) that ends where ``period`` starts, the previous period's: only what lies
    before it is read."""
    if inventory.project is None:
        return None
    low, high = inventory.project.bounds_ms(period.tz)
    high = min(high, period.start_ms)
    if low >= high:
        return {}
    reuse = known is not None and known.end_ms == high and known.pseudonymous
    until = max(low, known.start_ms) if reuse else high
    data = query.RawData(low, until, jobs=Reader(client, sources=sources).job_events(low, until) if low < until else [])
    build_mod.pseudonymise(data, people)
    jobs = data.jobs + (known.jobs if reuse else [])
    spans = indicators.attributed_spans(jobs, Attribution(inventory, people.pseudonyms))
    return indicators.uses(spans, inventory.research_sites(), low, high)


def _without_detail(rows: list[build_mod.JobRow]) -> list[build_mod.JobRow]:
    """The job list without file names and users."""
    for row in rows:
        row.file = row.user = ""
    return rows


def _previous(client, inventory, before: Period, now_ms: int, grace_s: float, people: People,
              period: Period, sources: query.Sources = query.HERE) -> Callable:
    """The previous period's figures, and the uses since the project's start before ``period``,
    read and accounted by a forked child while this process does the period itself (on two cores
    the comparison and the project's earlier jobs then cost little time); a function that waits
    for them. Without fork: read here, when asked."""
    args = (client, inventory, before, now_ms, grace_s, people, period, sources)
    if not _can_fork():
        return lambda: _previous_figures(*args)
    receive, send = multiprocessing.get_context("fork").Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(target=_previous_child, args=(send, *args),
                                                        name="report-previous", daemon=True)
    child.start()
    send.close()

    def wait() -> build_mod.Report:
        try:
            kind, value = receive.recv()
        except EOFError:
            kind, value = "error", f"the child reading {before.label} ended (exit code {child.exitcode})"
        child.join()
        if kind == "error":
            raise InfluxError(value)
        return value
    return wait


def _previous_child(send, client, *args) -> None:
    gc.disable()  # short-lived: collecting would only copy the parent's pages
    try:
        send.send(("ok", _previous_figures(client.clone(), *args)))
    except Exception as exc:  # the parent reports it, as it would its own
        send.send(("error", f"{type(exc).__name__}: {exc}"))


def _previous_figures(client, inventory, before: Period, now_ms: int, grace_s: float,
                      people: People, period: Period, sources: query.Sources = query.HERE) -> build_mod.Report:
    """What the comparison uses of the previous period: network and county figures, customers;
    and, for the indicators of ``period``, the uses since the project's start before it."""
    data = Reader(client, int(grace_s * 1000), sources=sources).fetch(before.start_ms, before.end_ms, now_ms)
    report = build_mod.build(data, inventory, before, now_ms, people, details=False)
    report.project_before = project_before(client, inventory, period, people, known=data, sources=sources)
    report.usages = []
    report.groupings = {g: report.groupings[g] for g in ("network", "county")}
    return report


@_few_collections
def write_files(report: build_mod.Report, formats: list[str], out_dir: str | Path, lang: str,
                progress: Callable[[str], None] = lambda step: None, ahead: XlsxAhead | None = None) -> list[Path]:
    """Write each format; a large XLSX is written by a forked child while this process does the rest
    (see ahead.py), and so are a large report's PDF and summary (matplotlib's text layout: ~2 CPU-s
    whatever the period) beside the CSV. ``ahead``: the child that has been writing the XLSX since the job
    list was known (xlsx_ahead). The paths come in the order of ``formats``."""
    labels.check(lang)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = _stem(report.period, lang)
    large = len(report.jobs) >= FORK_XLSX_ABOVE and len(formats) > 1 and _can_fork()
    # The PDFs beside the rest, forked first: the child makes the cost sums it needs itself, while
    # this process makes them and the billing rows for the XLSX child and the CSV (two cores even).
    drawn = [fmt for fmt in ("pdf", "summary") if fmt in formats] if large else []
    aside = _aside(lambda: [_write(report, fmt, out, stem, lang) for fmt in drawn], "report-pdf") if drawn else None
    if "xlsx" in formats and ahead is None and large:
        ahead = XlsxAhead(out / f"{stem}.xlsx", lang)  # forked below: it inherits the report
    if "xlsx" in formats and ahead is not None:
        ahead.send_report(report)
    paths: dict[str, list[Path]] = {}
    for fmt in formats:
        if fmt == "xlsx" and ahead is not None or fmt in drawn and aside is not None:
            continue
        paths[fmt] = _write(report, fmt, out, stem, lang, jobs_written=ahead is not None and ahead.jobs_csv_written)
        progress(fmt)
    if aside is not None:
        aside()
        for fmt in drawn:
            paths[fmt] = [_path(fmt, out, stem, report, lang)]
            progress(fmt)
    if "xlsx" in formats and ahead is not None:
        paths["xlsx"] = [ahead.wait()]
        progress("xlsx")
    written = [p for fmt in formats for p in paths[fmt]]
    log.info("report %s (%s) written: %s", report.period.label, lang, ", ".join(p.name for p in written))
    return written


def _write(report: build_mod.Report, fmt: str, out: Path, stem: str, lang: str,
           jobs_written: bool = False) -> list[Path]:
    if fmt == "xlsx":
        return [_write_xlsx(report, lang, _path(fmt, out, stem, report, lang))]
    if fmt == "pdf":
        from server.reports import pdf  # matplotlib: imported only when a PDF is asked for
        return [pdf.write(report, lang, _path(fmt, out, stem, report, lang))]
    if fmt == "summary":
        from server.reports import summary
        return [summary.write(report, lang, _path(fmt, out, stem, report, lang), f"{stem}.pdf")]
    if fmt == "csv":
        return csv_out.write(report, lang, out, stem, jobs_written=jobs_written)
    raise ValueError(f"unknown format {fmt!r}")


def _path(fmt: str, out: Path, stem: str, report: build_mod.Report, lang: str) -> Path:
    if fmt == "summary":
        return out / f"printfarm-summary-{report.period.label}-{lang}.pdf"
    return out / f"{stem}.{fmt}"


def _aside(work: Callable[[], object], name: str) -> Callable[[], None]:
    """``work`` done by a forked child (it inherits everything: nothing pickled); a function that
    waits for it and raises if it failed. What the child runs is imported here, before the fork."""
    from server.reports import pdf, summary  # noqa: F401
    gc.freeze()  # neither side's collector then touches (and copies) the shared pages
    try:
        child = multiprocessing.get_context("fork").Process(target=_aside_child, args=(work,), name=name, daemon=True)
        child.start()
    finally:
        gc.unfreeze()

    def wait() -> None:
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"{name} failed (exit code {child.exitcode}); see the log above")
    return wait


def _aside_child(work: Callable[[], object]) -> None:
    gc.disable()  # short-lived: collecting would only copy the parent's pages
    work()


FORK_XLSX_ABOVE = 20_000  # job rows


@contextlib.contextmanager
def xlsx_ahead(period: Period, formats: list[str], out_dir: str | Path, lang: str):
    """For ``make_report(ahead=)`` and ``write_files(ahead=)``: the child that writes the XLSX of
    ``period`` while the report is read and accounted; None without an XLSX or without fork.
    Ended whatever happens (without a workbook if the report failed)."""
    if "xlsx" not in formats or not _can_fork():
        yield None
        return
    labels.check(lang)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = _stem(period, lang)
    ahead = XlsxAhead(out / f"{stem}.xlsx", lang, csv_out.path_of(out, stem, "jobs") if "csv" in formats else None)
    try:
        yield ahead
    finally:
        ahead.close()


def _stem(period: Period, lang: str) -> str:
    return f"printfarm-report-{period.label}-{lang}"


def _write_xlsx(report, lang: str, path: Path) -> Path:
    from server.reports import xlsx
    return xlsx.write(report, lang, path)


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def people_for(cfg, show: str | None = None) -> People:
    """How reports made with this server config treat user names: the collector's secret, and
    [privacy] users unless ``show`` says otherwise (report --users)."""
    return People(cfg.privacy.pseudonyms(cfg.state_dir), show or cfg.privacy.users)

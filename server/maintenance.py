"""Maintenance: the services recorded, the counters since the last one, and what is due
(docs/maintenance.md).

A service is a point of measurement ``maintenance`` (tags printer, site, organisation, county;
field ``note``, the lab's free text: no user name) in the long-kept retention policy. With a database
per organisation it is written to the network's database and to the printer's organisation's; the
counters and the alert read the network's, which holds every printer's job events and rollups.

Counters since the last service (or, with none recorded, since the printer's ``added`` date or
its first data): jobs ended (done, failed, cancelled), filament (the job events' ``filament_mm``),
and printing hours — from the hourly rollups where they run (counted from the hour of the service
on), else the ended jobs' durations (also where the database has no rollups retention policy).
Two statements per printer with an interval or a service, a hundred to a request; the collector's
check adds the last day to counters settled every few hours (``settle``), and a report counts the
period's jobs from the events it read (``tally``), so neither re-reads every job since the service.
The collector's check also writes what it found (measurement ``service_counters``) for Grafana.
"""

from __future__ import annotations

import calendar
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterable

from common.text import cut, plain
from server import lineproto
from server.inventory import Inventory
from server.maintenance_intervals import Interval
from server.reports.query import HERE, Sources
from server.store.influx import InfluxError, InfluxHTTP, rows
from server.store.layout import LONG_RP, ROLLUP_RP

log = logging.getLogger(__name__)

MEASUREMENT = "maintenance"
NOTE_LIMIT = 500  # characters of a note kept
HOUR_MS = 3_600_000
STATEMENTS_PER_QUERY = 100


@dataclass(frozen=True, slots=True)
class Counters:
    hours: float = 0.0
    jobs: int = 0
    filament_m: float = 0.0


@dataclass(frozen=True, slots=True)
class ServiceState:
    """One printer's maintenance as last checked: what the service_due rule and the CLI show."""

    site: str
    printer: str
    last_service_ms: int | None  # None: no service recorded
    counted_from_ms: int | None  # the last service, else the printer's added date, else None (all data)
    counters: Counters
    interval: Interval | None
    due: tuple[str, ...] = field(default=())  # what passed its interval: "12.5 of 10 printing hours"
    counted: bool = True  # False: no interval and no service, so not counted (zero counters)


# --- recording ----------------------------------------------------------------------------------


def service_line(inventory: Inventory, site: str, printer: str, note: str, ts_ms: int) -> str:
    t = inventory.tags(site, printer)
    tags = {"county": t.county, "listed": "true" if t.listed else "false", "organisation": t.organisation,
            "printer": printer, "site": site}
    return lineproto.point(MEASUREMENT, tags, [("note", cut(plain(note), NOTE_LIMIT))], ts_ms)  # one line


def record(client: InfluxHTTP, databases: list[str], line: str, ts_ms: int, site: str, printer: str) -> None:
    """Write the service into every one of ``databases``, or into none: a failed write takes back
    the ones before it (InfluxError then says what failed). Each write is read back: InfluxDB
    answers a point it rejects (400) without an error the client raises."""
    done: list[str] = []
    for db in databases:
        try:
            client.write(line.encode(), rp=LONG_RP, db=db)
            done.append(db)
            if not rows(client.query(f'SELECT "note" FROM {HERE.of(LONG_RP, MEASUREMENT)} WHERE '
                                     f'{_where(site, printer)} AND time = {ts_ms}ms', db=db)):
                raise InfluxError(f"database {db!r} did not keep the service (see the error above)")
        except InfluxError:
            _take_back(client, done, ts_ms, site, printer)
            raise


def _take_back(client: InfluxHTTP, databases: list[str], ts_ms: int, site: str, printer: str) -> None:
    for db in databases:
        try:
            client.query(f'DELETE FROM "{MEASUREMENT}" WHERE {_where(site, printer)} AND time = {ts_ms}ms', db=db)
        except InfluxError as exc:
            log.error("maintenance: could not take back the half-recorded service in %s (%s)", db, exc)


COUNTERS = "service_counters"


def counters_line(inventory: Inventory, s: "ServiceState", ts_ms: int) -> str:
    """The collector's check as a point, for the Grafana maintenance panel (dashboards/printer.py)."""
    t = inventory.tags(s.site, s.printer)
    tags = {"county": t.county, "listed": "true" if t.listed else "false", "organisation": t.organisation,
            "printer": s.printer, "site": s.site}
    last = datetime.fromtimestamp(s.last_service_ms / 1000, timezone.utc).strftime("%Y-%m-%d") \
        if s.last_service_ms is not None else "never"
    c = s.counters
    fields = [("hours", float(c.hours)), ("jobs", c.jobs), ("filament_m", float(c.filament_m)),
              ("due", "; ".join(s.due) or "no"), ("last_service", last)]
    return lineproto.point(COUNTERS, tags, fields, ts_ms)


# --- reading ------------------------------------------------------------------------------------


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _where(site: str, printer: str) -> str:
    return f'"site" = {_quote(site)} AND "printer" = {_quote(printer)}'


def last_services(client: InfluxHTTP, db: str | None = None, sources: Sources = HERE,
                  until_ms: int | None = None) -> dict[tuple[str, str], tuple[int, str]]:
    """(site, printer) -> (time in ms, note) of its last recorded service (before ``until_ms``)."""
    before = f" WHERE time < {until_ms}ms" if until_ms is not None else ""
    found = rows(client.query(f'SELECT last("note") AS "note" FROM {sources.of(LONG_RP, MEASUREMENT)}{before} '
                              'GROUP BY "site", "printer"', db=db))
    return {(r["site"], r["printer"]): (int(r["time"]), r["note"]) for r in found}


def services_between(client: InfluxHTTP, start_ms: int, end_ms: int, sources: Sources = HERE) -> dict[tuple, int]:
    """(site, printer) -> how many services were recorded in [start, end)."""
    found = rows(client.query(f'SELECT count("note") AS "n" FROM {sources.of(LONG_RP, MEASUREMENT)} '
                              f'WHERE time >= {start_ms}ms AND time < {end_ms}ms GROUP BY "site", "printer"'))
    return {(r["site"], r["printer"]): int(r["n"]) for r in found}


def counters(client: InfluxHTTP, since: dict[tuple[str, str], int | None], use_rollups: bool,
             db: str | None = None, sources: Sources = HERE, until_ms: int | None = None,
             jobs_until_ms: int | None = None) -> dict[tuple[str, str], Counters]:
    """Each printer's counters from its ``since`` time (ms; None: all its data) on, up to ``until_ms``;
    the job events only up to ``jobs_until_ms`` if given (a report counts the rest from the job
    events it read: ``tally``). ``use_rollups`` only where ``rollups_kept``: a statement on a
    missing retention policy fails the whole request ("not executed")."""
    keys, each = list(since), 2 if use_rollups else 1  # statements per printer
    out: dict[tuple[str, str], Counters] = {}
    for start in range(0, len(keys), STATEMENTS_PER_QUERY // each):
        chunk = keys[start:start + STATEMENTS_PER_QUERY // each]
        statements = []
        for site, printer in chunk:
            statements += _statements(site, printer, since[(site, printer)], use_rollups, sources, until_ms,
                                      jobs_until_ms)
        results = client.query(";".join(statements), db=db)
        for i, key in enumerate(chunk):
            out[key] = _counters(results[each * i:each * i + each], use_rollups)
    return out


def tally(events, since: dict[tuple[str, str], int | None], from_ms: int, until_ms: int,
          durations: bool) -> dict[tuple[str, str], Counters]:
    """``counters`` of job events already read — ``(ts, site, printer, filament_mm, duration)``
    of jobs ended (done, failed, cancelled) from ``from_ms`` on — from each printer's ``since``
    up to ``until_ms``; hours from the durations if ``durations``."""
    found: dict[tuple[str, str], list] = {}
    for ts, site, printer, filament_mm, duration in events:
        key = (site, printer)
        if key not in since or ts < from_ms or ts >= until_ms or (since[key] is not None and ts < since[key]):
            continue
        c = found.setdefault(key, [0, 0.0, 0.0])
        c[0] += 1
        c[1] += filament_mm or 0.0
        c[2] += duration or 0.0
    return {key: Counters(hours=d / 3600 if durations else 0.0, jobs=n, filament_m=f / 1000)
            for key, (n, f, d) in found.items()}


def plus(a: Counters, b: Counters) -> Counters:
    return Counters(a.hours + b.hours, a.jobs + b.jobs, a.filament_m + b.filament_m)


_told: set[tuple[str, ...]] = set()  # the databases whose missing rollups were logged (once each)


def rollups_kept(client: InfluxHTTP, db: str | None = None, sources: Sources = HERE) -> bool:
    """Whether every database read has the rollups' retention policy (one request)."""
    databases = sources.databases or (db or client.database,)
    found = client.query(";".join(f'SHOW RETENTION POLICIES ON "{d}"' for d in databases), db=db)
    # An error (no such database) counts as missing: the jobs' durations then, not a failure here.
    missing = tuple(d for d, result in zip(databases, found)
                    if "error" in result or not any(r.get("name") == ROLLUP_RP for r in rows([result])))
    if missing and missing not in _told:
        _told.add(missing)
        log.warning("maintenance: no %r retention policy in %s (the rollups have not run there): printing "
                    "hours counted from the ended jobs' durations", ROLLUP_RP, ", ".join(missing))
    return not missing


def _statements(site: str, printer: str, since_ms: int | None, use_rollups: bool, sources: Sources,
                until_ms: int | None, jobs_until_ms: int | None = None) -> list[str]:
    after = f" AND time >= {since_ms}ms" if since_ms is not None else ""
    jobs_until_ms = until_ms if jobs_until_ms is None else jobs_until_ms
    bounded = after + (f" AND time < {jobs_until_ms}ms" if jobs_until_ms is not None else "")
    durations = "" if use_rollups else ', sum("duration") AS "duration"'  # the hours' other source
    jobs = (f'SELECT count("count") AS "jobs", sum("filament_mm") AS "filament_mm"{durations} '
            f'FROM {sources.job} WHERE {_where(site, printer)} AND '
            f'("kind" = \'done\' OR "kind" = \'failed\' OR "kind" = \'cancelled\'){bounded}')
    if not use_rollups:
        return [jobs]
    hour = f" AND time >= {since_ms // HOUR_MS * HOUR_MS}ms" if since_ms is not None else ""
    hour += f" AND time < {until_ms}ms" if until_ms is not None else ""
    printing = (f'SELECT sum("printing_ms") AS "printing_ms" FROM {sources.of(ROLLUP_RP, "utilisation")} '
                f'WHERE {_where(site, printer)}{hour}')
    return [jobs, printing]


def _counters(results: list[dict], use_rollups: bool) -> Counters:
    job = (rows(results[:1]) or [{}])[0]
    if use_rollups:
        printing = (rows(results[1:2]) or [{}])[0].get("printing_ms") or 0
        hours = printing / HOUR_MS
    else:
        hours = (job.get("duration") or 0.0) / 3600
    return Counters(hours=hours, jobs=int(job.get("jobs") or 0), filament_m=(job.get("filament_mm") or 0.0) / 1000)


# --- what is due ----------------------------------------------------------------------------------


def add_months(ms: int, months: int) -> int:
    """``ms`` plus calendar months (UTC), the day clamped to the month's last."""
    t = datetime.fromtimestamp(ms / 1000, timezone.utc)
    index = t.month - 1 + months
    year, month = t.year + index // 12, index % 12 + 1
    day = min(t.day, calendar.monthrange(year, month)[1])
    return int(t.replace(year=year, month=month, day=day).timestamp() * 1000)


def due(interval: Interval | None, c: Counters, last_service_ms: int | None, counted_from_ms: int | None,
        now_ms: int) -> tuple[str, ...]:
    """What passed its interval, one phrase each; () when nothing is due."""
    if interval is None:
        return ()
    out = []
    if interval.service_hours is not None and c.hours >= interval.service_hours:
        out.append(f"{c.hours:.1f} of {interval.service_hours:g} printing hours")
    if interval.service_jobs is not None and c.jobs >= interval.service_jobs:
        out.append(f"{c.jobs} of {interval.service_jobs} jobs")
    start = last_service_ms if last_service_ms is not None else counted_from_ms
    if interval.service_months is not None and start is not None and \
            now_ms >= add_months(start, interval.service_months):
        out.append(f"{interval.service_months} months")
    return tuple(out)


def added_ms(inventory: Inventory, printer: str) -> int | None:
    entry = inventory.printers.get(printer)
    if entry is None or not entry.added:
        return None
    try:
        day = datetime.fromisoformat(entry.added)
    except ValueError:
        return None
    return int(day.replace(tzinfo=day.tzinfo or timezone.utc).timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class Settled:
    """Counters up to ``until_ms`` (an hour's start) of each printer counted from ``since``: the
    collector's check (maintenance_watch.py) asks InfluxDB only for what came after, so a check
    costs the last day's statements, not every job since the last service."""

    at_ms: int  # when they were read
    until_ms: int
    use_rollups: bool
    counters: dict[tuple[str, str], tuple[int | None, Counters]]  # (since, counters up to until_ms)


SETTLE_MS = 24 * HOUR_MS  # data older than this is taken as settled (a spooling agent sends later: re-read)


def settle(client: InfluxHTTP, inventory: Inventory, use_rollups: bool, now_ms: int, db: str | None = None
           ) -> Settled:
    """The counters up to the hour that began a day before ``now_ms``, of every printer counted."""
    until = (now_ms - SETTLE_MS) // HOUR_MS * HOUR_MS
    since, counted, _, use_rollups = _plan(client, inventory, use_rollups, db, HERE, None, None, False)
    early = {key: start for key, start in counted.items() if start is None or start < until}
    found = counters(client, early, use_rollups, db, HERE, until) if early else {}
    return Settled(now_ms, until, use_rollups, {key: (early[key], c) for key, c in found.items()})


def _plan(client, inventory, use_rollups, db, sources, until_ms, last, only_with_interval):
    """(printers listed -> since, printers counted -> since, last services, rollups used)."""
    printers = [(entry.site, pid) for pid, entry in sorted(inventory.printers.items())
                if not only_with_interval or inventory.service_interval(pid) is not None]
    if last is None and printers:
        last = last_services(client, db, sources, until_ms)
    serviced = {key: ms for key, (ms, _) in (last or {}).items()}
    since = {key: serviced.get(key, added_ms(inventory, key[1])) for key in printers}
    counted = {key: since[key] for key in printers if key in serviced or inventory.service_interval(key[1])}
    use_rollups = use_rollups and bool(counted) and rollups_kept(client, db, sources)
    return since, counted, serviced, use_rollups


def states(client: InfluxHTTP, inventory: Inventory, use_rollups: bool, now_ms: int, db: str | None = None,
           only_with_interval: bool = False, sources: Sources = HERE, until_ms: int | None = None,
           last: dict[tuple[str, str], tuple[int, str]] | None = None,
           period_jobs: tuple[int, Callable[[], Iterable[tuple]]] | None = None,
           settled: Settled | None = None) -> list[ServiceState]:
    """Every listed printer's maintenance at ``now_ms`` (or only those with an interval); with
    ``until_ms``, counted from what InfluxDB holds before then (a report's end). ``last``: the
    last services (``last_services``), if already read. ``period_jobs``: (from, events) — the ended
    job events from ``from`` on, already read by a report (a function that waits for them, for
    ``tally``): InfluxDB is asked only for the jobs before ``from``, so a year's report does not
    read its year of job events twice (docs/maintenance.md). ``settled``: counters read before
    (``settle``), added to what InfluxDB holds after them, for printers counted from the same time.

    Only printers with an interval or a recorded service are counted (``ServiceState.counted``):
    the others are listed (an incident of a printer whose interval was taken out must clear) with
    zero counters, and cost no statement."""
    since, counted, serviced, use_rollups = _plan(client, inventory, use_rollups, db, sources, until_ms, last,
                                                  only_with_interval)
    if not since:
        return []
    base: dict[tuple[str, str], Counters] = {}
    ask = dict(counted)
    if settled is not None and settled.use_rollups == use_rollups:
        for key, start in counted.items():
            known = settled.counters.get(key)
            if known is not None and known[0] == start:  # the same service (or none): count on from there
                base[key], ask[key] = known[1], settled.until_ms
    read = period_jobs[0] if period_jobs else None  # the jobs from here on are counted from the events read
    found = counters(client, ask, use_rollups, db, sources, until_ms, read) if ask else {}
    if period_jobs and ask:
        more = tally(period_jobs[1](), ask, read, until_ms if until_ms is not None else now_ms,
                     durations=not use_rollups)
        found = {key: plus(c, more.get(key, Counters())) for key, c in found.items()}
    found = {key: plus(c, base[key]) if key in base else c for key, c in found.items()}
    out = []
    for site, printer in since:
        interval = inventory.service_interval(printer)
        c, service = found.get((site, printer), Counters()), serviced.get((site, printer))
        out.append(ServiceState(site, printer, service, since[(site, printer)], c, interval,
                                due(interval, c, service, since[(site, printer)], now_ms),
                                counted=(site, printer) in counted))
    return out

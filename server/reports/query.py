"""Reads what a report needs from InfluxDB, and only that: state changes, job events, and when
each agent session's data stopped.

The statements: the last state before the period; the session starts (``prev_state = 'none'``)
in it; its state changes and job events (by month-sized chunks, a few at a time); each printer's
first state change at or after the end (does its session go on past the end?); and one
``last(seq)`` over telemetry per agent restart and per printer whose session may have stopped,
each over the window since the printer's previous state change (batched, many statements per
request). Telemetry is never read in bulk, so its rate hardly matters. The same windows' answers
kept by the rollups (``extent``, server/rollups) stand in for telemetry that has expired.
Printers are identified by (site, printer); organisation and county come from the inventory.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from server.reports.accounting import StatePoint, Timeline
from server.store.influx import InfluxError, InfluxHTTP, rows
from server.store.layout import LONG_RP, ROLLUP_RP, long, rollup

STATE, JOB, EXTENT = long("state"), long("job"), rollup("extent")
JOB_USER, PRIVACY = long("job_user"), long("privacy")


@dataclass(frozen=True)
class Sources:
    """Where the reader reads each measurement: the client's database (no ``databases``), or the
    same measurement of each of ``databases`` at once (InfluxQL takes several sources, and an
    admin may read them all: a network report over every organisation's detail,
    docs/organisations.md). A printer's points are all in one of them."""

    databases: tuple[str, ...] = ()

    def of(self, rp: str, measurement: str) -> str:
        if not self.databases:
            return f'"{rp}"."{measurement}"' if rp else measurement
        rp = f'"{rp}"' if rp else ""  # none: each database's default retention policy
        return ",".join(f'"{db}".{rp}."{measurement}"' for db in self.databases)

    @property
    def state(self) -> str:
        return self.of(LONG_RP, "state")

    @property
    def job(self) -> str:
        return self.of(LONG_RP, "job")

    @property
    def extent(self) -> str:
        return self.of(ROLLUP_RP, "extent")

    @property
    def telemetry(self) -> str:
        return self.of("", "telemetry")

    @property
    def job_user(self) -> str:
        return self.of(LONG_RP, "job_user")

    @property
    def privacy(self) -> str:
        return self.of(LONG_RP, "privacy")


HERE = Sources()

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (site, printer)
JOB_KINDS = ("started", "done", "failed", "cancelled")
STATEMENTS_PER_REQUEST = 200
CHUNK_MS = 31 * 86_400_000  # bulk reads go by month-sized chunks...
WORKERS = 2  # ...this many at a time (InfluxHTTP keeps two connections)
NEAR_MS = 3_600_000  # last() looks at the last hour of its window first
GROUP_ABOVE = 20  # this many windows ending together are looked up in one grouped statement


@dataclass(slots=True)  # ~100,000 of them in a year's report
class JobEvent:
    ts: int
    site: str
    printer: str
    kind: str
    file: str | None = None
    user: str | None = None
    duration: float | None = None
    print_time: float | None = None
    filament_mm: float | None = None
    error: str | None = None
    job_started: int | None = None
    progress: float | None = None  # at the job's end (end events)
    material_use: str | None = None  # every tool's material, JSON (server/lineproto.py; reports/cost.py)


@dataclass
class RawData:
    start_ms: int
    end_ms: int
    timelines: dict[Key, Timeline] = field(default_factory=dict)
    jobs: list[JobEvent] = field(default_factory=list)
    # (printer, ts of a state point) -> the last data between it and the next session start (or now)
    extents: dict[tuple[Key, int], int] = field(default_factory=dict)
    queries: int = 0
    pseudonymous: bool = False  # job users turned into pseudonyms already (build.pseudonymise)


def _t(ms: int) -> str:
    return f"{int(ms)}ms"


def _chunks(start_ms: int, end_ms: int) -> list[tuple[int, int]]:
    edges = list(range(start_ms, end_ms, CHUNK_MS)) + [end_ms]
    return list(zip(edges, edges[1:]))


def _window(start_ms: int, end_ms: int) -> str:
    return f"time >= {_t(start_ms)} AND time < {_t(end_ms)}"


def _q(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Reader:
    def __init__(self, client: InfluxHTTP, grace_ms: int = 120_000,
                 progress: Callable[[str], None] = lambda step: None,
                 on_jobs: Callable[[RawData], None] = lambda data: None, sources: Sources = HERE):
        self.client, self.grace_ms, self.progress = client, grace_ms, progress
        self.src = sources
        self.on_jobs = on_jobs  # called once the job events are in, before the state changes
        self.queries = 0
        self.group_above = GROUP_ABOVE

    def fetch(self, start_ms: int, end_ms: int, now_ms: int) -> RawData:
        """Everything for ``[start_ms, end_ms)``; an end after ``now_ms`` is read as of now."""
        live = end_ms > now_ms
        data = RawData(start_ms, end_ms)
        window = _window(start_ms, end_ms)
        # The bulk reads are independent: cut into months and run side by side, influxd works on
        # one chunk while this process decodes another; merged below in a fixed order. The job
        # events first: ``on_jobs`` can start on the job list while influxd reads the states.
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            chunks = _chunks(start_ms, end_ms)
            jobs = [pool.submit(self._job_series, a, b) for a, b in chunks]
            initial = pool.submit(self._series, f"SELECT last(state) AS state FROM {self.src.state} "
                                                f"WHERE time < {_t(start_ms)} GROUP BY site, printer")
            restarts = pool.submit(self._series, f"SELECT prev_state FROM {self.src.state} WHERE {window} "
                                                 f"AND prev_state = 'none' GROUP BY *")
            states = [pool.submit(self._series, f"SELECT state FROM {self.src.state} WHERE {_window(a, b)} GROUP BY *")
                      for a, b in chunks]
            self._jobs(data, [j for part in jobs for j in part.result()[0]],
                       [j for part in jobs for j in part.result()[1]])
            self.progress("job events")
            self.on_jobs(data)
            self._initial_states(data, initial.result())
            self.progress("states before the period")
            self._states(data, [s for part in states for s in part.result()], restarts.result())
            self.progress("state changes")
        self._last_data(data, live, now_ms)
        self.progress("gaps in data")
        data.queries = self.queries
        return data

    def job_events(self, start_ms: int, end_ms: int) -> list[JobEvent]:
        """Only the job events of ``[start_ms, end_ms)`` (for the indicators since the project's start)."""
        data = RawData(start_ms, end_ms)
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            parts = list(pool.map(lambda chunk: self._job_series(*chunk), _chunks(start_ms, end_ms)))
        self._jobs(data, [s for started, _ in parts for s in started], [s for _, ended in parts for s in ended])
        return data.jobs

    def _series(self, q: str) -> list[dict]:
        """The raw series of one statement: {"tags", "columns", "values"} each."""
        self.queries += 1  # (a race between threads can only miscount this statistic)
        out = []
        for result in self.client.query(q):
            if "error" in result:
                raise InfluxError(result["error"])
            out += result.get("series", [])
        return out

    def _job_series(self, start_ms: int, end_ms: int) -> tuple[list, list]:
        window = _window(start_ms, end_ms)
        ends = " OR ".join(f"kind = {_q(k)}" for k in JOB_KINDS if k != "started")
        started = self._series(f'SELECT "user", "file" FROM {self.src.job} WHERE {window} AND kind = \'started\' GROUP BY *')
        ended = self._series(
            f'SELECT "file", "user", "duration", "print_time", "filament_mm", "error", "job_started", "progress", "material_use" FROM {self.src.job} '
            f"WHERE {window} AND ({ends}) GROUP BY *")
        return started, ended

    @staticmethod
    def _timeline(data: RawData, tags: dict) -> Timeline:
        return data.timelines.setdefault((tags["site"], tags["printer"]), Timeline())

    def _initial_states(self, data: RawData, series: list[dict]) -> None:
        for s in series:
            for ts, state in s["values"]:
                tl = self._timeline(data, s["tags"])
                if tl.initial is None or ts > tl.initial.ts:  # several tag sets: keep the newest
                    tl.initial = StatePoint(ts, state)

    def _states(self, data: RawData, series: list[dict], restarts: list[dict]) -> None:
        starts = {(r["tags"]["site"], r["tags"]["printer"], ts) for r in restarts for ts, _ in r["values"]}
        for s in series:
            if not s["values"]:
                continue
            tags = s["tags"]
            site, printer = tags["site"], tags["printer"]
            tl = self._timeline(data, tags)
            tl.points += [StatePoint(ts, state, (site, printer, ts) in starts) for ts, state in s["values"]]
        for tl in data.timelines.values():
            tl.points.sort(key=lambda p: p.ts)  # chunks, and series of one printer with other tags

    def _jobs(self, data: RawData, started: list[dict], ended: list[dict]) -> None:
        for s in started:
            tags = s["tags"]
            site, printer = tags["site"], tags["printer"]
            self._timeline(data, tags)
            data.jobs += [JobEvent(ts, site, printer, "started", file, user) for ts, user, file in s["values"]]
        for s in ended:
            tags = s["tags"]
            site, printer, kind = tags["site"], tags["printer"], tags["kind"]
            self._timeline(data, tags)
            data.jobs += [JobEvent(ts, site, printer, kind, *fields) for ts, *fields in s["values"]]
        data.jobs.sort(key=lambda j: (j.ts, j.site, j.printer))

    def _last_data(self, data: RawData, live: bool, now_ms: int) -> None:
        """When each session's data stopped: before every restart, and for each printer whose
        session may have stopped before the period's end."""
        after = {} if live else self._next_points(data.end_ms)
        asks: list[tuple[Key, int | None, int, int]] = []  # (printer, session start or None, from, to)
        for key, tl in data.timelines.items():
            pts = ([tl.initial] if tl.initial else []) + tl.points
            for prev, point in zip(pts, pts[1:]):
                if point.session_start:
                    asks.append((key, point.ts, prev.ts, point.ts))
            nxt = after.get(key)
            if nxt is not None and not nxt.session_start:
                tl.continues = True  # a later state change of the same session
            elif pts:
                asks.append((key, None, pts[-1].ts, nxt.ts if nxt else now_ms))
        for (key, session, low, high), found in zip(asks, self._last_known(asks)):
            tl = data.timelines[key]
            last = data.extents[(key, low)] = max(found or low, low)
            if session is not None:
                tl.last_data_before[session] = last
            else:
                tl.last_data = last
                tl.continues = last >= (now_ms - self.grace_ms if live else data.end_ms)

    def _next_points(self, end_ms: int) -> dict[Key, StatePoint]:
        """Each printer's first state change at or after ``end_ms``."""
        out = {}
        for s in self._series(f"SELECT first(state) AS state, prev_state FROM {self.src.state} WHERE time >= {_t(end_ms)} "
                              f"GROUP BY site, printer"):
            ts, state, prev = s["values"][0]
            out[(s["tags"]["site"], s["tags"]["printer"])] = StatePoint(ts, state, prev == "none")
        return out

    def _last_known(self, asks: list) -> list[int | None]:
        """The last data in each ask's window: telemetry, or the extent the rollups kept of it."""
        found = self._last_telemetry(asks)
        kept = self._extents(asks)
        out = []
        for f, (key, _, low, high) in zip(found, asks):
            extent = kept.get((key, low))
            if extent is not None and extent < high and (f is None or extent > f):
                f = extent
            out.append(f)
        return out

    def _extents(self, asks: list) -> dict[tuple[Key, int], int]:
        if not asks:
            return {}
        lows = [low for _, _, low, _ in asks]
        try:
            series = self._series(f'SELECT "until" FROM {self.src.extent} WHERE time >= {_t(min(lows))} '
                                  f"AND time <= {_t(max(lows))} GROUP BY site, printer")
        except InfluxError as exc:
            if "retention policy not found" in str(exc):
                return {}  # no rollups in this database (yet)
            raise
        return {((s["tags"]["site"], s["tags"]["printer"]), ts): until for s in series for ts, until in s["values"]}

    def _last_telemetry(self, asks: list) -> list[int | None]:
        """The last telemetry time in each ask's window, or None. The last hour of the window is
        tried first: ``last()`` reads every point in its range, and a printer idle for weeks at 1 Hz
        would otherwise make one look-up read weeks of telemetry."""
        found = self._last_near(asks)
        again = [i for i, (f, (_, _, low, high)) in enumerate(zip(found, asks)) if f is None and low < high - NEAR_MS]
        for i, f in zip(again, self._last_in([asks[i] for i in again])):
            found[i] = f
        return found

    def _last_near(self, asks: list) -> list[int | None]:
        """The last telemetry in the last hour of each window. Windows that end at the same time
        (the period's end, now) share one statement grouped by printer: thousands of printers
        would otherwise be thousands of statements to write and answers to parse."""
        by_end: dict[int, list[int]] = {}
        for i, (_, _, _, high) in enumerate(asks):
            by_end.setdefault(high, []).append(i)
        found: list[int | None] = [None] * len(asks)
        single = [i for ids in by_end.values() if len(ids) < self.group_above for i in ids]
        for i, f in zip(single, self._last_in([_near(asks[i]) for i in single])):
            found[i] = f
        for high, ids in by_end.items():
            if len(ids) >= self.group_above:
                last = _first_times_by_key(self._series(
                    f"SELECT last(seq) FROM {self.src.telemetry} WHERE {_window(high - NEAR_MS, high)} GROUP BY site, printer"))
                for i in ids:  # before the window's start means none in the window
                    f = last.get(asks[i][0])
                    found[i] = f if f is not None and f >= asks[i][2] else None
        return found

    def _last_in(self, asks: list) -> list[int | None]:
        return self._first_times([
            f"SELECT last(seq) FROM {self.src.telemetry} WHERE site = {_q(site)} AND printer = {_q(printer)} "
            f"AND time >= {_t(low)} AND time < {_t(high)}"
            for (site, printer), _, low, high in asks])

    def _first_times(self, statements: list[str]) -> list[int | None]:
        """The time of each statement's first row, or None; many statements per request."""
        out: list[int | None] = [None] * len(statements)
        for i in range(0, len(statements), STATEMENTS_PER_REQUEST):
            self.queries += 1
            for n, result in enumerate(self.client.query(";".join(statements[i:i + STATEMENTS_PER_REQUEST]))):
                found = rows([result])  # raises on a statement's error
                if found:
                    out[i + result.get("statement_id", n)] = found[0]["time"]
        return out

    # -- for the rollups: where a printer's data stood before a given time --------------------

    def last_telemetry_since(self, since_ms: int) -> dict[Key, int]:
        """Each printer's last telemetry at or after ``since_ms`` (one grouped statement)."""
        return _first_times_by_key(self._series(
            f"SELECT last(seq) FROM {self.src.telemetry} WHERE time >= {_t(since_ms)} GROUP BY site, printer"))

    def data_before(self, asks: list[tuple[Key, int]]) -> list[int | None]:
        """For each (printer, ts): its last data before ts (a state change, or telemetry after
        it, or the extent kept of that telemetry), or None if it has none."""
        states = self._first_times([
            f"SELECT last(state) FROM {self.src.state} WHERE site = {_q(site)} AND printer = {_q(printer)} AND time < {_t(ts)}"
            for (site, printer), ts in asks])
        windows = [(key, None, state, ts) for (key, ts), state in zip(asks, states) if state is not None]
        found = iter(self._last_known(windows))
        return [None if state is None else max(next(found) or state, state) for state in states]


def _near(ask: tuple) -> tuple:
    key, session, low, high = ask
    return key, session, max(low, high - NEAR_MS), high


def _first_times_by_key(series: list[dict]) -> dict[Key, int]:
    return {(s["tags"]["site"], s["tags"]["printer"]): s["values"][0][0] for s in series if s["values"]}


def raw_names(client: InfluxHTTP, start_ms: int, end_ms: int, sources: Sources = HERE) -> dict[tuple, str]:
    """(site, printer, kind, ts) -> the raw user name of a job event, where ``job_user`` still holds
    one (only with [privacy] raw_user_days, and only for that long). For ``report --users name``."""
    out = {}
    for result in client.query(f"SELECT user_name FROM {sources.job_user} WHERE {_window(start_ms, end_ms)} GROUP BY *"):
        if "error" in result:
            raise InfluxError(result["error"])
        for s in result.get("series", []):
            tags = s["tags"]
            for ts, name in s["values"]:
                out[(tags["site"], tags["printer"], tags["kind"], ts)] = name
    return out


def key_ids(client: InfluxHTTP, sources: Sources = HERE) -> set[str]:
    """The pseudonym secrets (by key ID) the collectors writing this database have used."""
    found = set()
    for result in client.query(f"SELECT key_id FROM {sources.privacy}"):
        if "error" in result:
            raise InfluxError(result["error"])
        for s in result.get("series", []):
            found |= {value for _, value in s["values"] if value}
    return found

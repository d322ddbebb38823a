"""Reads what a report needs from InfluxDB, and only that: state changes, job events, and the
time of the last telemetry point before each agent restart and before the period's end.

The statements: the last state before the period; the session starts (``prev_state = 'none'``)
in it; its state changes and job events (by month-sized chunks, a few at a time); one
``last(seq)`` over telemetry per agent restart and per printer at the end, each over the window
since the printer's previous state change (batched, many statements per request); and one
``first()`` just after the end. Telemetry is never read in bulk, so its rate hardly matters.
Printers are identified by (site, printer); organisation and county come from the inventory.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from server.reports.accounting import StatePoint, Timeline
from server.store.influx import InfluxError, InfluxHTTP, rows

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (site, printer)
JOB_KINDS = ("started", "done", "failed", "cancelled")
STATEMENTS_PER_REQUEST = 200
CHUNK_MS = 31 * 86_400_000  # bulk reads go by month-sized chunks...
WORKERS = 2  # ...this many at a time (InfluxHTTP keeps two connections)
NEAR_MS = 3_600_000  # last() looks at the last hour of its window first


@dataclass
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


@dataclass
class RawData:
    start_ms: int
    end_ms: int
    timelines: dict[Key, Timeline] = field(default_factory=dict)
    jobs: list[JobEvent] = field(default_factory=list)
    queries: int = 0


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
                 progress: Callable[[str], None] = lambda step: None):
        self.client, self.grace_ms, self.progress = client, grace_ms, progress
        self.queries = 0

    def fetch(self, start_ms: int, end_ms: int, now_ms: int) -> RawData:
        """Everything for ``[start_ms, end_ms)``; an end after ``now_ms`` is read as of now."""
        live = end_ms > now_ms
        data = RawData(start_ms, end_ms)
        window = _window(start_ms, end_ms)
        # The bulk reads are independent: cut into months and run side by side, influxd works on
        # one chunk while this process decodes another; merged below in a fixed order.
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            initial = pool.submit(self._series, f"SELECT last(state) AS state FROM state "
                                                f"WHERE time < {_t(start_ms)} GROUP BY *")
            restarts = pool.submit(self._series, f"SELECT prev_state FROM state WHERE {window} "
                                                 f"AND prev_state = 'none' GROUP BY *")
            chunks = _chunks(start_ms, end_ms)
            states = [pool.submit(self._series, f"SELECT state FROM state WHERE {_window(a, b)} GROUP BY *")
                      for a, b in chunks]
            jobs = [pool.submit(self._job_series, a, b) for a, b in chunks]
            self._initial_states(data, initial.result())
            self.progress("states before the period")
            self._states(data, [s for part in states for s in part.result()], restarts.result())
            self.progress("state changes")
            self._jobs(data, [j for part in jobs for j in part.result()[0]],
                       [j for part in jobs for j in part.result()[1]])
            self.progress("job events")
        self._last_data(data, live, now_ms)
        self.progress("gaps in data")
        data.queries = self.queries
        return data

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
        started = self._series(f'SELECT "user", "file" FROM job WHERE {window} AND kind = \'started\' GROUP BY *')
        ended = self._series(
            f'SELECT "file", "user", "duration", "print_time", "filament_mm", "error", "job_started" FROM job '
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
        """When each session's data stopped: before every restart and before the period's end."""
        end = min(data.end_ms, now_ms)
        asks: list[tuple[Key, int | None, int, int]] = []  # (printer, session start or None, from, to)
        for key, tl in data.timelines.items():
            pts = ([tl.initial] if tl.initial else []) + tl.points
            for prev, point in zip(pts, pts[1:]):
                if point.session_start:
                    asks.append((key, point.ts, prev.ts, point.ts))
            if pts:
                asks.append((key, None, pts[-1].ts, end))
        for (key, session, low, high), found in zip(asks, self._last_telemetry(asks)):
            tl = data.timelines[key]
            last = max(found or low, low)
            if session is None:
                tl.last_data = last
            else:
                tl.last_data_before[session] = last
        if live:
            for tl in data.timelines.values():
                tl.continues = tl.last_data is not None and tl.last_data >= now_ms - self.grace_ms
        else:
            for key in self._continuing(data.end_ms):
                if key in data.timelines:
                    data.timelines[key].continues = True

    def _last_telemetry(self, asks: list) -> list[int | None]:
        """The last telemetry time in each ask's window, or None. The last hour of the window is
        tried first: ``last()`` reads every point in its range, and a printer idle for weeks at 1 Hz
        would otherwise make one look-up read weeks of telemetry."""
        near = [(key, s, max(low, high - NEAR_MS), high) for key, s, low, high in asks]
        found = self._last_in(near)
        again = [i for i, (f, (_, _, low, high)) in enumerate(zip(found, asks)) if f is None and low < high - NEAR_MS]
        for i, f in zip(again, self._last_in([asks[i] for i in again])):
            found[i] = f
        return found

    def _last_in(self, asks: list) -> list[int | None]:
        statements = [
            f"SELECT last(seq) FROM telemetry WHERE site = {_q(site)} AND printer = {_q(printer)} "
            f"AND time >= {_t(low)} AND time < {_t(high)}"
            for (site, printer), _, low, high in asks
        ]
        out: list[int | None] = [None] * len(statements)
        for i in range(0, len(statements), STATEMENTS_PER_REQUEST):
            self.queries += 1
            for n, result in enumerate(self.client.query(";".join(statements[i:i + STATEMENTS_PER_REQUEST]))):
                found = rows([result])  # raises on a statement's error
                if found:
                    out[i + result.get("statement_id", n)] = found[0]["time"]
        return out

    def _continuing(self, end_ms: int) -> set[Key]:
        """Printers whose session runs on past ``end_ms``: telemetry right after it, before any restart."""
        window = f"time >= {_t(end_ms)} AND time < {_t(end_ms + self.grace_ms)}"
        first = _first_times(self._series(f"SELECT first(seq) FROM telemetry WHERE {window} GROUP BY site, printer"))
        restart = _first_times(self._series(f"SELECT first(state) FROM state WHERE {window} AND prev_state = 'none' "
                                            f"GROUP BY site, printer"))
        return {key for key, ts in first.items() if key not in restart or ts < restart[key]}


def _first_times(series: list[dict]) -> dict[Key, int]:
    return {(s["tags"]["site"], s["tags"]["printer"]): s["values"][0][0] for s in series if s["values"]}


def raw_names(client: InfluxHTTP, start_ms: int, end_ms: int) -> dict[tuple, str]:
    """(site, printer, kind, ts) -> the raw user name of a job event, where ``job_user`` still holds
    one (only with [privacy] raw_user_days, and only for that long). For ``report --users name``."""
    out = {}
    for result in client.query(f"SELECT user_name FROM job_user WHERE {_window(start_ms, end_ms)} GROUP BY *"):
        if "error" in result:
            raise InfluxError(result["error"])
        for s in result.get("series", []):
            tags = s["tags"]
            for ts, name in s["values"]:
                out[(tags["site"], tags["printer"], tags["kind"], ts)] = name
    return out


def key_ids(client: InfluxHTTP) -> set[str]:
    """The pseudonym secrets (by key ID) the collectors writing this database have used."""
    found = set()
    for result in client.query("SELECT key_id FROM privacy"):
        if "error" in result:
            raise InfluxError(result["error"])
        for s in result.get("series", []):
            found |= {value for _, value in s["values"] if value}
    return found

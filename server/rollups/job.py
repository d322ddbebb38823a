"""The rollup job: a thread of the collector that keeps ``"rollups"."utilisation"`` up to date.

Each run (at start, then every ``interval`` seconds):

1. waits until InfluxDB holds everything the collector has received (``durable.WriteBarrier``);
   while it cannot (an outage, a backlog) the run is skipped and nothing is lost: the marks stay;
2. rolls up every hour that ended at least ``settle`` seconds ago and is not rolled up yet (on the
   first start, every hour since the first state change in the database);
3. recomputes, for each printer marked dirty (``dirty.DirtyMarks``), its hours from its last data
   before the late message up to the rolled-up end;
4. every ``current_every`` seconds, rolls up the hour under way as of now (overwritten the next
   time, and by step 2 once it is over): the costliest step, as it covers every printer.

``rolled_until`` and the marks not yet handled are kept in ``<state_dir>/rollups.json``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Callable

from server.inventory import Inventory
from server.metrics import Metrics
from server.reports.query import HERE, Key, Reader, Sources
from server.rollups import hours
from server.rollups.compute import Split, compute, printer_tags, whole
from server.rollups.config import RollupsConfig
from server.rollups.dirty import DirtyMarks
from server.rollups.store import RollupStore
from server.store.influx import InfluxError, InfluxHTTP, rows

log = logging.getLogger(__name__)
DAY = 24 * hours.HOUR
BURST_WAIT = 5.0  # s; a burst is one read of the socket, handled in milliseconds


class NotYet(Exception):
    """InfluxDB does not hold everything received yet: try again next run."""


class RollupJob:
    stop_stage = "first"  # a run may wait for the burst under way (server/subsystems.py)

    def __init__(self, client: InfluxHTTP, inventory: Inventory, cfg: RollupsConfig, *,
                 marks: DirtyMarks | None = None, barrier: Callable[[], bool] = lambda: True,
                 prepare: Callable[[], None] = lambda: None, state_path: str | Path | None = None,
                 grace_ms: int = 120_000, clock: Callable[[], float] = time.time,
                 metrics: Metrics | None = None, split: Split = whole, sources: Sources = HERE,
                 store: RollupStore | None = None):
        """``sources``: the databases read; ``store``: where the points go (default: the client's
        database); docs/organisations.md."""
        self.inventory, self.cfg, self.clock, self.split = inventory, cfg, clock, split
        self.reader = Reader(client, grace_ms, sources=sources)
        self.store = store or RollupStore(client)
        if split is whole:  # the tags are the inventory's, fixed while this process runs
            self.store.fresh_from = hours.floor(int(clock() * 1000)) + hours.HOUR
        self.client = client
        self.marks = marks or DirtyMarks()
        self.barrier, self.prepare = barrier, prepare
        self.state_path = Path(state_path) if state_path else None
        self.metrics = metrics or Metrics()
        self.rolled_until: int | None = None
        self.last_ok: int | None = None  # ms: when the last complete run began
        self.last_error: str | None = None
        self._prepared = False
        self._current_at = -1 << 62  # ms: when the hour under way was last rolled up
        self._tags: dict[Key, tuple] = {}  # the inventory is fixed while the process runs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rollups", daemon=True)
        self._load()

    # -- thread -------------------------------------------------------------------------------

    def start(self) -> None:
        self.prime()
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.cfg.interval)

    def prime(self) -> None:
        """Before the collector reads MQTT: printers with data since ``rolled_until`` need no
        mark for their first message (a restart would otherwise recompute every printer once)."""
        if self.rolled_until is None:
            return
        since = max(self.rolled_until, int(self.clock() * 1000) - hours.HOUR)
        try:
            found = self.reader.last_telemetry_since(since)
        except InfluxError as exc:  # it only saves work
            log.info("rollups: not primed (%s); every printer's first message marks it", exc)
            return
        self.marks.prime({self.inventory.tags(*key): ts for key, ts in found.items()})

    # -- one run ------------------------------------------------------------------------------

    def run_once(self) -> bool:
        began = int(self.clock() * 1000)
        marks = self.marks.take()
        self._save(marks)  # a crash in this run must not forget them
        try:
            done = self._run(marks, began)
        except (InfluxError, NotYet) as exc:
            done = self._failed(marks, f"rollups: {exc}; trying again in {self.cfg.interval:g} s")
        except Exception as exc:  # a bug: logged with its traceback, and the next run still comes
            done = self._failed(marks, f"rollups: a run failed ({exc!r}); trying again in {self.cfg.interval:g} s", True)
        finally:
            self._save({})
        return done

    def _run(self, marks: dict[Key, int], began: int) -> bool:
        self._prepare_once()
        if self.rolled_until is None:
            self.rolled_until = self.marks.rolled_until = self._first_hour(began)
        complete = hours.floor(began - int(self.cfg.settle * 1000))
        # Announced before the barrier: whatever arrives from now on for an hour this run rolls
        # up, or from a printer silent since before its end, marks its printer for the next run.
        self.marks.rolled_until = max(self.marks.rolled_until, complete)
        if not (self.marks.await_burst(BURST_WAIT) and self.barrier()):
            raise NotYet("InfluxDB does not hold everything received yet (an outage or a backlog)")
        self._complete_hours(complete, began)
        if self._stop.is_set():
            self.marks.restore(marks)  # for the next start
            return False
        if marks:
            self._recompute(marks, began)
        if began - self._current_at >= self.cfg.current_every * 1000:
            self._roll(self.rolled_until, hours.floor(began) + hours.HOUR, began)  # the hour under way
            self._current_at = began
        self.last_ok = began
        self.metrics.inc("rollup_runs")
        self._note(None)
        return True

    def _failed(self, marks: dict[Key, int], problem: str, trace: bool = False) -> bool:
        self.marks.restore(marks)
        self._note(problem, trace)
        return False

    def _prepare_once(self) -> None:
        if not self._prepared:
            self.prepare()  # the retention policies
            self._prepared = True

    def _complete_hours(self, complete: int, now: int) -> None:
        for start, end in hours.spans(self.rolled_until, complete, self.cfg.span_days * DAY):
            if self._stop.is_set():
                return
            self._roll(start, end, now)
            self.rolled_until = end
            log.debug("rolled up until %s", time.strftime("%Y-%m-%d %H:%M", time.gmtime(end / 1000)))

    def _first_hour(self, now: int) -> int:
        first = self._first_data()
        if first is None:
            return hours.floor(now - int(self.cfg.settle * 1000))
        log.info("rolling up every hour since %s (the first state change stored)",
                 time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(first / 1000)))
        return first

    def _first_data(self) -> int | None:
        found = rows(self.client.query(f"SELECT first(state) FROM {self.reader.src.state}"))
        return hours.floor(found[0]["time"]) if found else None

    def rebuild(self, since_ms: int | None = None, until_ms: int | None = None) -> tuple[int, int | None]:
        """Recompute every hour from ``since_ms`` (or the first data) up to ``until_ms`` (or now,
        the hour under way included), span by span. Returns the points written and the hour it
        began at (None: no data at all)."""
        now = int(self.clock() * 1000)
        start = hours.floor(since_ms) if since_ms is not None else self._first_data()
        if start is None:
            return 0, None
        end = hours.floor(min(until_ms, now) if until_ms is not None else now)
        written = self.metrics.counters["rollup_points_written"]
        for a, b in hours.spans(start, end, self.cfg.span_days * DAY):
            self._roll(a, b, now)
        if until_ms is None or until_ms > now:
            self._roll(end, end + hours.HOUR, now)
        return self.metrics.counters["rollup_points_written"] - written, start

    def _recompute(self, marks: dict[Key, int], now: int) -> None:
        keys = sorted(marks)
        before = self.reader.data_before([(key, marks[key]) for key in keys])
        start = hours.floor(min(b if b is not None else marks[k] for k, b in zip(keys, before)))
        for a, b in hours.spans(start, self.rolled_until, self.cfg.span_days * DAY):
            self._roll(a, b, now, set(keys))
        log.debug("recomputed %d printer(s) from %s", len(keys), time.strftime("%Y-%m-%d %H:%M", time.gmtime(start / 1000)))

    def _roll(self, start: int, end: int, now: int, keys: set[Key] | None = None) -> None:
        if end <= start:
            return
        result = compute(self.reader, self.inventory, start, end, now, self.split, self._tags_of)
        # A session's end is kept once it is one: data still coming in moves it on every run.
        settled = now - self.reader.grace_ms
        result.extents = {k: until for k, until in result.extents.items() if until < settled}
        self.metrics.inc("rollup_points_written", self.store.replace(result, keys))

    def _tags_of(self, key: Key) -> tuple:
        tags = self._tags.get(key)
        if tags is None:
            tags = self._tags[key] = printer_tags(self.inventory, key)
        return tags

    # -- status, state file, log ---------------------------------------------------------------

    def health(self) -> dict:
        return self.status()

    def status(self) -> dict:
        return {"rolled_until": self.rolled_until, "last_ok": self.last_ok, "error": self.last_error,
                "dirty_printers": len(self.marks.pending())}

    def _load(self) -> None:
        if self.state_path is None or not self.state_path.exists():
            return
        try:
            saved = json.loads(self.state_path.read_text())
            self.rolled_until = self.marks.rolled_until = int(saved["rolled_until"])
            self.marks.restore({(site, printer): int(ts) for site, printer, ts in saved.get("marks", [])})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring %s (%s): rolling up from the first data again", self.state_path, exc)
            self.rolled_until = None

    def _save(self, taken: dict[Key, int]) -> None:
        if self.state_path is None or self.rolled_until is None:
            return
        marks = {**self.marks.pending()}
        for key, ts in taken.items():
            marks[key] = min(ts, marks.get(key, ts))
        body = {"rolled_until": self.rolled_until, "marks": [[*key, ts] for key, ts in sorted(marks.items())]}
        tmp = self.state_path.with_suffix(".tmp")
        try:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(body))
            tmp.replace(self.state_path)
        except OSError as exc:
            self._note(f"rollups: cannot save {self.state_path}: {exc}")

    def _note(self, problem: str | None, trace: bool = False) -> None:
        if problem != self.last_error:
            if problem:
                log.warning("%s", problem, exc_info=trace)
            elif self.last_error:
                log.info("rollups are up to date again")
            self.last_error = problem

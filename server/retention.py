"""Retention of raw user names in InfluxDB: purge them, and pseudonymise old points that hold one.

- ``job_user`` (written only with ``[privacy] raw_user_days > 0``) holds the raw name of each job
  event. ``purge`` deletes its points older than the cut-off: nothing else refers to them, so no
  figure changes (every report reads the pseudonym on the ``job`` point).
- Points written before the collector made pseudonyms hold the raw name in the ``user`` field of
  ``job`` and ``telemetry``. ``purge`` overwrites that field with the pseudonym: same series, same
  time, only that field, so every other field stays and every figure stays the same (reports and
  attribution read users as pseudonyms either way, common/pseudonyms.py ``normalise``).

``printfarm-server purge-users`` runs both once; the collector deletes old ``job_user`` points
every hour while ``raw_user_days`` is set.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable

from common.pseudonyms import Pseudonyms
from server import lineproto
from server.store import layout
from server.store.influx import InfluxError, InfluxHTTP

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
WRITE_BATCH = 5000
ROUND = 20_000


@dataclass
class Purged:
    raw_deleted: int = 0  # job_user points deleted
    rewritten: dict | None = None  # measurement -> points whose raw user became a pseudonym


def purge(client: InfluxHTTP, pseudonyms: Pseudonyms, cutoff_ms: int, old_points: bool = True) -> Purged:
    """Raw user names before ``cutoff_ms`` out of the database. ``old_points``: also those an older
    collector left in job and telemetry points — a scan of all telemetry before the cut-off, so
    the command does it, not the collector's hourly run (nothing new writes them)."""
    out = Purged(rewritten={})
    out.raw_deleted = _count(client, f"SELECT count(user_name) FROM {layout.long('job_user')} WHERE time < {cutoff_ms}ms")
    client.query(f"DELETE FROM job_user WHERE time < {cutoff_ms}ms")  # DELETE covers every retention policy
    for measurement in ("job", "telemetry") if old_points else ():
        out.rewritten[measurement] = _pseudonymise(client, pseudonyms, measurement, cutoff_ms)
    return out


def _count(client: InfluxHTTP, q: str) -> int:
    for result in client.query(q):
        for series in result.get("series", []):
            return int(series["values"][0][1])
    return 0


def _pseudonymise(client: InfluxHTTP, pseudonyms: Pseudonyms, measurement: str, cutoff_ms: int) -> int:
    """Rewrite raw names in rounds of at most ROUND points per series: each round's query finds
    only what is still raw, so memory stays bounded however much old telemetry there is."""
    # Telemetry is in the default retention policy, everything else in autogen (server/store/layout.py).
    rp = None if measurement == "telemetry" else layout.LONG_RP
    source = f'"{measurement}"' if rp is None else layout.long(measurement)
    q = (f'SELECT "user" FROM {source} WHERE time < {cutoff_ms}ms AND "user" !~ /^u-[0-9a-f]{{12}}$/ '
         f"GROUP BY * LIMIT {ROUND}")
    done, previous = 0, None
    while True:
        lines = _rewrites(client.query(q), measurement, pseudonyms)
        if not lines or lines[0] == previous:  # nothing left, or InfluxDB refused the last round
            return done
        for i in range(0, len(lines), WRITE_BATCH):
            client.write("\n".join(lines[i:i + WRITE_BATCH]).encode(), rp=rp)
        done, previous = done + len(lines), lines[0]


def _rewrites(results: list[dict], measurement: str, pseudonyms: Pseudonyms) -> list[str]:
    lines = []
    for result in results:
        if "error" in result:
            raise InfluxError(result["error"])
        for series in result.get("series", []):
            try:
                tags = "".join(f",{lineproto.key(k)}={lineproto.tag(v)}"
                               for k, v in sorted(series["tags"].items()) if v)
            except ValueError as exc:  # a tag no line can carry (written by another tool): left as it is
                log.warning("%s points of a series left as they are: %s", measurement, exc)
                continue
            site = series["tags"].get("site", "")
            lines += [f"{measurement}{tags} user={lineproto.string(pseudonyms.of(site, user))} {ts}"
                      for ts, user in series["values"] if user]
    return lines


def key_line(pseudonyms: Pseudonyms, now_ms: int) -> str:
    """Which secret made the pseudonyms written from now on (reports compare it with theirs)."""
    return f"privacy key_id={lineproto.string(pseudonyms.key_id())} {now_ms}"


class HourlyPurge:
    """The collector's purge of raw names older than ``days``, every hour on its own thread."""

    def __init__(self, client: InfluxHTTP | list[InfluxHTTP], pseudonyms: Pseudonyms, days: float,
                 clock: Callable[[], float], every: float = 3600.0):
        """``client``: or one per database holding raw names (each organisation's, docs/organisations.md)."""
        self.clients = client if isinstance(client, list) else [client]
        self.pseudonyms, self.days, self.clock, self.every = pseudonyms, days, clock, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="raw-user-purge", daemon=True)
        self._failing = False

    stop_stage = "before_writer"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def health(self) -> dict:
        return {"failing": self._failing}

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.every)

    def run_once(self) -> None:
        cutoff = int(self.clock() * 1000) - int(self.days * DAY_MS)
        try:
            for client in self.clients:
                self._report(purge(client, self.pseudonyms, cutoff, old_points=False))
        except InfluxError as exc:
            if not self._failing:  # a repeating error is logged once until it changes
                log.warning("raw user names could not be purged yet: %s (retrying every hour)", exc)
            self._failing = True
            return
        self._failing = False

    def _report(self, done: Purged) -> None:
        if done.raw_deleted or any(done.rewritten.values()):
            log.info("purged %d raw user name(s) older than %g days; pseudonymised %s",
                     done.raw_deleted, self.days, done.rewritten)

"""Where each measurement lives in InfluxDB, and for how long: the retention policies
(docs/rollups.md, "Retention"). Not to be confused with server/retention.py, the retention of raw
user names.

Three retention policies (RPs) of the one database:

- ``autogen`` (InfluxDB 1.x's own, kept forever): state changes, job events, agent and alert
  points: what reports are made of. Readers that need them name it (``"autogen"."state"``), so they
  find them whichever RP is the default.
- the database's **default** RP: raw telemetry. By default that is ``autogen`` too, as before.
  With ``[retention] telemetry = "30d"`` the collector makes an RP ``raw`` of that duration the
  default and writes everything but telemetry to ``autogen`` explicitly, so telemetry expires and
  nothing else does. Live panels read telemetry unqualified and work either way.
- ``rollups`` (``[retention] rollups``, default forever): the hourly utilisation rollups and the data
  extents (server/rollups), derived from the two above.

Reports need no raw telemetry for hours that have been rolled up: the extents keep the one thing
they read from it (when a session's data stopped).
"""

from __future__ import annotations

import logging
import re

from common.configkit import Invalid, Section
from server.store.influx import InfluxError, InfluxHTTP

log = logging.getLogger(__name__)

LONG_RP = "autogen"
TELEMETRY_RP = "raw"
ROLLUP_RP = "rollups"
_DURATION = re.compile(r"^(INF|\d+[hdw])$")


def long(measurement: str) -> str:
    """A measurement of the long-kept RP, as an InfluxQL source."""
    return f'"{LONG_RP}"."{measurement}"'


def rollup(measurement: str) -> str:
    return f'"{ROLLUP_RP}"."{measurement}"'


class RetentionConfig(Section):
    """``[retention]`` of server.toml: InfluxDB durations (``INF``, or e.g. ``30d``, ``26w``, ``720h``)."""

    telemetry: str = ""  # "" = telemetry stays in the default RP, kept as long as that keeps it
    rollups: str = "INF"

    def __post_init__(self):
        for key in ("telemetry", "rollups"):
            value = getattr(self, key)
            if value and not _DURATION.match(value):
                raise Invalid(key, f"{value!r} is not an InfluxDB duration",
                              "write INF, or a number and h, d or w, e.g. \"30d\"")
            if value and value != "INF" and _hours(value) < 1:
                raise Invalid(key, f"{value!r} is shorter than InfluxDB's minimum of 1h", "use at least 1h")

    @property
    def routed(self) -> bool:
        """True when telemetry has an RP of its own and the rest is written to ``autogen``."""
        return bool(self.telemetry)


def _hours(duration: str) -> int:
    return int(duration[:-1]) * {"h": 1, "d": 24, "w": 168}[duration[-1]]


def ensure(client: InfluxHTTP, cfg: RetentionConfig, db: str | None = None) -> None:
    """Create or adjust the RPs of ``db`` (default: the client's database) (InfluxDB 1.x; on
    2.x/3.x map buckets instead, docs/rollups.md)."""
    db = db or client.database
    _ensure_rp(client, db, ROLLUP_RP, cfg.rollups, default=False)
    if cfg.routed:
        _ensure_rp(client, db, TELEMETRY_RP, cfg.telemetry, default=True)


def creations(cfg: RetentionConfig, db: str) -> list[str]:
    """The statements of ``ensure`` that make the RPs of ``db``; each fails where one is there with
    other settings (``ensure`` then adjusts it)."""
    out = [_create_rp(db, ROLLUP_RP, cfg.rollups, False)]
    if cfg.routed:
        out.append(_create_rp(db, TELEMETRY_RP, cfg.telemetry, True))
    return out


def _create_rp(db: str, name: str, duration: str, default: bool) -> str:
    return f'CREATE RETENTION POLICY "{name}" ON "{db}" DURATION {duration} REPLICATION 1{" DEFAULT" if default else ""}'


def _ensure_rp(client: InfluxHTTP, db: str, name: str, duration: str, default: bool) -> None:
    suffix = " DEFAULT" if default else ""
    error = _run(client, _create_rp(db, name, duration, default))
    if error and "already exists" in error:  # with other settings: bring it to these
        error = _run(client, f'ALTER RETENTION POLICY "{name}" ON "{db}" DURATION {duration}{suffix}')
    if error:
        raise InfluxError(f"retention policy {name}: {error}")
    log.info("retention policy %s of %s: %s%s", name, db, duration, " (the default)" if default else "")


def _run(client: InfluxHTTP, statement: str) -> str | None:
    return next((r["error"] for r in client.query(statement) if "error" in r), None)


class RoutedInflux(InfluxHTTP):
    """An InfluxHTTP whose ``write`` sends telemetry to the default RP and the rest to ``autogen``.

    Used only with ``[retention] telemetry`` set. A batch becomes two writes; if the second fails
    the batch is retried whole, and the first part simply overwrites its own points again.
    """

    def write(self, body: bytes, precision: str = "ms", rp: str | None = None, db: str | None = None) -> None:
        where = {} if db is None else {"db": db}
        if rp is not None:
            return super().write(body, precision, rp=rp, **where)
        telemetry, other = split_telemetry(body)
        if telemetry:
            super().write(telemetry, precision, **where)
        if other:
            super().write(other, precision, rp=LONG_RP, **where)


def split_telemetry(body: bytes) -> tuple[bytes, bytes]:
    """(telemetry lines, all other lines) of a line-protocol body."""
    if not body.startswith(b"telemetry,") and b"\ntelemetry," not in body:
        return b"", body
    telemetry, other = [], []
    for line in body.split(b"\n"):
        (telemetry if line.startswith(b"telemetry,") else other).append(line)
    return b"\n".join(telemetry), b"\n".join(other)

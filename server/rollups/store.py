"""Rollup points in and out of InfluxDB (retention policy ``rollups``).

``utilisation``: one point per printer, hour and customer (tags printer, site, organisation,
county, and with the customer split customer and customer_kind), fields
``<category>_ms`` for every accounting category plus ``in_network_ms`` and ``available_ms``, all
integers, so sums are exact. ``extent``: one point per state change whose session's end a report
needs (tags site, printer; field ``until``). A recomputed hour writes the same series at the same
time, so it overwrites its point; a point that is no longer produced (its tags changed) is zeroed.
"""

from __future__ import annotations

from typing import Callable

from server import lineproto
from server.reports import accounting as acc
from server.reports.query import Key
from server.rollups.compute import Rollup, Row
from server.store.influx import InfluxError, InfluxHTTP, rows
from server.store.layout import ROLLUP_RP, rollup

MEASUREMENT, EXTENT = "utilisation", "extent"
SOURCE = rollup(MEASUREMENT)
FIELDS = tuple(f"{c}_ms" for c in acc.CATEGORIES) + ("in_network_ms", "available_ms")
ZERO = dict.fromkeys(FIELDS, 0)
BATCH = 10_000


def fields(ms: dict[str, int]) -> dict[str, int]:
    out = {f"{c}_ms": ms[c] for c in acc.CATEGORIES}
    out["in_network_ms"], out["available_ms"] = acc.in_network(ms), acc.available(ms)
    return out


def tag_text(tags) -> str:
    return "".join(f",{k}={lineproto.tag(v)}" for k, v in tags)


def line(measurement: str, tags: str, values: dict[str, int], ts: int) -> str:
    """``tags`` as ``tag_text`` makes it."""
    field_text = ",".join(f"{k}={v}i" for k, v in values.items())
    return f"{measurement}{tags} {field_text} {ts}"


class RollupStore:
    """``place(site)``: the databases a site's points go to (None: the client's own); with one
    database, just that (docs/organisations.md: the network's and the site's organisation's)."""

    def __init__(self, client: InfluxHTTP, place: Callable[[str], tuple] = lambda site: (None,)):
        self.client, self.place = client, place
        # Hours from here on hold only points this process wrote, with tags that cannot change
        # (set by the job when there is no further dimension): no need to look for stale ones.
        self.fresh_from: int | None = None
        self._tag_texts: dict[tuple, str] = {}

    def _tags(self, tags: tuple) -> str:
        text = self._tag_texts.get(tags)
        if text is None:
            text = self._tag_texts[tags] = tag_text(tags)
        return text

    def replace(self, result: Rollup, keys: set[Key] | None = None) -> int:
        """Write ``result``'s points (only those of ``keys``, if given) and zero every point the
        span held for those printers that ``result`` no longer has. Returns the points written."""
        new = [r for r in result.rows if keys is None or r.key in keys]
        produced = {(r.tags, r.hour) for r in new}
        lines = [(r.key[0], line(MEASUREMENT, self._tags(r.tags), fields(r.ms), r.hour)) for r in new]
        lines += [(dict(tags)["site"], line(MEASUREMENT, self._tags(tags), ZERO, hour))
                  for tags, hour in self._existing(result, keys) if (tags, hour) not in produced]
        lines += [(key[0], line(EXTENT, tag_text((("printer", key[1]), ("site", key[0]))), {"until": until}, ts))
                  for (key, ts), until in result.extents.items() if keys is None or key in keys]
        by_db: dict = {}
        for site, text in lines:
            for db in self.place(site):
                by_db.setdefault(db, []).append(text)
        for db, texts in by_db.items():
            self.write(texts, db)
        return len(lines)

    def write(self, lines: list[str], db: str | None = None) -> None:
        for i in range(0, len(lines), BATCH):
            body = "\n".join(lines[i:i + BATCH]).encode()
            if db is None:
                self.client.write(body, rp=ROLLUP_RP)
            else:
                self.client.write(body, rp=ROLLUP_RP, db=db)

    def _existing(self, result: Rollup, keys: set[Key] | None) -> list[tuple[tuple, int]]:
        """(tags, hour) of the points already stored in the span for those printers."""
        end = result.end if self.fresh_from is None else min(result.end, self.fresh_from)
        if end <= result.start:
            return []
        where = f"time >= {result.start}ms AND time < {end}ms"
        if keys is not None:
            names = "|".join(sorted({_regex(printer) for _, printer in keys}))
            where += f' AND "printer" =~ /^({names})$/'
        found = rows(self.client.query(f'SELECT "in_network_ms" FROM {SOURCE} WHERE {where} GROUP BY *'))
        out = []
        for row in found:
            tags = tuple(sorted((k, v) for k, v in row.items() if k not in ("time", "in_network_ms", "_measurement")))
            if keys is None or (dict(tags)["site"], dict(tags)["printer"]) in keys:
                out.append((tags, row["time"]))
        return out


def _regex(value: str) -> str:
    return "".join("\\" + c if not c.isalnum() and c not in "_-" else c for c in value)


__all__ = ["RollupStore", "FIELDS", "MEASUREMENT", "EXTENT", "SOURCE", "Row", "InfluxError"]

"""The customer dimension of the rollups: a printer's printing time cut by the customer of the
job under way, by the report's own code (``customer_view.job_spans``, ``printing_pieces``,
``Attribution.customer``), so the funder dashboard's hours per customer kind and enterprises
served are the report's customer view, hour by hour.

Each point gains the tags ``customer`` (the inventory's customer ID; ``private`` for every private
person, whom reports never show one by one; ``unattributed``) and ``customer_kind`` (the report's
kind classes: company_sme, company_large, academia, public, association, private, unattributed).
A printer's printing time inside a job goes to that job's customer; everything else (printing
outside any job or for no customer, and every other state) to ``unattributed``.

A span rolled up is often shorter than a job (an hour under way, a recomputation from the middle
of a job), so the start events of jobs under way at the span's start are read too
(``opening_jobs``): the start event holds the job's file and user, by which it is attributed.
"""

from __future__ import annotations

from typing import Callable

from server.attribution import Attribution
from server.inventory import Inventory
from server.reports import accounting as acc
from server.reports import customer_view
from server.reports.query import HERE, JobEvent, Key, RawData, Sources
from server.rollups.compute import Parts, Segments
from server.store.influx import InfluxHTTP, rows

UNATTRIBUTED, PRIVATE = "unattributed", "private"
OPEN_FOR_MS = 7 * 86_400_000  # a job started longer ago than this before a span is not looked for
ENDS = "|".join(customer_view.ENDS)


class CustomerSplit:
    """A ``compute.Split``: the unattributed part, then one part per customer that printed."""

    def __init__(self, inventory: Inventory, attribution: Attribution, opening: Callable[[int], list[JobEvent]]):
        self.inventory, self.attribution, self.opening = inventory, attribution, opening
        self._tags: dict[str | None, dict[str, str]] = {}

    def __call__(self, data: RawData, start: int, until: int) -> Callable[[Key, Segments], Parts]:
        spans = customer_view.job_spans(self.opening(start) + data.jobs)  # both in time order
        for mine in spans.values():
            for s in mine:
                s.customer = self.attribution.customer(s.site, s.printer, s.user, s.file, s.start)
        return lambda key, segs: self._parts(spans.get(key, []), segs, until)

    def _parts(self, spans: list, segs: Segments, until: int) -> Parts:
        rest = [s for s in segs if s[2] != acc.PRINTING]
        by: dict[str, Segments] = {}
        for span, a, b in customer_view.printing_pieces(spans, segs, until):
            customer = span.customer if span is not None else None
            (rest if customer is None else by.setdefault(customer, [])).append((a, b, acc.PRINTING))
        return [(self.tags(None), rest)] + [(self.tags(c), part) for c, part in by.items()]

    def tags(self, customer: str | None) -> dict[str, str]:
        found = self._tags.get(customer)
        if found is None:
            kind = customer_view.kind_class(self.inventory, customer)
            name = UNATTRIBUTED if customer is None else PRIVATE if kind == PRIVATE else customer
            found = self._tags[customer] = {"customer": name, "customer_kind": kind}
        return found


def opening_jobs(client: InfluxHTTP, start: int, sources: Sources = HERE) -> list[JobEvent]:
    """The start events of jobs under way at ``start``: per printer, its last start event in the
    ``OPEN_FOR_MS`` before, unless a job ended after it (and before ``start``). In time order."""
    window = f"time >= {start - OPEN_FOR_MS}ms AND time < {start}ms"
    started = _last(client, f'SELECT "user", "file" FROM {sources.job} WHERE {window} AND "kind" = \'started\'')
    ended = _last(client, f'SELECT "job_started" FROM {sources.job} WHERE {window} AND "kind" =~ /^({ENDS})$/')
    out = [JobEvent(row["time"], site, printer, "started", row.get("file"), row.get("user"))
           for (site, printer), row in started.items()
           if (site, printer) not in ended or ended[(site, printer)]["time"] < row["time"]]
    return sorted(out, key=lambda j: j.ts)


def _last(client: InfluxHTTP, select: str) -> dict[Key, dict]:
    found = rows(client.query(f'{select} GROUP BY "site", "printer" ORDER BY time DESC LIMIT 1'))
    return {(r["site"], r["printer"]): r for r in found}


def split_for(cfg, inventory: Inventory, client: InfluxHTTP, sources: Sources = HERE) -> CustomerSplit:
    """The split of a server config: attribution by the inventory, users matched by pseudonym."""
    attribution = Attribution(inventory, cfg.privacy.pseudonyms(cfg.state_dir))
    return CustomerSplit(inventory, attribution, lambda start: opening_jobs(client, start, sources))

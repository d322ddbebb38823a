"""Who the printers served: jobs, printing hours and filament per customer, kind and county.

A job is its events in the period (started, then done/failed/cancelled), identified by printer and
start time. It belongs to the customer ``Attribution.customer`` names for its site, printer, user,
file and start time, or to no one (*unattributed*). Its events count as in the utilisation tables
(started when it started, ended when it ended); its **printing hours** are the printer's printing
time (the same segments as utilisation) between its start and its end, or the end of what was
counted. Printing time outside every job recorded in the period (a job that started before the
period and ends after it, or lost job events) is unattributed too, so the customers' printing
hours add up to the network's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from server.attribution import Attribution
from server.inventory import Inventory
from server.reports import accounting as acc
from server.reports.query import JobEvent

ENDS = ("done", "failed", "cancelled")
KIND_CLASSES = ("company_sme", "company_large", "academia", "public", "association", "private", "unattributed")


@dataclass(slots=True)
class Figures:
    jobs: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("started", *ENDS), 0))
    printing_ms: int = 0
    filament_mm: float = 0.0
    sites: set[str] = field(default_factory=set)

    def add(self, other: "Figures") -> None:
        for kind, n in other.jobs.items():
            self.jobs[kind] += n
        self.printing_ms += other.printing_ms
        self.filament_mm += other.filament_mm
        self.sites |= other.sites

    @property
    def active(self) -> bool:
        return any(self.jobs.values())


@dataclass(slots=True)
class Span:
    site: str
    printer: str
    start: int
    end: int | None  # None: no end in the period
    user: str | None
    file: str | None
    events: list[JobEvent]
    customer: str | None = None


@dataclass
class CustomerView:
    # (customer or None, county of the site) -> figures: every table below is a sum over these cells
    cells: dict[tuple[str | None, str], Figures] = field(default_factory=dict)
    outside_jobs_ms: int = 0  # printing time in no job recorded in the period (counted unattributed)
    jobs: int = 0  # jobs with an event in the period
    unattributed_jobs: int = 0
    disagreements: int = 0  # jobs two ways claimed for different customers
    by_way: dict[str, int] = field(default_factory=dict)  # jobs each way decided

    def cell(self, customer: str | None, county: str) -> Figures:
        found = self.cells.get((customer, county))
        if found is None:
            found = self.cells[(customer, county)] = Figures()
        return found

    def served(self) -> set[str]:
        return {c for (c, _), f in self.cells.items() if c is not None and f.active}


def compute(spans: dict[tuple[str, str], list["Span"]], segs: dict, inventory: Inventory, attribution: Attribution,
            end: int) -> CustomerView:
    """The customer view of a period from its jobs (``job_spans`` of its job events; each gets its
    customer here) and each printer's segments (by printer)."""
    view = CustomerView()
    for key, printer_segs in segs.items():
        county = inventory.tags(*key).county
        mine = spans.get(key, [])
        for span in mine:
            _attribute(view, span, attribution)
        _printing(view, county, mine, printer_segs, end)
        for span in mine:
            _count(view, span, county)
    return view


def job_spans(jobs: list[JobEvent]) -> dict[tuple[str, str], list[Span]]:
    """Each printer's jobs by start time: a job's events grouped by printer and start."""
    grouped: dict[tuple[str, str, int], list[JobEvent]] = {}
    for j in jobs:
        key = (j.site, j.printer, j.ts if j.kind == "started" else j.job_started or _start_of(j))
        found = grouped.get(key)
        if found is None:
            grouped[key] = [j]
        else:
            found.append(j)
    out: dict[tuple[str, str], list[Span]] = {}
    for (site, printer, start), events in sorted(grouped.items(), key=lambda item: item[0][2]):
        ends = [j.ts for j in events if j.kind != "started"]
        user = next((j.user for j in events if j.user), None)
        file = next((j.file for j in events if j.file), None)
        span = Span(site, printer, start, max(ends) if ends else None, user, file, events)
        out.setdefault((site, printer), []).append(span)
    return out


def _start_of(j: JobEvent) -> int:
    if j.job_started:
        return j.job_started
    return j.ts - int(j.duration * 1000) if j.duration else j.ts


def _attribute(view: CustomerView, span: Span, attribution: Attribution) -> None:
    span.customer, way, disagree = attribution.decide(span.site, span.printer, span.user, span.file, span.start)
    view.jobs += 1
    view.unattributed_jobs += span.customer is None
    view.disagreements += disagree
    if way:
        view.by_way[way] = view.by_way.get(way, 0) + 1


def _printing(view: CustomerView, county: str, spans: list[Span], segs: list, end: int) -> None:
    """Each job's share of the printer's printing segments; the rest is unattributed."""
    inside: dict[int, int] = {}  # id(span) -> ms
    outside = 0
    for span, a, b in printing_pieces(spans, segs, end):
        if span is None:
            outside += b - a
        else:
            inside[id(span)] = inside.get(id(span), 0) + b - a
    for span in spans:
        ms = inside.get(id(span))
        if ms:
            view.cell(span.customer, county).printing_ms += ms
    view.cell(None, county).printing_ms += outside
    view.outside_jobs_ms += outside


def printing_pieces(spans: list[Span], segs: list, end: int) -> list[tuple[Span | None, int, int]]:
    """A printer's printing time as pieces ``(job, start, end)`` in time order: within a job's
    window it is that job's, outside every window ``None``. The customer view sums them; the hourly
    rollups (server/rollups/customers.py) cut them into hours. One pass: jobs and segments are both
    in time order."""
    windows = _windows(spans, end)
    out: list[tuple[Span | None, int, int]] = []
    w = 0
    for a, b, cat in segs:
        if cat != acc.PRINTING:
            continue
        while a < b:
            while w < len(windows) and windows[w][2] <= a:
                w += 1
            if w == len(windows) or windows[w][1] >= b:
                out.append((None, a, b))
                break
            span, low, high = windows[w]
            if low > a:
                out.append((None, a, low))
                a = low
            stop = min(high, b)
            out.append((span, a, stop))
            a = stop
    return out


def _windows(spans: list[Span], end: int) -> list[tuple[Span, int, int]]:
    """Each job's window: its start up to its end, the next job's start, or ``end``."""
    out = []
    for n, span in enumerate(spans):
        stop = span.end if span.end is not None else end
        if n + 1 < len(spans):
            stop = min(stop, spans[n + 1].start)  # jobs of one printer do not overlap
        if stop > span.start:
            out.append((span, span.start, stop))
    return out


def _count(view: CustomerView, span: Span, county: str) -> None:
    cell = view.cell(span.customer, county)
    cell.sites.add(span.site)
    jobs = cell.jobs
    for j in span.events:
        jobs[j.kind] += 1
        if j.filament_mm and j.kind == "done":
            cell.filament_mm += j.filament_mm


# --- sums for the tables -------------------------------------------------------------------------


def kind_class(inventory: Inventory, customer: str | None) -> str:
    if customer is None:
        return "unattributed"
    c = inventory.customers[customer]
    if c.kind == "company":
        return "company_large" if c.size == "large" else "company_sme"  # micro, small, medium (or not said)
    return c.kind


def customer_county(inventory: Inventory, customer: str | None) -> str | None:
    return None if customer is None else inventory.customers[customer].county


def sums(view: CustomerView, key) -> dict:
    """Figures and the customers served, summed by ``key(customer, site_county)``."""
    out: dict = {}
    for (customer, county), figures in view.cells.items():
        group = key(customer, county)
        total, served = out.setdefault(group, (Figures(), set()))
        total.add(figures)
        if customer is not None and figures.active:
            served.add(customer)
    return out


def enterprise_key(inventory: Inventory, customer: str) -> str:
    """An enterprise is its organisation number; one without is its customer ID."""
    return inventory.customers[customer].org_number or f"customer:{customer}"


ENTERPRISE_CLASSES = ("micro", "small", "medium", "large", "small_medium")


def enterprises(inventory: Inventory, served: set[str]) -> dict[str, set[str]]:
    """The enterprises (by ``enterprise_key``) among ``served``: all, SMEs, and per size class."""
    out: dict[str, set[str]] = {"all": set(), "sme": set(), **{size: set() for size in ENTERPRISE_CLASSES}}
    for c in served:
        customer = inventory.customers[c]
        if not customer.enterprise:
            continue
        key = enterprise_key(inventory, c)
        out["all"].add(key)
        out[customer.size].add(key)
        if customer.size != "large":
            out["sme"].add(key)
    return out

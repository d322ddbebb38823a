"""What each job used and cost (docs/materials.md "Cost"): one ``JobCost`` per job that ended in
the period, billed when it ended.

- grams per tool: a measured amount as it is; a slicer estimate whole for a completed job and pro
  rata to the job's progress at its end for a failed or cancelled one (unknown progress: not
  counted, and said); where only millimetres are known, grams by the material's density.
- metres only where the printer gave a length (never made up from grams).
- cost = hours x the printer's hour rate + grams / 1000 x the material's price per kg + start fee;
  what the inventory has no price for counts 0 and the report's notes name it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import msgspec

from common.protocol import MaterialUse
from server.costs import Prices
from server.inventory import Inventory
from server.reports import causes
from server.reports.customer_view import ENDS, Span, kind_class

log = logging.getLogger(__name__)
_DECODE = msgspec.json.Decoder(list[MaterialUse])


@dataclass(slots=True)
class ToolUse:
    material: str  # the inventory's (or a default density's) type, else as reported, else ""
    source: str
    grams: float | None
    mm: float | None


@dataclass(slots=True)  # ~100,000 in a year's report: figures made once, plain fields
class JobCost:
    started: int | None
    ended: int
    site: str
    printer: str
    organisation: str
    customer: str | None
    kind: str  # customer kind class (customer_view.kind_class)
    outcome: str  # done | failed | cancelled
    cause: str  # causes.cause: '' when done
    hours: float | None
    tools: list[ToolUse] = field(default_factory=list)
    machine_cost: float = 0.0
    material_cost: float = 0.0
    start_fee: float = 0.0
    grams: float | None = None  # the tools' counted grams; None: none known
    metres: float | None = None  # the tools' lengths; None: none given
    material: str = ""  # the tools' types, "+"-joined
    source: str = ""  # measured | slicer | mixed | "" (no amount)
    cost: float = 0.0

    def finish(self) -> "JobCost":
        """The job's sums, from its tools and costs (once, when they are all in)."""
        grams = mm = None
        materials, sources = [], set()
        for t in self.tools:
            if t.grams is not None:
                grams = (grams or 0.0) + t.grams
            if t.mm is not None:
                mm = (mm or 0.0) + t.mm
            if t.material and t.material not in materials:
                materials.append(t.material)
            if t.grams is not None or t.mm is not None:
                sources.add(t.source)
        self.grams, self.metres, self.material = grams, None if mm is None else mm / 1000, "+".join(materials)
        self.source = sources.pop() if len(sources) == 1 else "mixed" if sources else ""
        self.cost = self.machine_cost + self.material_cost + self.start_fee
        return self


@dataclass
class CostView:
    currency: str = "SEK"
    jobs: list[JobCost] = field(default_factory=list)
    no_price: set[str] = field(default_factory=set)  # materials used with no price in the inventory
    no_density: set[str] = field(default_factory=set)  # lengths not made grams: no density known
    no_progress: int = 0  # failed/cancelled jobs with a slicer estimate and no progress: not counted
    no_rate: set[str] = field(default_factory=set)  # printers with hours and no hour rate
    unreadable: int = 0  # material_use fields that did not decode
    assumed: int = 0  # tools whose type was [rates] assumed_material (the printer named none)
    customers: dict = field(default_factory=dict)  # the inventory's, to name them
    spoolman: str | None = None  # why [spoolman] could not be read, if it could not
    sums: object = None  # cost_tables.Sums, made when first asked for
    local_times: list | None = None  # each job's (start, end) as local times, made when first asked for
    billing: dict = field(default_factory=dict)  # lang -> the billing sheet's rows, made when first asked for


def compute(spans: dict[tuple[str, str], list[Span]], inventory: Inventory) -> CostView:
    """Every ended job of the period (spans with their customer, after customer_view.compute)."""
    prices = Prices(inventory)
    view = CostView(currency=prices.currency, customers=inventory.customers, spoolman=prices.spoolman_problem)
    kinds: dict[str | None, str] = {}
    found_causes: dict[tuple[str, str | None], str] = {}  # error texts repeat: each is read once
    for (site, printer), mine in spans.items():
        tags = inventory.tags(site, printer)
        rate = prices.rate(printer)
        for span in mine:
            end = next((e for e in reversed(span.events) if e.kind in ENDS), None)
            if end is None:
                continue
            kind = kinds.get(span.customer)
            if kind is None:
                kind = kinds[span.customer] = kind_class(inventory, span.customer)
            view.jobs.append(_job(view, span, end, tags.organisation, kind, rate, prices, found_causes))
    view.jobs.sort(key=lambda j: (j.ended, j.site, j.printer))
    return view


def _job(view: CostView, span: Span, end, organisation: str, kind: str, rate, prices: Prices,
         found_causes: dict) -> JobCost:
    hours = (end.duration / 3600 if end.duration is not None
             else (end.ts - span.start) / 3_600_000 if span.start and span.start < end.ts else None)
    cause = found_causes.get((end.kind, end.error))
    if cause is None:
        cause = found_causes[(end.kind, end.error)] = causes.cause(end.kind, end.error)
    job = JobCost(span.start, end.ts, span.site, span.printer, organisation, span.customer, kind, end.kind, cause, hours)
    assumed = rate.assumed_material
    job.tools = [_tool(view, use, end, prices, assumed) for use in _uses(view, end.material_use)] \
        if end.material_use else []
    if hours is not None and hours > 0:
        if rate.hour_rate is None:
            view.no_rate.add(f"{span.site}/{span.printer}")
        job.machine_cost = hours * (rate.hour_rate or 0.0)
    job.start_fee = rate.start_fee or 0.0
    for tool in job.tools:
        price = prices.price_per_kg(tool.material) if tool.material else None
        if tool.grams:
            if price is None:
                view.no_price.add(tool.material or "(no type)")
            job.material_cost += tool.grams / 1000 * (price or 0.0)
    return job.finish()


def _uses(view: CostView, text: str | None) -> list[MaterialUse]:
    if not text:
        return []
    try:
        return _DECODE.decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError):
        view.unreadable += 1
        return []


def _tool(view: CostView, use: MaterialUse, end, prices: Prices, assumed: str | None = None) -> ToolUse:
    reported = use.type
    if reported is None and assumed is not None:  # the printer named none: the inventory's assumption
        reported = assumed
        view.assumed += 1
    material = prices.kind(reported) or (reported or "")
    share = 1.0
    if use.source == "slicer" and end.kind != "done":
        if end.progress is None:
            view.no_progress += 1
            return ToolUse(material, use.source, None, None)
        share = max(0.0, min(100.0, end.progress)) / 100
    mm = None if use.mm is None else use.mm * share
    grams = None if use.grams is None else use.grams * share
    if grams is None and mm is not None:
        grams = prices.grams_of_mm(prices.kind(reported), mm)
        if grams is None:
            view.no_density.add(reported or "(no type)")
    return ToolUse(material, use.source, grams, mm)


def notes(view: CostView) -> list[tuple[str, dict]]:
    out = []
    if view.no_price:
        out.append(("cost_no_price", {"materials": ", ".join(sorted(view.no_price))}))
    if view.no_density:
        out.append(("cost_no_density", {"materials": ", ".join(sorted(view.no_density))}))
    if view.no_progress:
        out.append(("cost_no_progress", {"n": view.no_progress}))
    if view.no_rate:
        out.append(("cost_no_rate", {"printers": ", ".join(sorted(view.no_rate))}))
    if view.assumed:
        out.append(("cost_assumed", {"n": view.assumed}))
    if view.spoolman:
        out.append(("cost_spoolman", {"problem": view.spoolman}))
    if view.unreadable:
        out.append(("cost_unreadable_material", {"n": view.unreadable}))
    return out

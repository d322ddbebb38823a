"""The funder's indicators, counted as the ERDF programmes count them (docs/reports.md, "Indicators").

- **RCO01** (CO01 in 2014-20) enterprises supported, split micro / small / medium / large
  (Commission Recommendation 2003/361/EC; the old ``small_medium`` as "SME, class not given");
- **RCO04** (CO04) enterprises with non-financial support: every enterprise served (the network
  gives access to printers and staff, never money), so it equals RCO01;
- **RCO05** (CO05) new enterprises: registered less than three years before they were first
  served in the project;
- **RCO10** (CO26) enterprises cooperating with research organisations: a job of theirs ran on a
  printer of a site whose organisation is a research organisation (``organisation_kind``).

Each for the period and cumulatively since the project's start, each enterprise once, identified
by its organisation number (by its customer ID where it has none). An enterprise is *served* in a
window when a job of its has an event (started or ended) in it, as in the customer view; it was
*first served* when its first such job started.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from server.attribution import Attribution
from server.customers import LEGACY_SME, SIZES
from server.inventory import Inventory
from server.reports.indicator_labels import Counted
from server.reports.customer_view import Span, job_spans
from server.reports.periods import Period, zone

# (key, code 2021-27, code 2014-20); the sizes are parts of RCO01
INDICATORS = (("RCO01", "RCO01", "CO01"), *((f"RCO01_{s}", "RCO01", "CO01") for s in (*SIZES, LEGACY_SME)),
              ("RCO04", "RCO04", "CO04"), ("RCO05", "RCO05", "CO05"), ("RCO10", "RCO10", "CO26"))
NEW_AFTER_YEARS = 3


@dataclass(slots=True)
class Use:
    """A customer's jobs in a window: when the first started, and whether one ran at a research site."""

    first_ms: int
    research: bool


def uses(spans: dict[tuple[str, str], list[Span]], research_sites: set[str], low: int | None = None,
         high: int | None = None) -> dict[str, Use]:
    """Each customer's use in ``[low, high)`` from attributed job spans (a job counts when an event
    is in it); without a window, every span's (its events were read for the window: a year's
    report has ~90,000 of them)."""
    out: dict[str, Use] = {}
    check = low is not None
    for printer_spans in spans.values():
        for span in printer_spans:
            if span.customer is None or check and not any(low <= e.ts < high for e in span.events):
                continue
            research = span.site in research_sites
            found = out.get(span.customer)
            if found is None:
                out[span.customer] = Use(span.start, research)
            else:
                found.first_ms = min(found.first_ms, span.start)
                found.research = found.research or research
    return out


def merge(*parts: dict[str, Use]) -> dict[str, Use]:
    out: dict[str, Use] = {}
    for part in parts:
        for customer, u in part.items():
            found = out.get(customer)
            out[customer] = Use(u.first_ms, u.research) if found is None else \
                Use(min(found.first_ms, u.first_ms), found.research or u.research)
    return out


def attributed_spans(jobs: list, attribution: Attribution) -> dict[tuple[str, str], list[Span]]:
    """Job events as spans with their customer (for the jobs before the period)."""
    spans = job_spans(jobs)
    for printer_spans in spans.values():
        for span in printer_spans:
            span.customer = attribution.customer(span.site, span.printer, span.user, span.file, span.start)
    return spans


def is_new(registered: date | int | None, first_ms: int, tz: str) -> bool | None:
    """Did the enterprise not exist three years before it was first served? None: cannot say (no
    registration, or only a year that holds the day three years before)."""
    if registered is None:
        return None
    first = datetime.fromtimestamp(first_ms / 1000, zone(tz)).date()
    cutoff = _years_before(first, NEW_AFTER_YEARS)
    if isinstance(registered, int):
        return None if registered == cutoff.year else registered > cutoff.year
    return registered > cutoff  # registered on the cutoff day: it existed then


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


@dataclass
class Enterprise:
    key: str  # organisation number, or "customer:<id>" without one
    org_number: str
    name: str
    size: str
    registered: date | int | None
    customers: list[str]
    period: Use | None = None
    before: Use | None = None  # since the project's start, before the period
    project: Use | None = None  # since the project's start, up to the period's end
    new: bool | None = None  # RCO05

    @property
    def first_ms(self) -> int | None:
        use = self.project or self.period
        return use.first_ms if use else None


@dataclass
class Indicators:
    period: Period
    project_name: str = ""
    has_project: bool = False
    project_start: date | None = None
    enterprises: list[Enterprise] = field(default_factory=list)
    targets: dict[str, int] = field(default_factory=dict)
    unsized: int = 0  # enterprises counted with the old small_medium class

    def members(self, key: str, scope: str) -> list[Enterprise]:
        """The enterprises behind one count: scope 'period', 'before' or 'project'."""
        out = []
        for e in self.enterprises:
            use = getattr(e, scope)
            if use is None:
                continue
            if key.startswith("RCO01_") and e.size != key.removeprefix("RCO01_"):
                continue
            if key == "RCO05" and not e.new:
                continue
            if key == "RCO10" and not use.research:
                continue
            out.append(e)
        return out

    def rows(self) -> list[dict]:
        """One row per indicator: the period's count, how many of them were first counted in the
        period, the count since the project's start, the target and the share of it reached."""
        out = []
        for key, code, old in INDICATORS:
            if key == f"RCO01_{LEGACY_SME}" and not self.unsized:
                continue
            period = len(self.members(key, "period"))
            row = {"indicator": key, "code": code, "code_2014": old, "period": period,
                   "first_in_period": None, "cumulative": None, "target": None, "share_reached": None}
            if self.has_project:
                before = {e.key for e in self.members(key, "before")}
                now = {e.key for e in self.members(key, "project")}
                target = self.targets.get(key)
                row.update(first_in_period=len(now - before), cumulative=len(now), target=target,
                           share_reached=len(now) / target if target else None)
            out.append(row)
        return out


def compute(inventory: Inventory, period: Period, period_spans: dict, before: dict[str, Use] | None) -> Indicators:
    """The indicators of ``period``: ``period_spans`` its attributed job spans, ``before`` each
    customer's use since the project's start up to the period (None: no [project])."""
    project = inventory.project
    research = inventory.research_sites()
    out = Indicators(period, has_project=project is not None)
    in_period = uses(period_spans, research)  # the period's spans: each has an event in it
    since = None
    if project is not None:
        low, high = project.bounds_ms(period.tz)
        out.project_name, out.project_start, out.targets = project.name, project.start, dict(project.targets)
        inside = low <= period.start_ms and period.end_ms <= high
        in_project = in_period if inside else uses(period_spans, research, max(low, period.start_ms),
                                                   min(high, period.end_ms))
        since = merge(before or {}, in_project)
    firms = _enterprises(inventory)
    for firm in firms.values():
        firm.period = _join(in_period, firm.customers)
        if since is not None:
            firm.before = _join(before or {}, firm.customers)
            firm.project = _join(since, firm.customers)
        if firm.first_ms is not None:
            firm.new = is_new(firm.registered, firm.first_ms, period.tz)
    out.enterprises = sorted((f for f in firms.values() if f.period or f.project),
                             key=lambda f: (f.org_number or "~", f.name.lower()))
    out.unsized = sum(1 for f in out.enterprises if f.size == LEGACY_SME)
    return out


def _enterprises(inventory: Inventory) -> dict[str, Enterprise]:
    out: dict[str, Enterprise] = {}
    for cid, c in sorted(inventory.customers.items()):
        if not c.enterprise:
            continue
        key = c.org_number or f"customer:{cid}"
        found = out.get(key)
        if found is None:
            out[key] = Enterprise(key, c.org_number or "", c.name, c.size or "", c.registered, [cid])
        else:
            found.customers.append(cid)
    return out


def _join(per_customer: dict[str, Use], customers: list[str]) -> Use | None:
    found = [per_customer[c] for c in customers if c in per_customer]
    if not found:
        return None
    return Use(min(u.first_ms for u in found), any(u.research for u in found))


def notes(found: Indicators) -> list[tuple[str, dict]]:
    """(code, args) of the indicator notes (labels.NOTES 'indicators_<code>'): what keeps an
    enterprise out of a count, or counts it less exactly than the funder would want."""
    out = []
    if not found.has_project and found.enterprises:
        out.append(("no_project", {}))
    groups = {
        "no_org_number": [e for e in found.enterprises if not e.org_number],
        "no_registration": [e for e in found.enterprises if e.registered is None],
        "year_only": [e for e in found.enterprises if isinstance(e.registered, int) and e.new is None],
        "unsized": [e for e in found.enterprises if e.size == LEGACY_SME],
    }
    for code, firms in groups.items():
        if firms:
            out.append((code, {"enterprises": Counted(len(firms), "enterprise"),
                               "names": ", ".join(e.name for e in firms)}))
    return [(f"indicators_{code}", args) for code, args in out]

"""From what the database holds to a Report: usage per printer, groupings, job list, notes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from server.attribution import Attribution
from server.inventory import UNKNOWN, Inventory
from server.reports import accounting as acc
from server.reports import aggregate, cost, customer_rows, customer_view, indicators, timelines
from server.reports.people import People
from server.reports.periods import Period, months, zone
from server.reports.query import JobEvent, RawData

MS_PER_HOUR = aggregate.MS_PER_HOUR


@dataclass
class Note:
    code: str  # key of the note's text in labels.NOTES
    args: dict = field(default_factory=dict)


@dataclass(slots=True)  # ~100,000 of them in a year's report
class JobRow:
    started: datetime | None
    ended: datetime | None
    outcome: str  # done | failed | cancelled | running
    site: str
    printer: str
    organisation: str
    county: str
    file: str
    user: str
    duration_h: float | None
    filament_m_est: float | None
    error: str


@dataclass
class Report:
    period: Period
    as_of_ms: int  # the end of what was counted (the period's end, or now for a running period)
    usages: list[aggregate.Usage]
    groupings: dict[str, list[dict]]
    jobs: list[JobRow]
    monthly: list[dict]  # label, printing_h, in_network_h, util_period
    notes: list[Note]
    customers: customer_view.CustomerView = field(default_factory=customer_view.CustomerView)
    customer_tables: dict[str, list[dict]] = field(default_factory=dict)  # customers, kinds, ... (customer_rows)
    previous: "Report | None" = None  # the period before, for key figures and new customers
    indicators: "indicators.Indicators | None" = None  # the funder's indicators (with details only)
    project_before: "dict | None" = None  # each customer's use since the project's start, before the period
    site_names: dict[str, str] = field(default_factory=dict)
    cost: cost.CostView = field(default_factory=cost.CostView)  # material, cost, outcomes per job (cost.py)
    maintenance: list[dict] = field(default_factory=list)  # server/reports/maintenance.py
    network_name: str = ""
    users_shown: str = "pseudonym"  # [privacy] users / report --users
    queries: int = 0
    generated_ms: int = 0

    def generated(self) -> datetime:
        return self.period.local(self.generated_ms).replace(tzinfo=None, microsecond=0)


def build(data: RawData, inventory: Inventory, period: Period, now_ms: int, people: People | None = None,
          previous: "Report | None" = None, details: bool = True, jobs: "list[JobRow] | None" = None,
          project_before: "dict | None" = None) -> Report:
    """The report of ``period``. ``details`` False leaves out the job list, the monthly trend, the
    notes and the indicators: for the previous period, of which only the figures are compared.
    ``jobs``: the job list if it was made already (``job_rows`` as soon as the job events were read).
    ``project_before``: each customer's use since the project's start up to the period
    (``indicators.uses``; None without a [project], or for none)."""
    people = people or People()
    end = timelines.counted_until(period.start_ms, period.end_ms, now_ms)
    pseudonymise(data, people)
    segs = timelines.segments_by_printer(data, inventory, period.start_ms, end)
    usages = []
    for (site, printer), printer_segs in segs.items():
        tags = inventory.tags(site, printer)
        usages.append(aggregate.Usage(site, printer, tags.organisation, tags.county, tags.listed,
                                      acc.totals(printer_segs), site_name=inventory.site_name(site)))
    _count_jobs(usages, data.jobs)
    spans = customer_view.job_spans(data.jobs)
    view = customer_view.compute(spans, segs, inventory, Attribution(inventory, people.pseudonyms), end)
    report = Report(
        period=period, as_of_ms=end, usages=usages,
        groupings={g: aggregate.group(usages, g) for g in aggregate.GROUPINGS},
        jobs=(job_rows(data, inventory, period, people) if jobs is None else jobs) if details else [],
        monthly=_monthly(segs, period, end) if details else [],
        notes=notes(data, usages, segs, inventory, period, end, now_ms) if details else [], queries=data.queries,
        generated_ms=now_ms, customers=view, previous=previous,
        site_names={u.site: u.site_name for u in usages}, users_shown=people.show,
    )
    if details:
        report.indicators = indicators.compute(inventory, period, spans, project_before)
    report.customer_tables = _customer_tables(view, inventory, previous, report.indicators)
    if details:  # (not for the previous period: no figure compares cost)
        report.cost = cost.compute(spans, inventory)  # after customer_view.compute: each job has its customer
    if details:
        report.notes += customer_notes(view, people, inventory)
        report.notes += [Note(code, args) for code, args in indicators.notes(report.indicators)]
        report.notes += [Note(code, args) for code, args in cost.notes(report.cost)]
    return report


def _customer_tables(view, inventory: Inventory, previous: "Report | None",
                     found: "indicators.Indicators | None") -> dict[str, list[dict]]:
    before = previous.customers.served() if previous is not None else None
    new_firms = {e.key: e.new for e in found.enterprises} if found is not None else None
    return {
        "customers": customer_rows.customers(view, inventory, before, new_firms),
        "kinds": customer_rows.kinds(view, inventory),
        "customer_counties": customer_rows.by_customer_county(view, inventory),
        "site_counties": customer_rows.by_site_county(view, inventory),
        "enterprises": [customer_rows.enterprise_row(view, inventory, before, new_firms)],
    }


def customer_notes(view, people: People, inventory: Inventory) -> list[Note]:
    out = []
    if view.unattributed_jobs:
        out.append(Note("unattributed", {"jobs": view.unattributed_jobs, "of": view.jobs}))
    if view.outside_jobs_ms:
        out.append(Note("outside_jobs", {"hours": view.outside_jobs_ms / MS_PER_HOUR}))
    if view.disagreements:
        out.append(Note("disagreements", {"jobs": view.disagreements,
                                          "order": " > ".join(inventory.attribution.order)}))
    if people.other_keys():
        out.append(Note("other_key"))
    return out


def _count_jobs(usages: list[aggregate.Usage], jobs: list[JobEvent]) -> None:
    by_key = {(u.site, u.printer): u for u in usages}
    for job in jobs:
        u = by_key[(job.site, job.printer)]
        u.jobs[job.kind] += 1
        if job.kind == "done" and job.filament_mm:
            u.filament_mm += job.filament_mm
        if job.user:
            u.users.add((job.site, job.user))


def pseudonymise(data: RawData, people: People) -> None:
    """From here on a user is its pseudonym, whatever the point held (once: a pseudonym is not a name)."""
    if data.pseudonymous:
        return
    for job in data.jobs:
        job.user = people.user(job.site, job.user)
    data.pseudonymous = True


def job_rows(data: RawData, inventory: Inventory, period: Period, people: People | None = None) -> list[JobRow]:
    """One row per job: ends with their start; starts that did not end in the period as 'running'."""
    people = people or People()
    pseudonymise(data, people)
    jobs, local, who = data.jobs, LocalTimes(period), {}
    ended_starts = {(j.site, j.printer, j.job_started) for j in jobs if j.kind != "started" and j.job_started}
    out = []
    for j in jobs:
        started = j.kind == "started"
        if started and (j.site, j.printer, j.ts) in ended_starts:
            continue
        key = (j.site, j.printer)
        tags = who.get(key)
        if tags is None:
            tags = who[key] = inventory.tags(*key)  # as the printer's Usage has them
        out.append(JobRow(
            local(j.ts if started else j.job_started), None if started else local(j.ts),
            "running" if started else j.kind, j.site, j.printer, tags.organisation, tags.county, j.file or "",
            people.shown(j.site, j.printer, j.kind, j.ts, j.user),
            None if j.duration is None else j.duration / 3600,
            None if j.filament_mm is None else j.filament_mm / 1000, j.error or ""))
    out.sort(key=lambda r: (r.started or r.ended, r.site, r.printer))
    return out


class LocalTimes:
    """ms -> local wall-clock datetime, with the zone's offset looked up once per quarter hour
    (zone changes fall on quarter hours): a year's job list has ~170,000 times to convert."""

    STEP = 900_000
    EPOCH = datetime(1970, 1, 1)

    def __init__(self, period: Period):
        self.zone = zone(period.tz)
        self.offsets: dict[int, int] = {}

    def __call__(self, ms: int | None) -> datetime | None:
        if ms is None:
            return None
        bucket = ms // self.STEP
        offset = self.offsets.get(bucket)
        if offset is None:
            moment = datetime.fromtimestamp(bucket * self.STEP / 1000, timezone.utc).astimezone(self.zone)
            offset = self.offsets[bucket] = int(moment.utcoffset().total_seconds() * 1000)
        return self.EPOCH + timedelta(milliseconds=ms + offset)


def _naive(period: Period, ms: int | None) -> datetime | None:
    """Local wall-clock time without tzinfo: what spreadsheets show (the zone is in the header)."""
    return None if ms is None else period.local(ms).replace(tzinfo=None)


def _monthly(segs: dict, period: Period, end: int) -> list[dict]:
    spans = [m for m in months(period) if m.start_ms < end]
    bounds = [m.start_ms for m in spans] + [min(spans[-1].end_ms, end)] if spans else []
    sums = [dict.fromkeys(acc.CATEGORIES, 0) for _ in spans]
    for printer_segs in segs.values():
        for total, part in zip(sums, acc.totals_by_window(printer_segs, bounds)):
            for cat, value in part.items():
                total[cat] += value
    return [{"month": m.label, "printing_h": ms[acc.PRINTING] / MS_PER_HOUR,
             "in_network_h": acc.in_network(ms) / MS_PER_HOUR,
             "util_period": acc.ratio(ms[acc.PRINTING], acc.in_network(ms))} for m, ms in zip(spans, sums)]


def notes(data: RawData, usages, segs, inventory: Inventory, period: Period, end: int, now_ms: int) -> list[Note]:
    """The lines that keep a reader from mistaking a gap for a zero."""
    out = []
    if end < period.end_ms:
        out.append(Note("running_period", {"as_of": _naive(period, now_ms)}))
    has_points = any(tl.points for tl in data.timelines.values()) or data.jobs
    if not has_points:
        out.append(Note("no_data"))
    if not usages:
        out.append(Note("no_printers"))
    unknown_sites = sorted({u.site for u in usages if u.site not in inventory.sites})
    for site in unknown_sites:
        printers = ", ".join(u.printer for u in usages if u.site == site)
        out.append(Note("unknown_site", {"site": site, "printers": printers, "unknown": UNKNOWN}))
    for u in usages:
        out.extend(_printer_notes(u, segs[(u.site, u.printer)], inventory, period, end))
    return out


def _printer_notes(u: aggregate.Usage, segs, inventory: Inventory, period: Period, end: int) -> list[Note]:
    name = f"{u.site}/{u.printer}"
    out = []
    if not u.listed:
        out.append(Note("not_in_inventory", {"printer": name}))
    total = end - period.start_ms
    if u.ms[acc.NOT_IN_NETWORK] == total:
        out.append(Note("never_reported", {"printer": name}))
    elif u.ms[acc.NOT_IN_NETWORK]:
        first = next(a for a, _, cat in segs if cat != acc.NOT_IN_NETWORK)
        out.append(Note("first_data", {"printer": name, "when": _naive(period, first),
                                       "hours": u.ms[acc.NOT_IN_NETWORK] / MS_PER_HOUR}))
    if u.ms[acc.UNKNOWN] == total:
        out.append(Note("silent", {"printer": name}))
    elif u.ms[acc.UNKNOWN]:
        gaps = sum(1 for *_, cat in segs if cat == acc.UNKNOWN)
        out.append(Note("gaps", {"printer": name, "hours": u.ms[acc.UNKNOWN] / MS_PER_HOUR, "gaps": gaps}))
    return out

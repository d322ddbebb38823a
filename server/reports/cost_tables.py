"""The material, cost and outcome sheets (docs/materials.md "Sheets"), as plain tables for the XLSX
and CSV writers, and their totals for the PDFs. A private person is never shown one by one: on
the job sheet as "private person", per customer as one line with their count. No file name and
no user appear here, whichever report it is."""

from __future__ import annotations

import dataclasses

from common.text import plain_or_none

from server.reports import cost_labels, customer_rows
from server.reports.build import LocalTimes, Report
from server.reports.cost import CostView, JobCost
from server.reports.labels import COLUMNS, KINDS, OUTCOMES, SHEETS, TEXT

BILLING_COLUMNS = ("job_started", "job_ended", "outcome", "site", "printer", "organisation", "customer_name", "kind",
                   "material", "grams", "metres", "source", "job_hours", "machine_cost", "material_cost", "start_fee",
                   "cost", "cause")
SUM_COLUMNS = ("jobs_ended", "job_hours", "grams", "metres", "machine_cost", "material_cost", "start_fee", "cost")
CUSTOMER_COLUMNS = ("customer_name", "kind", *SUM_COLUMNS)
ORGANISATION_COLUMNS = ("organisation", *SUM_COLUMNS)
MATERIAL_COLUMNS = ("material", "jobs_ended", "grams", "metres", "grams_wasted", "material_cost")
OUTCOME_COLUMNS = ("group", "name", "jobs_ended", "jobs_done", "jobs_failed", "jobs_cancelled", "success_rate",
                   "grams_wasted")
CAUSE_COLUMNS = ("cause", "jobs_ended", "grams_wasted")
MONEY = frozenset({"machine_cost", "material_cost", "start_fee", "cost"})
KEYS = ("billing", "cost_customers", "cost_organisations", "materials", "outcomes", "failure_causes")


def tables(report: Report, lang: str) -> list:
    from server.reports.tables import Table
    view = report.cost
    made = {"billing": (BILLING_COLUMNS, billing_rows(report, lang)),
            "cost_customers": (CUSTOMER_COLUMNS, _lists(CUSTOMER_COLUMNS, customer_sums(report, lang))),
            "cost_organisations": (ORGANISATION_COLUMNS, _lists(ORGANISATION_COLUMNS, organisation_sums(view))),
            "materials": (MATERIAL_COLUMNS, _lists(MATERIAL_COLUMNS, material_rows(view, lang))),
            "outcomes": (OUTCOME_COLUMNS, _lists(OUTCOME_COLUMNS, outcome_rows(report, lang))),
            "failure_causes": (CAUSE_COLUMNS, _lists(CAUSE_COLUMNS, cause_rows(view, lang)))}
    out = []
    for key in KEYS:
        columns, rows = made[key]
        header = [COLUMNS[lang][c] + (f" ({view.currency})" if c in MONEY else "") for c in columns]
        out.append(Table(key, SHEETS[lang][key], columns, header, rows))
    return out


def _lists(columns, rows: list[dict]) -> list[list]:
    return [[r.get(c) for c in columns] for r in rows]


def customer_label(report: Report, customer: str | None, lang: str) -> str:
    if customer is None:
        return TEXT[lang]["unattributed"]
    c = report.cost.customers.get(customer)
    if c is None:
        return customer
    if c.kind == customer_rows.PRIVATE:
        return cost_labels.TEXT[lang]["private_person"]
    return c.name or customer


def billing_rows(report: Report, lang: str) -> list[list]:
    """One row per job, in BILLING_COLUMNS' order (~100,000 in a year's report); made once per
    language for the XLSX and the CSV (the writers only read them)."""
    made = report.cost.billing.get(lang)
    if made is None:
        made = report.cost.billing[lang] = _billing_rows(report, lang)
    return made


def without_jobs(report: Report, lang: str) -> CostView:
    """The cost view with its sums and ``lang``'s billing rows made and its job list dropped: what
    a writer in another process needs of it. Its 100,000 JobCost objects take ~2 CPU-s to pickle
    and unpickle; the rows, made once for the CSV anyway, a third of that."""
    billing_rows(report, lang)
    sums_of(report.cost)
    return dataclasses.replace(report.cost, jobs=[], local_times=None,
                               billing={lang: report.cost.billing[lang]})


def _billing_rows(report: Report, lang: str) -> list[list]:
    outcomes, kinds = OUTCOMES[lang], KINDS[lang]
    sources, causes = cost_labels.SOURCES[lang], cost_labels.CAUSES[lang]
    names: dict = {}
    materials: dict = {}  # a handful of distinct texts in 100,000 jobs: each made plain once
    rows = []
    for j, (started, ended) in zip(report.cost.jobs, _local_times(report)):
        name = names.get(j.customer)
        if name is None:
            name = names[j.customer] = customer_label(report, j.customer, lang)
        material = materials.get(j.material)
        if material is None:
            material = materials[j.material] = plain_or_none(j.material) or ""
        rows.append([started, ended, outcomes[j.outcome], j.site, j.printer, j.organisation, name,
                     kinds[j.kind], material or None, j.grams, j.metres, sources[j.source] or None,
                     j.hours, j.machine_cost, j.material_cost, j.start_fee, j.cost,
                     causes[j.cause] if j.cause else None])
    return rows


def _local_times(report: Report) -> list:
    """Each job's start and end as local times, made once for every language's sheet."""
    view = report.cost
    if view.local_times is None:
        local = LocalTimes(report.period)
        view.local_times = [(local(j.started), local(j.ended)) for j in view.jobs]
    return view.local_times


class Acc:
    """Sums over jobs; hours, grams, metres and waste stay None while none is known."""

    __slots__ = ("jobs", "hours", "grams", "metres", "machine_cost", "material_cost", "start_fee", "cost",
                 "done", "failed", "cancelled", "wasted", "members", "kind")

    def __init__(self):
        self.jobs = self.done = self.failed = self.cancelled = 0
        self.hours = self.grams = self.metres = self.wasted = None
        self.machine_cost = self.material_cost = self.start_fee = self.cost = 0.0
        self.members: set = set()
        self.kind = ""  # the customer kind of its jobs (per customer: one)

    def add(self, j: JobCost) -> None:
        self.jobs += 1
        self.kind = j.kind
        if j.hours is not None:
            self.hours = (self.hours or 0.0) + j.hours
        if j.grams is not None:
            self.grams = (self.grams or 0.0) + j.grams
            if j.outcome != "done":
                self.wasted = (self.wasted or 0.0) + j.grams
        if j.metres is not None:
            self.metres = (self.metres or 0.0) + j.metres
        self.machine_cost += j.machine_cost
        self.material_cost += j.material_cost
        self.start_fee += j.start_fee
        self.cost += j.cost
        if j.outcome == "done":
            self.done += 1
        elif j.outcome == "failed":
            self.failed += 1
        else:
            self.cancelled += 1

    def merge(self, other: "Acc") -> None:
        """Adds another group's sums (its jobs are of this group too)."""
        self.jobs += other.jobs
        self.kind = other.kind
        for name in ("hours", "grams", "metres", "wasted"):
            theirs = getattr(other, name)
            if theirs is not None:
                setattr(self, name, (getattr(self, name) or 0.0) + theirs)
        self.machine_cost += other.machine_cost
        self.material_cost += other.material_cost
        self.start_fee += other.start_fee
        self.cost += other.cost
        self.done += other.done
        self.failed += other.failed
        self.cancelled += other.cancelled

    def sums(self) -> dict:
        return {"jobs_ended": self.jobs, "job_hours": self.hours, "grams": self.grams, "metres": self.metres,
                "machine_cost": self.machine_cost, "material_cost": self.material_cost, "start_fee": self.start_fee,
                "cost": self.cost}

    def outcome(self, group: str, name: str) -> dict:
        return {"group": group, "name": name, "jobs_ended": self.jobs, "jobs_done": self.done,
                "jobs_failed": self.failed, "jobs_cancelled": self.cancelled,
                "success_rate": self.done / self.jobs if self.jobs else None, "grams_wasted": self.wasted}


class Material:
    """Per material type: its tools' amounts (a job counted once per type it used)."""

    __slots__ = ("jobs", "grams", "metres", "wasted", "cost")

    def __init__(self):
        self.jobs, self.grams, self.metres, self.wasted, self.cost = 0, None, None, None, 0.0


class Sums:
    """Every grouping of the period's jobs, made in one pass and kept on the CostView (the XLSX,
    the CSV and the PDFs ask for them in turn).

    Each job is added to two fine groups: by customer (with its kind, the materials it used and its
    failure cause) and by printer (with its organisation); the groupings are sums of those few
    thousand groups. Adding each of a year's ~90,000 jobs to six groupings in turn took most of a
    second (docs/reports.md "Speed")."""

    def __init__(self, view: CostView):
        self.all = Acc()
        self.customer: dict = {}  # customer ID, PRIVATE or UNATTRIBUTED -> Acc
        self.organisation: dict = {}
        self.printer: dict = {}
        self.kind: dict = {}
        self.cause: dict = {}
        self.material: dict[str, Material] = {}  # "" = not reported
        self.material_outcome: dict[str, Acc] = {}
        by_customer: dict[tuple, Acc] = {}
        by_printer: dict[tuple, Acc] = {}
        for j in view.jobs:
            for fine, key in ((by_customer, (j.customer, j.kind, j.cause, self._materials(j))),
                              (by_printer, (j.site, j.printer, j.organisation))):
                acc = fine.get(key)
                if acc is None:
                    acc = fine[key] = Acc()
                acc.add(j)
        private = {c for c, entry in view.customers.items() if entry.kind == customer_rows.PRIVATE}
        for (customer, kind, cause, materials), acc in by_customer.items():
            key = customer_rows.UNATTRIBUTED if customer is None else \
                customer_rows.PRIVATE if customer in private else customer
            _into(self.customer, key, acc)
            _into(self.kind, kind, acc)
            if key == customer_rows.PRIVATE:
                self.customer[key].members.add(customer)
            if cause:
                _into(self.cause, cause, acc)
            for material in materials or ("",):
                _into(self.material_outcome, material, acc)
        for (site, printer, organisation), acc in by_printer.items():
            _into(self.printer, f"{site}/{printer}", acc)
            _into(self.organisation, organisation, acc)
            self.all.merge(acc)

    def _materials(self, j: JobCost) -> tuple:
        """Adds the job's tools to their materials; the materials it used, each once."""
        seen: list = []
        for t in j.tools or ():
            m = self.material.get(t.material)
            if m is None:
                m = self.material[t.material] = Material()
            if t.material not in seen:
                seen.append(t.material)
                m.jobs += 1
            if t.grams is not None:
                m.grams = (m.grams or 0.0) + t.grams
                if j.outcome != "done":
                    m.wasted = (m.wasted or 0.0) + t.grams
                if j.grams:  # the job's material cost split over its tools by their grams
                    m.cost += j.material_cost * t.grams / j.grams
            if t.mm is not None:
                m.metres = (m.metres or 0.0) + t.mm / 1000
        return tuple(seen)


def _into(table: dict, key, acc: Acc) -> None:
    found = table.get(key)
    if found is None:
        found = table[key] = Acc()
    found.merge(acc)


def sums_of(view: CostView) -> Sums:
    if view.sums is None:
        view.sums = Sums(view)
    return view.sums


def customer_sums(report: Report, lang: str) -> list[dict]:
    """Per customer (private persons one line, with their count), the unattributed last."""
    found, customers = sums_of(report.cost).customer, report.cost.customers
    rows = []
    for k in sorted((k for k in found if k not in (customer_rows.UNATTRIBUTED, customer_rows.PRIVATE)),
                    key=lambda c: (customers[c].name or c).lower()):
        rows.append({"customer_name": customer_label(report, k, lang), "kind": KINDS[lang][found[k].kind],
                     **found[k].sums()})
    if customer_rows.PRIVATE in found:
        acc = found[customer_rows.PRIVATE]
        rows.append({"customer_name": TEXT[lang]["private_persons"].format(n=len(acc.members)),
                     "kind": KINDS[lang]["private"], **acc.sums()})
    if customer_rows.UNATTRIBUTED in found:
        rows.append({"customer_name": TEXT[lang]["unattributed"], "kind": KINDS[lang]["unattributed"],
                     **found[customer_rows.UNATTRIBUTED].sums()})
    return rows


def organisation_sums(view: CostView) -> list[dict]:
    found = sums_of(view).organisation
    return [{"organisation": org, **found[org].sums()} for org in sorted(found, key=str.lower)]


def material_rows(view: CostView, lang: str) -> list[dict]:
    unknown = cost_labels.GROUPS[lang]["unknown_material"]
    found = sums_of(view).material
    return [{"material": k or unknown, "jobs_ended": m.jobs, "grams": m.grams, "metres": m.metres,
             "grams_wasted": m.wasted, "material_cost": m.cost}
            for k, m in sorted(found.items(), key=lambda item: (item[0] or unknown).lower())]


def outcome_rows(report: Report, lang: str) -> list[dict]:
    """Success rate and waste: all jobs, then per printer, per material, per customer kind."""
    found, g = sums_of(report.cost), cost_labels.GROUPS[lang]
    rows = [found.all.outcome(cost_labels.TEXT[lang]["all"], TEXT[lang]["network_all"])] if found.all.jobs else []
    rows += [found.printer[k].outcome(g["printer"], k) for k in sorted(found.printer)]
    named = {(k or g["unknown_material"]): acc for k, acc in found.material_outcome.items()}
    rows += [named[k].outcome(g["material"], k) for k in sorted(named, key=str.lower)]
    rows += [found.kind[k].outcome(g["kind"], KINDS[lang][k]) for k in KINDS[lang] if k in found.kind]
    return rows


def cause_rows(view: CostView, lang: str) -> list[dict]:
    found = sums_of(view).cause
    return [{"cause": cost_labels.CAUSES[lang][c], "jobs_ended": found[c].jobs, "grams_wasted": found[c].wasted}
            for c in sorted(found, key=lambda c: (-found[c].jobs, c))]


def totals(view: CostView) -> dict:
    """The period's totals: for the PDF's page and the funder summary."""
    acc = sums_of(view).all
    return {**acc.sums(), "grams_wasted": acc.wasted or 0.0,
            "success_rate": acc.done / acc.jobs if acc.jobs else None}

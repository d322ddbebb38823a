"""The fleet inventory: sites (organisation, county), printers (site, model), optionally which
agent watches which printers, the customers the printers serve and how jobs are attributed to
them (server/customers.py, server/attribution.py; docs/customers.md, examples/fleet.toml).

```toml
[sites.oru-makerspace]
name = "Örebro universitet, Makerspace"
organisation = "Örebro universitet"
county = "Örebro"
organisation_kind = "research"  # optional: a research organisation (university, institute): RCO10

[printers.oru-mk4-01]
site = "oru-makerspace"
model = "Prusa MK4"

[agents.oru-pi-01]              # optional: an agent may claim only these printers
printers = ["oru-mk4-01"]
```

An agent names its printers in its status; the collector believes it only for listed printers,
only for those ``[agents]`` grants it where that table names the agent, and never for a printer
``[agents]`` gives to another agent. Alerts about an agent are routed by its printers' places.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import msgspec

from common.configkit import ConfigError, Invalid, check_entries, check_id, convert, load_toml
from common.text import name_problem
from server import attribution, bookings, costs, maintenance_intervals, organisations
from server.attribution import AttributionSettings
from server.customers import Customer
from server.directory_config import Capabilities, check_capabilities, check_site_policy
from server.spoolman import SpoolmanSettings
from server.organisations import UNLISTED, Organisation
from server.project import Project

log = logging.getLogger(__name__)

UNKNOWN = "unknown"
# What an InfluxDB tag value cannot carry alike in every version (server/lineproto.py).
NOT_IN_TAGS = re.compile(r"[\\\x00-\x1f\x7f]")


def check_names(entry, *keys: str) -> None:
    """Names are shown to people (terminal, page, alerts, reports): no control or bidirectional
    formatting character may hide in them (common/text.py)."""
    for key in keys:
        value = getattr(entry, key)
        problem = value and name_problem(value)
        if problem:
            raise Invalid(key, f"{value[:40]!r} {problem}", "write the name without it")


# What a site's organisation is. Only "research" counts for now: companies whose jobs ran on a
# research organisation's printers cooperate with it (RCO10, CO26; server/reports/indicators.py).
ORGANISATION_KINDS = ("research", "public", "company", "association", "other")


class Site(msgspec.Struct, forbid_unknown_fields=True):
    organisation: str
    county: str
    name: str = ""
    organisation_kind: str = ""  # one of ORGANISATION_KINDS, or "" (not said)
    # The regional directory (server/directory_config.py, docs/directory.md)
    directory: str = "live"  # "live", "capabilities" (without live state) or "hidden"
    access: list[str] = []  # who may use the site's printers: members, companies, students, public
    contact: str = ""
    hours: str = ""  # opening hours, as text

    def __post_init__(self):
        check_names(self, "organisation", "county", "name")
        check_site_policy(self)
        if self.organisation_kind and self.organisation_kind not in ORGANISATION_KINDS:
            raise Invalid("organisation_kind", f"{self.organisation_kind!r} is not an organisation kind",
                          f"use one of {', '.join(ORGANISATION_KINDS)} ('research': a university or research institute)")
        for key in ("organisation", "county"):
            value = getattr(self, key)
            if not value.strip():
                raise Invalid(key, "is empty", f"write the site's {key}")
            if NOT_IN_TAGS.search(value):  # they become InfluxDB tag values
                raise Invalid(key, f"{value!r} holds a backslash or a control character",
                              "write the name without them")


class PrinterEntry(Capabilities):
    """A printer; as a Capabilities, what it can do where it cannot say so itself (over its
    model's; server/directory_config.py)."""
    site: str
    model: str = ""
    name: str = ""
    added: str | None = None  # ISO date the printer joined the network, for reports

    def __post_init__(self):
        check_names(self, "model", "name")
        check_capabilities(self)


class AgentEntry(msgspec.Struct, forbid_unknown_fields=True):
    printers: list[str]


class Inventory(msgspec.Struct, forbid_unknown_fields=True, dict=True):
    organisations: dict[str, Organisation] = {}  # the tables; every organisation: ``orgs``
    sites: dict[str, Site] = {}
    printers: dict[str, PrinterEntry] = {}
    models: dict[str, Capabilities] = {}  # capabilities by model name (the directory's)
    agents: dict[str, AgentEntry] = {}
    customers: dict[str, Customer] = {}
    attribution: AttributionSettings = msgspec.field(default_factory=AttributionSettings)
    project: Project | None = None
    materials: dict[str, costs.Material] = {}  # prices and densities (server/costs.py)
    rates: costs.Rates = msgspec.field(default_factory=costs.Rates)
    spoolman: SpoolmanSettings | None = None  # optional: prices and densities from Spoolman (server/spoolman.py)
    maintenance: maintenance_intervals.Maintenance = msgspec.field(default_factory=maintenance_intervals.Maintenance)

    def __post_init__(self):
        for org, entry in self.organisations.items():
            organisations.check_table(org, entry)
            if NOT_IN_TAGS.search(entry.name):  # it becomes the organisation tag's value
                raise Invalid(f"organisations.{org}.name", f"{entry.name!r} holds a backslash or a control "
                              "character", "write the name without them")
        for site_id in self.sites:
            check_id(f"sites.{site_id}", site_id)
        # every organisation by ID (tables, and display names sites give), each site's organisation ID
        self.orgs, self.org_of_site = organisations.resolve(self.organisations, self.sites)
        for printer_id, entry in self.printers.items():
            check_id(f"printers.{printer_id}", printer_id)
            if entry.site not in self.sites:
                raise Invalid(f"printers.{printer_id}.site", f"site {entry.site!r} is not defined",
                              f"add a [sites.{entry.site}] table or correct the site")
        self.agent_of = self._agents_of_printers()
        maintenance_intervals.check(self.maintenance, self.printers)  # docs/maintenance.md
        for customer_id in self.customers:
            check_id(f"customers.{customer_id}", customer_id)
        attribution.check(self)
        costs.check(self)
        self._check_organisation_kinds()
        self._check_enterprises()

    def _check_enterprises(self) -> None:
        """Customers with one organisation number are one enterprise: one kind, size and registration."""
        first: dict[str, str] = {}
        for cid, c in sorted(self.customers.items()):
            if c.org_number is None:
                continue
            other = first.setdefault(c.org_number, cid)
            mine, theirs = self.customers[cid], self.customers[other]
            for key in ("kind", "size", "registered"):
                if getattr(mine, key) != getattr(theirs, key):
                    raise Invalid(f"customers.{cid}.{key}", f"differs from customers.{other}, which has the same "
                                  f"org_number {c.org_number}", f"give one enterprise one {key} in all its entries")

    def _check_organisation_kinds(self) -> None:
        said: dict[str, tuple[str, str]] = {}
        for site_id, site in sorted(self.sites.items()):
            if not site.organisation_kind:
                continue
            other, kind = said.setdefault(site.organisation, (site_id, site.organisation_kind))
            if kind != site.organisation_kind:
                raise Invalid(f"sites.{site_id}.organisation_kind",
                              f"{site.organisation_kind!r}, but sites.{other} of {site.organisation!r} says {kind!r}",
                              "give every site of one organisation the same organisation_kind")

    def research_sites(self) -> set[str]:
        """Sites whose organisation is a research organisation (said on any of its sites)."""
        research = {s.organisation for s in self.sites.values() if s.organisation_kind == "research"}
        return {site_id for site_id, s in self.sites.items() if s.organisation in research}

    def advice(self) -> list[tuple[str, str, str]]:
        """(key, problem, fix) for what loads but should be refined (logged at load)."""
        return [(f"customers.{cid}.{key}", problem, fix)
                for cid, c in sorted(self.customers.items()) for key, problem, fix in c.advice()]

    def of_organisation(self, org: str) -> "Inventory":
        """This inventory with only ``org``'s sites and printers (its report, its rollups); the
        customers and attribution rules stay whole."""
        sites = {site: entry for site, entry in self.sites.items() if self.org_of_site[site] == org}
        printers = {p: entry for p, entry in self.printers.items() if entry.site in sites}
        agents = {a: AgentEntry([p for p in entry.printers if p in printers]) for a, entry in self.agents.items()}
        return msgspec.structs.replace(self, sites=sites, printers=printers, agents=agents,
                                       rates=costs.of_printers(self.rates, printers))

    def service_interval(self, printer_id: str) -> maintenance_intervals.Interval | None:
        """When the printer is due for service (docs/maintenance.md), or None."""
        entry = self.printers.get(printer_id)
        return maintenance_intervals.interval_of(self.maintenance, printer_id, entry.model if entry else "")

    def site_name(self, site: str) -> str:
        """What a reader sees for a site: its name, or its ID when it has none."""
        found = self.sites.get(site)
        return (found.name or site) if found else site

    def _agents_of_printers(self) -> dict[str, str]:
        owner: dict[str, str] = {}
        for agent_id, entry in self.agents.items():
            check_id(f"agents.{agent_id}", agent_id)
            for i, printer_id in enumerate(entry.printers):
                key = f"agents.{agent_id}.printers[{i}]"
                if printer_id not in self.printers:
                    raise Invalid(key, f"printer {printer_id!r} is not defined",
                                  f"add a [printers.{printer_id}] table or correct the ID")
                if owner.setdefault(printer_id, agent_id) != agent_id:
                    raise Invalid(key, f"printer {printer_id!r} is also under agent {owner[printer_id]!r}",
                                  "give every printer to one agent")
        return owner

    def agent_printers(self, agent: str, claimed: list[str]) -> list[tuple[str, str]]:
        """(site, printer) of the printers ``agent`` claims that the inventory lets it claim."""
        granted = agent if agent in self.agents else None  # an agent [agents] does not name: unmapped ones
        return [(self.printers[p].site, p) for p in claimed
                if p in self.printers and self.agent_of.get(p) == granted]

    def tags(self, site: str, printer: str) -> "Tags":
        """Tags for a message from ``site``/``printer``; unlisted printers are flagged, not dropped."""
        entry = self.printers.get(printer)
        site_info = self.sites.get(site)
        listed = entry is not None and entry.site == site
        org = self.org_of_site.get(site, UNLISTED)
        return Tags(
            printer=printer,
            site=site,
            organisation=self.orgs[org].name if site_info else UNKNOWN,
            county=site_info.county if site_info else UNKNOWN,
            listed=listed,
            org=org,
        )


class Tags(msgspec.Struct, frozen=True):
    printer: str
    site: str
    organisation: str  # the organisation's name (its display name): the tag reports group by
    county: str
    listed: bool
    org: str = UNLISTED  # the organisation's ID: which database holds the printer's detail


def load(path: str | Path) -> Inventory:
    return from_dict(load_toml(path), str(path), Path(path).parent)


def from_dict(data: dict, source: str = "<inventory>", base: Path | None = None) -> Inventory:
    """The inventory; ``base`` is the folder the bookings file is relative to (default: cwd)."""
    for key, typ in (("organisations", Organisation), ("sites", Site), ("printers", PrinterEntry),
                     ("agents", AgentEntry), ("customers", Customer), ("materials", costs.Material)):
        check_entries(data, key, typ, source)  # errors name the entry: sites.<id>.<key>
    for key in ("models", "printers"):
        check_entries(data.get("rates"), key, costs.Rate, source, prefix="rates.")
        check_entries(data.get("maintenance"), key, maintenance_intervals.Interval, source, "maintenance.")
    check_entries(data, "models", Capabilities, source)  # the directory's (server/directory_config.py)
    inv = _with_bookings(convert(data, Inventory, source), base or Path.cwd())
    for key, problem, fix in inv.advice():
        log.warning("%s: %s: %s — fix: %s", source, key, problem, fix)
    return inv


def _with_bookings(inv: Inventory, base: Path) -> Inventory:
    if inv.attribution.bookings:
        inv.attribution.booked = bookings.load(inv, base / inv.attribution.bookings)
    return inv


__all__ = ["Inventory", "Organisation", "UNLISTED", "Site", "PrinterEntry", "AgentEntry", "Customer", "Tags", "ConfigError", "UNKNOWN", "load",
           "from_dict"]

"""Which customer a job was for: ``Attribution.customer(site, printer, user, file, ts_ms)``.

Three ways, each from the inventory (docs/customers.md says why these three):

- ``tag``: the customer's ID in square brackets in the job's file name, e.g.
  ``bracket_v3 [kilsberg-verktyg].gcode`` (set by whoever slices the job; works on every printer
  API, also those without user accounts);
- ``booking``: a bookings file (server/bookings.py) — the printer (or, with an empty printer, the
  whole site) was booked by the customer when the job started;
- ``account``: the printer-API user account that ran the job belongs to the customer, from a date
  on (``[[attribution.accounts]]``; a later entry for the same account moves it from its date).

When ways disagree, ``[attribution] order`` decides (default tag, booking, account: the more
specific the statement, the higher it ranks — one job's file name, then one printer's booked
hours, then a person's standing link to an organisation). A job none of them claims has no
customer: it is counted as *unattributed*, never guessed.

The answer depends only on the arguments and the inventory the object was made from, so it is a
pure function of (site, printer, user, file, time). It is cheap (dict and bisect look-ups, cached
tag parsing): the hourly roll-ups call it for every job. ``user`` may be the raw account name or
its pseudonym (what InfluxDB holds): configured accounts are matched by pseudonym.
"""

from __future__ import annotations

import bisect
import re
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from common.configkit import Invalid, Section
from common.pseudonyms import Pseudonyms
from server.bookings import instant, merged

if TYPE_CHECKING:
    from server.inventory import Inventory

WAYS = ("tag", "booking", "account")
EVER = -(1 << 62)
_TAG = re.compile(r"\[([A-Za-z0-9][A-Za-z0-9_-]*)\]")


class Account(msgspec.Struct, forbid_unknown_fields=True):
    site: str
    user: str  # the printer-API account name, or its pseudonym (printfarm-server pseudonym)
    customer: str = ""  # empty: no customer from `from` on (the person left)
    since: str | None = msgspec.field(default=None, name="from")  # date or time; absent: always


class AttributionSettings(Section):
    order: list[str] = msgspec.field(default_factory=lambda: list(WAYS))
    tz: str = "Europe/Stockholm"  # of dates in accounts and bookings
    bookings: str | None = None  # CSV file, relative to the inventory file
    accounts: list[Account] = msgspec.field(default_factory=list)

    def __post_init__(self):
        unknown = [w for w in self.order if w not in WAYS]
        if unknown or len(set(self.order)) != len(self.order):
            raise Invalid("order", f"{self.order!r} is not an order of attribution ways",
                          f"list each of {', '.join(WAYS)} at most once, the strongest first")
        try:
            self.zone = ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise Invalid("tz", f"unknown time zone {self.tz!r}", "use an IANA zone like 'Europe/Stockholm'") from None
        self.booked: list = []  # bookings.Booking, filled by bookings.load


def check(inv: "Inventory") -> None:
    """The inventory's accounts name known sites and customers, once per (site, user, from)."""
    settings, seen = inv.attribution, set()
    for i, acc in enumerate(settings.accounts):
        key = f"attribution.accounts[{i}]"
        if acc.site not in inv.sites:
            raise Invalid(f"{key}.site", f"site {acc.site!r} is not defined", "use a site ID from [sites]")
        if acc.customer and acc.customer not in inv.customers:
            raise Invalid(f"{key}.customer", f"customer {acc.customer!r} is not defined",
                          f"add a [customers.{acc.customer}] table or correct the ID")
        since = instant(acc.since, settings.zone, f"{key}.from") if acc.since else EVER
        if (acc.site, acc.user, since) in seen:
            raise Invalid(f"{key}.from", f"{acc.user!r} at {acc.site} already has an entry from this date",
                          "give each change of customer its own date")
        seen.add((acc.site, acc.user, since))


# --- the function ------------------------------------------------------------------------------


class Attribution:
    """The inventory's attribution rules as one pure, cheap function (see the module's doc)."""

    def __init__(self, inv: "Inventory", pseudonyms: Pseudonyms | None):
        """``pseudonyms`` None: users are matched as given (for callers without a secret)."""
        settings = inv.attribution
        self.order = tuple(settings.order)
        self._user = lru_cache(maxsize=65_536)(pseudonyms.normalise) if pseudonyms is not None \
            else lambda site, user: user
        self.customers = frozenset(inv.customers)
        self._accounts: dict[tuple[str, str], tuple[list[int], list[str | None]]] = {}
        entries = sorted(((a.site, self._user(a.site, a.user),
                           instant(a.since, settings.zone, "from") if a.since else EVER, a.customer or None)
                          for a in settings.accounts), key=lambda e: e[2])
        for site, user, since, customer in entries:
            froms, who = self._accounts.setdefault((site, user), ([], []))
            froms.append(since)
            who.append(customer)
        self._bookings: dict[tuple[str, str], tuple[list[int], list]] = {}
        for key, items in merged(settings.booked).items():
            self._bookings[key] = ([b.start_ms for b in items], items)
        self.tag = lru_cache(maxsize=65_536)(self._tag)
        self._ways = tuple(getattr(self, f"_by_{way}") for way in self.order)

    def customer(self, site: str, printer: str, user: str | None, file: str | None, ts_ms: int) -> str | None:
        """The customer of a job that started at ``ts_ms``, or None (unattributed)."""
        for by in self._ways:
            found = by(site, printer, user, file, ts_ms)
            if found is not None:
                return found
        return None

    def answers(self, site: str, printer: str, user: str | None, file: str | None, ts_ms: int) -> dict:
        """Every way's answer, by way."""
        return {way: by(site, printer, user, file, ts_ms) for way, by in zip(self.order, self._ways)}

    def decide(self, site: str, printer: str, user: str | None, file: str | None,
               ts_ms: int) -> tuple[str | None, str | None, bool]:
        """(customer, the way that named it, whether another way named another customer)."""
        found = way = None
        disagree = False
        for name, by in zip(self.order, self._ways):
            answer = by(site, printer, user, file, ts_ms)
            if answer is None:
                continue
            if found is None:
                found, way = answer, name
            elif answer != found:
                disagree = True
        return found, way, disagree

    def _by_tag(self, site, printer, user, file, ts_ms) -> str | None:
        return self.tag(file) if file else None

    def _by_booking(self, site, printer, user, file, ts_ms) -> str | None:
        return self.booking(site, printer, ts_ms) if self._bookings else None

    def _by_account(self, site, printer, user, file, ts_ms) -> str | None:
        return self.account(site, user, ts_ms)

    def _tag(self, file: str) -> str | None:
        found = {t.lower() for t in _TAG.findall(file)} & self.customers
        return found.pop() if len(found) == 1 else None  # two customers named: no answer, not a guess

    def booking(self, site: str, printer: str, ts_ms: int) -> str | None:
        for key in ((site, printer), (site, "")):
            found = self._bookings.get(key)
            if found:
                i = bisect.bisect_right(found[0], ts_ms) - 1
                if i >= 0 and ts_ms < found[1][i].end_ms:
                    return found[1][i].customer
        return None

    def account(self, site: str, user: str | None, ts_ms: int) -> str | None:
        if not user:
            return None
        found = self._accounts.get((site, self._user(site, user)))
        if not found:
            return None
        i = bisect.bisect_right(found[0], ts_ms) - 1
        return found[1][i] if i >= 0 else None

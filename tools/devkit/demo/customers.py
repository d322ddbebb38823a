"""Who the demo fleet prints for: customers, the simulator's user accounts mapped to them, and
today's bookings, so the closing report's customer view and one-page summary have content.

Each company has a size class and a registration date (two are new enterprises in the funder's
sense), and the inventory a project with targets, so the one-pager shows the indicators. The
companies and the association are fictional, with made-up organisation numbers that pass the
check digit; public bodies carry their real names. The simulator's jobs run under the accounts
anna, erik, elin, johan, sara, lab, maja and oskar (devkit/sim/model.py); the shared "lab" account
is mapped nowhere, so some jobs stay *unattributed*, as in a real lab.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from zoneinfo import ZoneInfo


def _years_ago(years: int, months: int) -> str:
    """A registration date that long before today (the demo's jobs run today), as YYYY-MM-DD."""
    today = date.today()
    total = today.year * 12 + today.month - 1 - years * 12 - months
    return date(total // 12, total % 12 + 1, min(today.day, 28)).isoformat()


CUSTOMERS = {  # id -> fields of [customers.<id>]
    "kilsberg-verktyg": {"name": "Kilsbergens Verktyg AB", "kind": "company", "size": "small",
                         "county": "Örebro", "org_number": "556677-8899", "registered": "1987-04-01"},
    "bergslagen-mek": {"name": "Bergslagens Mekaniska AB", "kind": "company", "size": "medium",
                       "county": "Örebro", "org_number": "556912-3457", "registered": "1962-09-14"},
    "hjalmar-gjuteri": {"name": "Hjälmarens Gjuteri AB", "kind": "company", "size": "large",
                        "county": "Västmanland", "org_number": "559123-4561", "registered": 1911},
    "vattern-medtech": {"name": "Vätterns Medicinteknik AB", "kind": "company", "size": "micro",
                        "county": "Östergötland", "registered": _years_ago(1, 7)},  # new: RCO05
    "klaralven-design": {"name": "Klarälvens Formgivning AB", "kind": "company", "size": "micro",
                         "county": "Värmland", "registered": _years_ago(2, 11)},  # new: RCO05
    "oru": {"name": "Örebro universitet", "kind": "academia", "county": "Örebro"},
    "region-orebro": {"name": "Region Örebro län", "kind": "public", "county": "Örebro"},
    "makers-uppsala": {"name": "Uppsala Makerförening", "kind": "association", "county": "Uppsala"},
    "privat-01": {"kind": "private", "county": "Örebro"},
    "privat-02": {"kind": "private", "county": "Södermanland"},
}

# (site, account, customer, from): from None = always; "HH:MM" = from that time today (a re-attribution)
ACCOUNTS = [
    ("ansp-lab", "anna", "kilsberg-verktyg", None), ("ansp-lab", "erik", "hjalmar-gjuteri", None),
    ("ansp-lab", "erik", "kilsberg-verktyg", "12:00"), ("ansp-lab", "elin", "vattern-medtech", None),
    ("ansp-lab", "johan", "region-orebro", None), ("ansp-lab", "sara", "bergslagen-mek", None),
    ("oru-makerspace", "sara", "oru", None), ("oru-makerspace", "maja", "oru", None),
    ("oru-makerspace", "oskar", "makers-uppsala", None), ("oru-makerspace", "anna", "kilsberg-verktyg", None),
    ("oru-makerspace", "johan", "oru", None), ("oru-makerspace", "elin", "oru", None),
    ("orebro-bibliotek", "johan", "privat-01", None), ("orebro-bibliotek", "elin", "makers-uppsala", None),
    ("orebro-bibliotek", "maja", "privat-02", None), ("orebro-bibliotek", "oskar", "makers-uppsala", None),
    ("rudbeck-teknik", "sara", "region-orebro", None), ("rudbeck-teknik", "anna", "region-orebro", None),
    ("rudbeck-teknik", "erik", "kilsberg-verktyg", None),
    *(("bergslagen-verkstad", user, "bergslagen-mek", None) for user in ("anna", "erik", "elin", "johan", "oskar")),
    *(("mdu-vasteras", user, "hjalmar-gjuteri", None) for user in ("erik", "johan", "maja")),
    *(("uu-angstrom", user, "makers-uppsala", None) for user in ("oskar", "anna", "sara")),
    *(("eskilstuna-bibliotek", user, "privat-02", None) for user in ("elin", "maja")),
    *(("liu-makerspace", user, "vattern-medtech", None) for user in ("elin", "erik", "johan")),
    *(("kau-makerspace", user, "klaralven-design", None) for user in ("maja", "anna", "oskar")),
    *(("hig-gavle", user, "region-orebro", None) for user in ("sara", "johan", "erik")),
]

# (site, printer or "" for the whole site, from "HH:MM", to "HH:MM", customer), today. PrusaLink,
# Bambu Lab and most Klipper printers report no user: bookings are how their jobs find a customer.
# A few printers stay unbooked, so their jobs stay unattributed.
BOOKINGS = [
    ("bergslagen-verkstad", "", "00:00", "23:59", "bergslagen-mek"),
    ("ansp-lab", "ansp-voron-01", "00:00", "23:59", "kilsberg-verktyg"),
    ("oru-makerspace", "oru-p1s-01", "00:00", "23:59", "oru"),
    ("orebro-bibliotek", "obib-a1-01", "00:00", "23:59", "privat-02"),
    ("orebro-bibliotek", "obib-a1-02", "09:00", "20:00", "makers-uppsala"),
    ("mdu-vasteras", "mdu-trident-01", "00:00", "23:59", "hjalmar-gjuteri"),
    ("uu-angstrom", "", "00:00", "23:59", "makers-uppsala"),
    ("liu-makerspace", "liu-ratrig-01", "00:00", "23:59", "vattern-medtech"),
    ("hig-gavle", "hig-k1-01", "00:00", "23:59", "region-orebro"),
    ("ansp-lab", "ansp-x1c-01", "08:00", "16:00", "vattern-medtech"),
    ("ansp-lab", "ansp-xl-01", "00:00", "23:59", "hjalmar-gjuteri"),
    ("ansp-lab", "ansp-coreone-01", "06:00", "22:00", "kilsberg-verktyg"),
    ("oru-makerspace", "oru-mk4-01", "00:00", "23:59", "oru"),
    ("oru-makerspace", "oru-mk4-02", "08:00", "20:00", "makers-uppsala"),
    ("orebro-bibliotek", "obib-mini-01", "10:00", "19:00", "privat-01"),
    ("du-borlange", "", "00:00", "23:59", "hjalmar-gjuteri"),
    ("eskilstuna-bibliotek", "esk-a1-01", "10:00", "18:00", "klaralven-design"),
    ("liu-makerspace", "liu-mk4-01", "00:00", "23:59", "vattern-medtech"),
    ("kau-makerspace", "kau-mk4-01", "07:00", "21:00", "klaralven-design"),
    ("hig-gavle", "hig-mk4-01", "00:00", "23:59", "region-orebro"),
]


# The project the demo network is funded as, and its targets (målvärden) by indicator code.
# From New Year last year to the end of next year, so that today is always inside it.
PROJECT = {"name": "ACES", "start": f"{date.today().year - 1}-01-01", "end": f"{date.today().year + 1}-12-31"}
TARGETS = {"RCO01": 60, "RCO04": 60, "RCO05": 12, "RCO10": 25}


def inventory_lines() -> list[str]:
    """The [project], [customers] and [attribution] tables of the demo's inventory (bookings in bookings.csv)."""
    lines = ["[project]", *(f"{k} = {json.dumps(v)}" for k, v in PROJECT.items()), "", "[project.targets]",
             *(f"{k} = {v}" for k, v in TARGETS.items()), ""]
    for cid, fields in CUSTOMERS.items():
        lines.append(f"[customers.{cid}]")
        lines += [f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in fields.items()]
        lines.append("")
    lines += ["[attribution]", 'bookings = "bookings.csv"', ""]
    today = _today()
    for site, user, customer, since in ACCOUNTS:
        lines += ["[[attribution.accounts]]", f'site = "{site}"', f'user = "{user}"', f'customer = "{customer}"']
        lines += [f'from = "{today}T{since}"', ""] if since else [""]
    return lines


def _today() -> str:
    """Today where the sites are: times in the inventory are Stockholm time."""
    return datetime.now(ZoneInfo("Europe/Stockholm")).date().isoformat()


def bookings_csv() -> str:
    today = _today()
    rows = [f"{site},{printer},{today}T{start},{today}T{end},{customer}"
            for site, printer, start, end, customer in BOOKINGS]
    return "site,printer,from,to,customer\n" + "\n".join(rows) + "\n"

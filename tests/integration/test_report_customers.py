"""The customer view against ground truth, through the real broker, collector and InfluxDB.

Jobs for customers of every kind, attributed in all three ways (an account re-attributed mid-period,
a file-name tag, a printer booking and a whole-site booking, a tag that outranks a booking), jobs
no way attributes, printing with its job events lost, a customer printing in another county, and
a previous quarter that decides who is new. The truth is the customer this script *declares* for
each job and the printing time of its own intervals — not the attribution or report code.
Every figure is checked in the CSV, the XLSX and the one-page PDF (text read with pdftotext).
"""

from __future__ import annotations

import csv
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pytest

from tests.integration.scripted_fleet import (
    H, Q3_END, Q3_START, Job, Printer, Session, reports_of, t,
)

pytestmark = pytest.mark.integration

Q2_START = 1_775_080_800_000  # 2026-04-01 00:00 in Stockholm (CEST) = 2026-03-31 22:00 UTC
SITES = {  # site -> (name, organisation, county)
    "ansp": ("Alfred Nobel Science Park, Prototyplabbet", "Alfred Nobel Science Park", "Örebro"),
    "oru": ("Örebro universitet, Makerspace", "Örebro universitet", "Örebro"),
    "mdu": ("Mälardalens universitet, Västerås", "Mälardalens universitet", "Västmanland"),
}
PRINTERS = {"ansp-xl": "ansp", "ansp-x1c": "ansp", "oru-mk4": "oru", "mdu-voron": "mdu"}
CUSTOMERS = {  # id -> (name, kind, size, county, org number)
    "kilsberg": ("Kilsbergens Verktyg AB", "company", "small_medium", "Örebro", "556677-8899"),
    "hallsberg-mek": ("Hallsbergs Mekaniska AB", "company", "small_medium", "Örebro", None),
    "bergslag": ("Bergslagens Gjuteri AB", "company", "large", "Västmanland", "559123-4561"),
    "oru-inst": ("Örebro universitet, Institutionen för naturvetenskap och teknik", "academia", None, "Örebro", None),
    "region": ("Region Örebro län", "public", None, "Örebro", None),
    "makers": ("Uppsala Makers förening", "association", None, "Uppsala", None),
    "priv-1": ("", "private", None, "Örebro", None),
}
KIND_CLASS = {"kilsberg": "company_sme", "hallsberg-mek": "company_sme", "bergslag": "company_large",
              "oru-inst": "academia", "region": "public", "makers": "association", "priv-1": "private", None: "unattributed"}
KIND_LABEL = {"company_sme": "company, small or medium-sized", "company_large": "company, large", "academia": "academia",
              "public": "public sector", "association": "association", "private": "private person",
              "unattributed": "unattributed"}
ACCOUNTS = [("oru", "anna", "kilsberg", None), ("oru", "anna", "oru-inst", "2026-08-15"),
            ("oru", "bo", "region", None), ("mdu", "carl", "kilsberg", None)]
BOOKINGS = ["ansp,ansp-x1c,2026-07-20,2026-07-24,makers", "ansp,,2026-09-07T08:00,2026-09-07T17:00,hallsberg-mek"]


@dataclass
class Run:
    """One job as it happened: times UTC (2026), the customer the script declares, None = nobody."""

    printer: str
    user: str
    start: str
    end: str
    outcome: str  # done | failed | cancelled
    customer: str | None
    filament_mm: float = 0.0
    file: str | None = None
    pause: tuple[str, str] | None = None
    events: bool = True  # False: the job events were lost (printing outside any recorded job)


RUNS = [
    # previous quarter: kilsberg is served, so it is not new in Q3; an unattributed job
    Run("oru-mk4", "anna", "05-10 08:00", "05-10 10:00", "done", "kilsberg", 1_000.0),
    Run("mdu-voron", "dave", "06-01 09:00", "06-01 10:00", "done", None, 500.0),
    # started in Q2 (20:00 UTC = 22:00 local), ended in Q3: attributed by its start, counted by its events
    Run("oru-mk4", "anna", "06-30 20:00", "07-01 02:00", "done", "kilsberg", 3_000.0),
    Run("oru-mk4", "anna", "07-10 08:00", "07-10 12:00", "done", "kilsberg", 10_000.0),
    # anna moves to the university on 2026-08-15 (local midnight = 08-14 22:00 UTC)
    Run("oru-mk4", "anna", "08-14 21:00", "08-14 21:30", "done", "kilsberg", 400.0),
    Run("oru-mk4", "anna", "08-14 22:30", "08-14 23:00", "done", "oru-inst", 600.0),
    Run("oru-mk4", "anna", "08-20 08:00", "08-20 09:30", "done", "oru-inst", 5_000.0),
    Run("oru-mk4", "bo", "09-02 10:00", "09-02 10:40", "failed", "region"),
    Run("oru-mk4", "eve", "09-05 13:00", "09-05 14:00", "done", None, 2_000.0),
    # an Örebro company on a printer in Västmanland, with a pause; and one running past the quarter's end
    Run("mdu-voron", "carl", "07-15 09:00", "07-15 15:00", "done", "kilsberg", 20_000.0, pause=("07-15 11:00", "07-15 11:30")),
    Run("mdu-voron", "carl", "09-30 20:00", "10-01 01:00", "done", "kilsberg", 9_000.0),
    Run("ansp-xl", "lab", "08-05 10:00", "08-05 14:00", "done", "bergslag", 8_000.0, file="fixture [bergslag].gcode"),
    Run("ansp-xl", "lab", "09-15 10:00", "09-15 11:00", "done", None, events=False),
    # the booking says makers; the second job's tag outranks it
    Run("ansp-x1c", "lab", "07-21 09:00", "07-21 11:00", "done", "makers", 1_500.0),
    Run("ansp-x1c", "lab", "07-22 09:00", "07-22 10:00", "cancelled", "priv-1", file="keyring [PRIV-1].gcode"),
    Run("ansp-x1c", "", "08-10 12:00", "08-10 13:00", "done", None, 700.0),
    # the whole site booked 08:00-17:00 local (06:00-15:00 UTC)
    Run("ansp-x1c", "", "09-07 07:00", "09-07 08:00", "done", "hallsberg-mek", 900.0),
]
SESSION = ("03-25 00:00", "10-05 00:00")


def script() -> list[Printer]:
    """The runs as each printer's states and job events."""
    out = []
    for printer, site in PRINTERS.items():
        states, jobs = [(SESSION[0], "idle")], []
        for r in sorted((r for r in RUNS if r.printer == printer), key=lambda r: t(r.start)):
            states += _states(r)
            if r.events:
                jobs += _events(r)
        out.append(Printer(site, printer, f"pi-{site}", [Session(*SESSION, states, jobs)]))
    return out


def _states(r: Run) -> list[tuple[str, str]]:
    states = [(r.start, "printing")]
    if r.pause:
        states += [(r.pause[0], "paused"), (r.pause[1], "printing")]
    end_state = {"done": "idle", "failed": "error", "cancelled": "idle"}[r.outcome]
    return states + [(r.end, end_state)] + ([(_later(r.end, 20), "idle")] if r.outcome == "failed" else [])


def _later(at: str, minutes: int) -> str:
    hh, mm = at[-5:].split(":")
    total = int(hh) * 60 + int(mm) + minutes
    return f"{at[:-5]}{total // 60:02d}:{total % 60:02d}"


def _events(r: Run) -> list[Job]:
    file = r.file or f"{r.printer}-{r.start}.gcode"
    end = Job(r.outcome, r.end, r.user, r.start, r.filament_mm if r.outcome == "done" else None, file)
    return [Job("started", r.start, r.user, file=file), end]


# --- the truth, from the runs ---------------------------------------------------------------------


def _overlap(a: int, b: int, low: int, high: int) -> int:
    return max(0, min(b, high) - max(a, low))


def printing_ms(r: Run, low: int = Q3_START, high: int = Q3_END) -> int:
    ms = _overlap(t(r.start), t(r.end), low, high)
    if r.pause:
        ms -= _overlap(t(r.pause[0]), t(r.pause[1]), low, high)
    return ms


def truth(low: int = Q3_START, high: int = Q3_END) -> dict:
    """customer (None = unattributed) -> figures, and the customers served, in [low, high)."""
    out: dict = {}
    for r in RUNS:
        f = out.setdefault(r.customer, {"started": 0, "done": 0, "failed": 0, "cancelled": 0, "printing_ms": 0,
                                        "filament_mm": 0.0, "site_counties": set(), "by_site_county": {}})
        county = SITES[PRINTERS[r.printer]][2]
        counts = f["by_site_county"].setdefault(county, {"jobs": 0, "printing_ms": 0})
        f["printing_ms"] += printing_ms(r, low, high)
        counts["printing_ms"] += printing_ms(r, low, high)
        if not r.events:
            continue
        for kind, at in (("started", r.start), (r.outcome, r.end)):
            if low <= t(at) < high:
                f[kind] += 1
                counts["jobs"] += kind == "started"
                f["site_counties"].add(county)
                f["filament_mm"] += r.filament_mm if kind == "done" else 0
    return out


def served(figures: dict) -> set[str]:
    return {c for c, f in figures.items() if c and (f["started"] + f["done"] + f["failed"] + f["cancelled"])}


def enterprises(customers: set[str]) -> dict[str, set[str]]:
    firms = {c for c in customers if CUSTOMERS[c][1] == "company"}
    return {"all": firms, "sme": {c for c in firms if CUSTOMERS[c][2] == "small_medium"},
            "large": {c for c in firms if CUSTOMERS[c][2] == "large"}}


# --- the fleet in a database, one report for all tests -----------------------------------------------


def write_inventory(path: Path) -> Path:
    lines = []
    for site, (name, org, county) in SITES.items():
        lines += [f"[sites.{site}]", f'name = "{name}"', f'organisation = "{org}"', f'county = "{county}"', ""]
    for printer, site in PRINTERS.items():
        lines += [f"[printers.{printer}]", f'site = "{site}"', ""]
    for cid, (name, kind, size, county, org_number) in CUSTOMERS.items():
        lines += [f"[customers.{cid}]", f'kind = "{kind}"', f'county = "{county}"']
        lines += [f'name = "{name}"'] if name else []
        lines += [f'size = "{size}"'] if size else []
        lines += [f'org_number = "{org_number}"', ""] if org_number else [""]
    lines += ["[attribution]", 'bookings = "bookings.csv"', ""]
    for site, user, customer, since in ACCOUNTS:
        lines += ["[[attribution.accounts]]", f'site = "{site}"', f'user = "{user}"', f'customer = "{customer}"']
        lines += [f'from = "{since}"', ""] if since else [""]
    (path.parent / "bookings.csv").write_text("site,printer,from,to,customer\n" + "\n".join(BOOKINGS) + "\n")
    path.write_text("\n".join(lines))
    return path


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    with reports_of(tmp_path_factory.mktemp("customers"), write_inventory, script()) as (out, _, _):
        yield out


def read_csv(out: Path, table: str) -> list[dict]:
    with (out / f"printfarm-report-2026-Q3-en-{table}.csv").open(encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def name(customer: str | None) -> str:
    return CUSTOMERS[customer][0] if customer else "unattributed"


# --- the tests ------------------------------------------------------------------------------------


def test_the_script_covers_what_the_customer_view_must_handle():
    kinds = {KIND_CLASS[r.customer] for r in RUNS if t(r.start) >= Q3_START}
    assert len(kinds - {"unattributed"}) >= 5 and "unattributed" in kinds
    assert {c for _, user, c, _ in ACCOUNTS if user == "anna"} == {"kilsberg", "oru-inst"}  # re-attributed
    assert any(SITES[PRINTERS[r.printer]][2] != CUSTOMERS[r.customer][3] for r in RUNS if r.customer)


def test_every_customers_jobs_printing_hours_and_filament_equal_the_truth(report_dir):
    rows = {r["Customer"]: r for r in read_csv(report_dir, "customers")}
    expected = truth()
    private = expected.pop("priv-1")
    for customer, f in expected.items():
        if customer is not None and not served({customer: f}):
            continue
        row = rows[name(customer)]
        got = (int(row["Jobs started"]), int(row["Jobs completed"]), int(row["Jobs failed"]),
               int(row["Jobs cancelled"]))
        assert got == (f["started"], f["done"], f["failed"], f["cancelled"]), customer
        assert round(float(row["Printing hours"]) * H) == f["printing_ms"], customer
        assert float(row["Filament, estimate (m)"]) == pytest.approx(f["filament_mm"] / 1000, abs=1e-9), customer
    persons = rows["private persons (1)"]  # one row for all private persons: a count, no names
    assert int(persons["Jobs cancelled"]) == private["cancelled"] == 1 and persons["Organisation number"] == ""
    assert rows["Kilsbergens Verktyg AB"]["Organisation number"] == "556677-8899"
    assert set(rows) == {name(c) for c in served(truth()) - {"priv-1"}} | {"private persons (1)", "unattributed"}


def test_unattributed_jobs_and_printing_outside_jobs_are_counted_not_dropped(report_dir):
    row = {r["Customer"]: r for r in read_csv(report_dir, "customers")}["unattributed"]
    f = truth()[None]
    assert (int(row["Jobs started"]), int(row["Jobs completed"])) == (f["started"], f["done"]) == (2, 2)
    assert round(float(row["Printing hours"]) * H) == f["printing_ms"] == 3 * H  # eve, the unbooked job, lost events
    network = read_csv(report_dir, "network")[0]
    customers_total = sum(float(r["Printing hours"]) for r in read_csv(report_dir, "customers"))
    assert customers_total == pytest.approx(float(network["Printing hours"]), abs=1e-9)


def test_the_user_who_moved_mid_period_counts_for_each_customer_from_the_date(report_dir):
    rows = {r["Customer"]: r for r in read_csv(report_dir, "customers")}
    # anna's jobs before 2026-08-15 00:00 local count for the company, from then for the university
    assert int(rows[name("oru-inst")]["Jobs completed"]) == 2
    assert round(float(rows[name("oru-inst")]["Printing hours"]) * H) == 30 * 60_000 + 90 * 60_000
    kilsberg_at_oru = [r for r in RUNS if r.customer == "kilsberg" and r.printer == "oru-mk4" and t(r.end) >= Q3_START]
    assert len(kilsberg_at_oru) == 3


def test_per_kind_figures_equal_the_truth(report_dir):
    rows = {r["Customer kind"]: r for r in read_csv(report_dir, "customer_kinds")}
    expected = truth()
    for kind, label in KIND_LABEL.items():
        members = [c for c in expected if KIND_CLASS[c] == kind]
        row = rows[label]
        assert int(row["Customers served"]) == len(served({c: expected[c] for c in members})), kind
        assert int(row["Jobs completed"]) == sum(expected[c]["done"] for c in members), kind
        assert round(float(row["Printing hours"]) * H) == sum(expected[c]["printing_ms"] for c in members), kind


def test_enterprises_served_and_new_against_the_previous_quarter_equal_the_truth(report_dir):
    row = read_csv(report_dir, "enterprises")[0]
    now, before = enterprises(served(truth())), enterprises(served(truth(Q2_START, Q3_START)))
    assert before["all"] == {"kilsberg"}
    assert (int(row["Enterprises served"]), int(row["of which small and medium-sized"]), int(row["of which large"])) \
        == (len(now["all"]), len(now["sme"]), len(now["large"])) == (3, 2, 1)
    assert int(row["Enterprises not served in the previous period"]) == len(now["all"] - before["all"]) == 2
    assert int(row["Enterprises served in the previous period"]) == 1
    new = {r["Customer"]: r["Not served in the previous period"] for r in read_csv(report_dir, "customers")}
    assert new[name("kilsberg")] == "no" and new[name("bergslag")] == "yes"


def test_per_county_of_the_customer_and_of_the_site_equal_the_truth(report_dir):
    expected = truth()
    by_customer = {r["Customer's county"]: r for r in read_csv(report_dir, "customer_counties")}
    for county in {CUSTOMERS[c][3] for c in served(expected)}:
        members = {c for c in served(expected) if CUSTOMERS[c][3] == county}
        row = by_customer[county]
        assert int(row["Customers served"]) == len(members), county
        assert int(row["Enterprises served"]) == len(enterprises(members)["all"]), county
        assert round(float(row["Printing hours"]) * H) == sum(expected[c]["printing_ms"] for c in members), county
    by_site = {r["County"]: r for r in read_csv(report_dir, "site_counties")}
    for county in {"Örebro", "Västmanland"}:
        members = {c for c in served(expected) if county in expected[c]["site_counties"]}
        row = by_site[county]
        assert int(row["Customers served"]) == len(members), county
        assert int(row["Jobs started"]) == sum(expected[c]["by_site_county"].get(county, {}).get("jobs", 0)
                                               for c in expected), county
        assert round(float(row["Printing hours"]) * H) == sum(
            expected[c]["by_site_county"].get(county, {}).get("printing_ms", 0) for c in expected), county
    # the Örebro company that printed in Västmanland is served there
    assert int(by_site["Västmanland"]["Enterprises served"]) == 1 and "kilsberg" in served(expected)


def test_xlsx_customer_sheets_equal_the_csv(report_dir):
    wb = openpyxl.load_workbook(report_dir / "printfarm-report-2026-Q3-en.xlsx")
    sheets = {"Key figures": "key_figures", "Customers": "customers", "Customer kinds": "customer_kinds",
              "Customer counties": "customer_counties", "Customers by site county": "site_counties",
              "Enterprises": "enterprises"}
    for sheet, key in sheets.items():
        xrows = [list(r) for r in wb[sheet].iter_rows(values_only=True)]
        with (report_dir / f"printfarm-report-2026-Q3-en-{key}.csv").open(encoding="utf-8-sig") as fh:
            crows = list(csv.reader(fh))
        assert xrows[0] == crows[0] and len(xrows) == len(crows) > 1, sheet
        for xrow, crow in zip(xrows[1:], crows[1:]):
            for x, c in zip(xrow, crow):
                if isinstance(x, (int, float)) and not isinstance(x, bool):
                    assert float(c) == x, (sheet, xrow, crow)
                else:
                    assert (x or "") == c, (sheet, xrow, crow)


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout


def pdf_pages(path: Path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True, timeout=60).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))


def test_one_page_summary_holds_the_true_figures(report_dir):
    path = report_dir / "printfarm-summary-2026-Q3-en.pdf"
    assert pdf_pages(path) == 1
    text = pdf_text(path)
    expected, now = truth(), enterprises(served(truth()))
    firms = re.search(r"(\d+) enterprises used the printers: 0 micro, 0 small, 0 medium-sized, (\d+) SMEs of unknown "
                      r"class and (\d+) large\. (\d+) of them did not use them in the previous period",
                      " ".join(text.split()))
    assert firms and tuple(map(int, firms.groups())) == (3, 2, 1, 2) == (
        len(now["all"]), len(now["sme"]), len(now["large"]), len(now["all"] - {"kilsberg"}))

    def figure(label: str) -> list[str]:
        line = next(line for line in text.splitlines() if line.strip().startswith(label))
        return line[len(line) - len(line.lstrip()) + len(label):].split()

    assert figure("Customers served")[0] == str(len(served(expected)))
    assert figure("Enterprises served")[0] == "3" and figure("Enterprises not served in the previous period")[0] == "2"
    assert figure("Jobs without a customer (unattributed)")[0] == str(expected[None]["started"]) == "2"
    network_printing = sum(f["printing_ms"] for f in expected.values())
    assert figure("Printing hours")[0] == f"{network_printing / H:,.2f}"
    for kind, label in KIND_LABEL.items():
        members = [c for c in expected if KIND_CLASS[c] == kind]
        customers, done, hours = figure(label)[:3]
        assert int(customers) == len(served({c: expected[c] for c in members})), kind
        assert int(done) == sum(expected[c]["done"] for c in members), kind
        assert hours == f"{sum(expected[c]['printing_ms'] for c in members) / H:,.2f}", kind


def test_the_swedish_summary_is_one_page_with_the_same_enterprises(report_dir):
    path = report_dir / "printfarm-summary-2026-Q3-sv.pdf"
    text = " ".join(pdf_text(path).split())
    assert pdf_pages(path) == 1 and "Delade 3D-skrivare: lägesrapport" in text and "ACES" in text
    assert ("3 företag använde skrivarna: 0 mikroföretag, 0 små, 0 medelstora, 2 små eller medelstora av okänd klass "
            "och 1 stort. 2 av dem") in text


def test_notes_say_how_many_jobs_are_unattributed_and_which_way_decided_a_disagreement(report_dir):
    about = openpyxl.load_workbook(report_dir / "printfarm-report-2026-Q3-en.xlsx")["About"]
    text = "\n".join(str(c.value) for row in about.iter_rows() for c in row if c.value)
    jobs_in_q3 = sum(1 for r in RUNS if r.events and (Q3_START <= t(r.start) < Q3_END or Q3_START <= t(r.end) < Q3_END))
    assert f"2 of {jobs_in_q3} jobs have no customer" in text  # eve and the unbooked job (dave's is in Q2)
    assert "1 job(s) were named for different customers by different ways; the order tag > booking > account" in text
    assert "1.00 printing hours fall outside every job recorded in the period" in text

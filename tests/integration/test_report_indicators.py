"""The funder's indicators against ground truth, over a scripted project of two years, through the
real broker, collector and InfluxDB.

The project runs 2025-01-01..2026-12-31; the report is 2026-Q3. Companies of every size class are
served before, in and after the period, on a university's printers and elsewhere: one in three
periods (counted once since the start), one under two customer IDs with one organisation number,
one without an organisation number, one with the old ``small_medium`` class, one only before the
project and one only after the period. The truth is what this script *declares*: each customer's
organisation number, size and whether it is new (registered less than three years before its
first job: 2 years 11 months is new, 3 years and 1 day is not), and which runs fall in which window
(any event of the job in it) — not the attribution, indicator or report code. Every count is
checked in the CSV, the XLSX (with the enterprises behind it by organisation number) and the PDFs
(text read with pdftotext; no organisation number on the one-pager).
"""

from __future__ import annotations

import csv
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pytest

from devkit.pipeline import DB
from tests.integration.scripted_fleet import Job, Printer, Session, reports_of, t

pytestmark = pytest.mark.integration

Q3_START, Q3_END = t("2026-06-30 22:00"), t("2026-09-30 22:00")  # 2026-Q3 in Stockholm (CEST)
PROJECT_START = t("2024-12-31 23:00")  # 2025-01-01 00:00 in Stockholm (CET)
SITES = {  # site -> (name, organisation, county, organisation_kind)
    "uni": ("Örebro universitet, Makerspace och Prototyplabbet för additiv tillverkning", "Örebro universitet",
            "Örebro", "research"),
    "park": ("Alfred Nobel Science Park, Prototyplabbet", "Alfred Nobel Science Park", "Örebro", ""),
}
RESEARCH = {"uni"}
PRINTERS = {"uni-mk4": "uni", "park-xl": "park", "park-x1c": "park"}
TARGETS = {"RCO01": 8, "RCO04": 8, "RCO05": 4, "RCO10": 5}


def org(nine: str) -> str:
    """A made-up organisation number: nine digits and their Luhn check digit."""
    total = sum(d - 9 if d > 9 else d for d in (int(c) * (2 if i % 2 == 0 else 1) for i, c in enumerate(nine)))
    return f"{nine[:6]}-{nine[6:]}{(10 - total % 10) % 10}"


@dataclass
class Customer:
    name: str
    kind: str = "company"
    size: str | None = None
    org_number: str | None = None
    registered: str | None = None  # TOML value as written
    new: bool | None = None  # declared: registered less than 3 years before its first job in the project


CUSTOMERS = {
    "alfa": Customer("Alfa Verktyg AB", size="micro", org_number=org("556700001"), registered="2010-05-01",
                     new=False),
    # first job 2026-07-20: registered 2 years 11 months before -> new
    "beta": Customer("Beta Gjuteri AB", size="small", org_number=org("556700002"), registered="2023-08-20", new=True),
    # first job 2025-06-10: registered 3 years and 1 day before -> not new
    "gamma": Customer("Gamma Mekaniska AB", size="medium", org_number=org("556700003"), registered="2022-06-09",
                      new=False),
    "delta": Customer("Delta Industri AB", size="large", org_number=org("556700004"), registered="1998", new=False),
    # one enterprise, two departments
    "eps-a": Customer("Epsilon Design AB, Örebro", size="small", org_number=org("556700005"),
                      registered="2024-01-15", new=True),
    "eps-b": Customer("Epsilon Design AB, Västerås", size="small", org_number=org("556700005"),
                      registered="2024-01-15", new=True),
    "zeta": Customer("Zeta Plast AB", size="small_medium", org_number=org("556700006"), registered="2020-01-01",
                     new=False),
    "eta": Customer("Eta Prototyp AB", size="micro", registered="2024-06-01", new=True),  # no organisation number
    "theta": Customer("Theta AB", size="small", org_number=org("556700008"), registered="2025-01-01", new=True),
    "iota": Customer("Iota AB", size="medium", org_number=org("556700009"), registered="2024-01-01", new=True),
    # first job 2026-09-15: only the year 2023, which holds 2023-09-15: cannot say -> not counted as new
    "kappa": Customer("Kappa Teknik AB", size="medium", org_number=org("556700010"), registered="2023", new=None),
    # its first job starts in Q2 and ends in Q3
    "lambda": Customer("Lambda Form AB", size="small", org_number=org("556700011"), registered="2019-03-01",
                       new=False),
    "inst": Customer("Örebro universitet, Institutionen för teknik", kind="academia"),
}


@dataclass
class Run:
    printer: str
    customer: str
    start: str  # UTC, with the year
    end: str


RUNS = [
    Run("park-xl", "iota", "2024-12-10 09:00", "2024-12-10 11:00"),  # before the project
    Run("uni-mk4", "alfa", "2025-03-10 09:00", "2025-03-10 12:00"),
    Run("uni-mk4", "zeta", "2025-04-01 09:00", "2025-04-01 10:00"),
    Run("park-xl", "gamma", "2025-06-10 09:00", "2025-06-10 11:00"),
    Run("park-x1c", "eps-a", "2025-11-03 09:00", "2025-11-03 10:00"),
    Run("park-xl", "alfa", "2026-05-12 09:00", "2026-05-12 10:00"),
    Run("park-xl", "lambda", "2026-06-30 20:00", "2026-07-01 02:00"),  # 22:00 local on the last day of Q2
    Run("park-x1c", "eta", "2026-07-05 09:00", "2026-07-05 10:00"),
    Run("park-xl", "beta", "2026-07-20 09:00", "2026-07-20 11:00"),
    Run("uni-mk4", "inst", "2026-08-01 09:00", "2026-08-01 10:00"),
    Run("park-xl", "alfa", "2026-08-04 09:00", "2026-08-04 10:00"),
    Run("uni-mk4", "delta", "2026-08-15 09:00", "2026-08-15 12:00"),
    Run("park-x1c", "eps-b", "2026-08-20 09:00", "2026-08-20 10:00"),
    Run("uni-mk4", "beta", "2026-09-01 09:00", "2026-09-01 10:00"),
    Run("park-xl", "gamma", "2026-09-10 09:00", "2026-09-10 10:00"),
    Run("park-x1c", "kappa", "2026-09-15 09:00", "2026-09-15 10:00"),
    Run("park-xl", "theta", "2026-10-05 09:00", "2026-10-05 10:00"),  # after the period
]
SESSION = ("2024-12-01 00:00", "2026-11-01 00:00")


def script() -> list[Printer]:
    out = []
    for printer, site in PRINTERS.items():
        states, jobs = [(SESSION[0], "idle")], []
        for r in sorted((r for r in RUNS if r.printer == printer), key=lambda r: t(r.start)):
            file = f"part-{r.start[:10]} [{r.customer}].gcode"
            states += [(r.start, "printing"), (r.end, "idle")]
            jobs += [Job("started", r.start, "lab", file=file), Job("done", r.end, "lab", r.start, 1000.0, file)]
        out.append(Printer(site, printer, f"pi-{site}", [Session(*SESSION, states, jobs)],
                           telemetry_every=7 * 86_400_000))
    return out


# --- the truth, from the declarations --------------------------------------------------------------


def firm(customer: str) -> str | None:
    c = CUSTOMERS[customer]
    return None if c.kind != "company" else c.org_number or f"customer:{customer}"


def served(low: int, high: int, research_only: bool = False) -> set[str]:
    """Enterprises with a job that has an event (its start or its end) in [low, high)."""
    return {firm(r.customer) for r in RUNS
            if firm(r.customer) and (not research_only or PRINTERS[r.printer] in RESEARCH)
            and any(low <= t(at) < high for at in (r.start, r.end))}


def size(key: str) -> str:
    return next(c.size for cid, c in CUSTOMERS.items() if firm(cid) == key)


def is_new(key: str) -> bool:
    return bool(next(c.new for cid, c in CUSTOMERS.items() if firm(cid) == key))


def truth() -> dict[str, dict[str, set[str]]]:
    """indicator -> scope ('period', 'before', 'cumulative') -> the enterprises counted."""
    windows = {"period": (Q3_START, Q3_END), "before": (PROJECT_START, Q3_START), "cumulative": (PROJECT_START, Q3_END)}
    out: dict[str, dict[str, set[str]]] = {}
    for scope, (low, high) in windows.items():
        everyone = served(low, high)
        out.setdefault("RCO01", {})[scope] = everyone
        for cls in ("micro", "small", "medium", "large", "small_medium"):
            out.setdefault(f"RCO01_{cls}", {})[scope] = {k for k in everyone if size(k) == cls}
        out.setdefault("RCO04", {})[scope] = everyone
        out.setdefault("RCO05", {})[scope] = {k for k in everyone if is_new(k)}
        out.setdefault("RCO10", {})[scope] = served(low, high, research_only=True)
    return out


CODES = {"RCO01": "CO01", "RCO04": "CO04", "RCO05": "CO05", "RCO10": "CO26"}
NAMES = {"RCO01": "Enterprises supported", "RCO01_micro": "of which micro", "RCO01_small": "of which small",
         "RCO01_medium": "of which medium-sized", "RCO01_large": "of which large",
         "RCO01_small_medium": "of which SMEs of unknown class (small_medium)",
         "RCO04": "Enterprises with non-financial support", "RCO05": "New enterprises supported",
         "RCO10": "Enterprises cooperating with research organisations"}


# --- the project in a database, one report in each language --------------------------------------------


def write_inventory(path: Path) -> Path:
    lines = ["[project]", 'name = "ACES"', "start = 2025-01-01", "end = 2026-12-31", "", "[project.targets]"]
    lines += [f"{k} = {v}" for k, v in TARGETS.items()] + [""]
    for site, (name, organisation, county, kind) in SITES.items():
        lines += [f"[sites.{site}]", f'name = "{name}"', f'organisation = "{organisation}"', f'county = "{county}"']
        lines += [f'organisation_kind = "{kind}"', ""] if kind else [""]
    for printer, site in PRINTERS.items():
        lines += [f"[printers.{printer}]", f'site = "{site}"', ""]
    for cid, c in CUSTOMERS.items():
        lines += [f"[customers.{cid}]", f'name = "{c.name}"', f'kind = "{c.kind}"', 'county = "Örebro"']
        lines += [f'size = "{c.size}"'] if c.size else []
        lines += [f'org_number = "{c.org_number}"'] if c.org_number else []
        lines += [f"registered = {c.registered}"] if c.registered else []
        lines.append("")
    path.write_text("\n".join(lines))
    return path


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    with reports_of(tmp_path_factory.mktemp("indicators"), write_inventory, script()) as (out, influx, inventory):
        ways_before.update(_project_before_both_ways(influx, inventory))
        yield out


ways_before: dict = {}


def _project_before_both_ways(influx, inventory_path: Path) -> dict:
    """The uses since the project's start before 2026-Q3: read whole, and with 2026-Q2 read already
    (as the child that reads the previous period does it)."""
    from server import inventory as inventory_mod
    from server.reports import build, generate, periods
    from server.reports.people import People
    from server.reports.query import Reader
    from server.store.influx import InfluxHTTP

    client, inv = InfluxHTTP(influx.url, DB), inventory_mod.load(inventory_path)
    q2, q3 = periods.parse("2026-Q2"), periods.parse("2026-Q3")
    known = Reader(client).fetch(q2.start_ms, q2.end_ms, q3.end_ms)
    build.pseudonymise(known, People())
    return {"whole": generate.project_before(client, inv, q3, People()),
            "reusing": generate.project_before(client, inv, q3, People(), known=known)}


def read_csv(out: Path, table: str, lang: str = "en") -> list[dict]:
    with (out / f"printfarm-report-2026-Q3-{lang}-{table}.csv").open(encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout


def pdf_pages(path: Path) -> tuple[int, str]:
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True, timeout=60).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1)), re.search(r"^Page size:\s+(.*)$", info, re.M).group(1)


# --- the tests ------------------------------------------------------------------------------------


def test_the_script_covers_what_the_indicators_must_handle():
    truth_ = truth()
    alfa = firm("alfa")
    assert alfa in truth_["RCO01"]["before"] and alfa in truth_["RCO01"]["period"]  # served in several periods
    assert sum(1 for r in RUNS if firm(r.customer) == alfa) == 3
    assert firm("eps-a") == firm("eps-b")  # two customer IDs, one organisation number
    assert firm("theta") not in truth_["RCO01"]["cumulative"] and firm("iota") not in truth_["RCO01"]["cumulative"]
    assert truth_["RCO10"]["cumulative"] - truth_["RCO10"]["period"] and truth_["RCO10"]["period"]
    assert all(truth_[f"RCO01_{c}"]["period"] for c in ("micro", "small", "medium", "large"))
    assert truth_["RCO01_small_medium"]["cumulative"] and not truth_["RCO01_small_medium"]["period"]


def test_every_indicator_for_the_period_and_since_the_start_equals_the_truth_in_the_csv(report_dir):
    rows = {r["Indicator"]: r for r in read_csv(report_dir, "indicators")}
    expected = truth()
    assert list(rows) == [NAMES[k] for k in expected]
    for key, scopes in expected.items():
        row = rows[NAMES[key]]
        code = key.split("_")[0]
        assert (row["Code 2021–27"], row["Code 2014–20"]) == (code, CODES[code]), key
        assert int(row["In the period"]) == len(scopes["period"]), key
        assert int(row["Since the project's start"]) == len(scopes["cumulative"]), key
        assert int(row["of them counted for the first time"]) == len(scopes["cumulative"] - scopes["before"]), key
        target = TARGETS.get(key)
        assert row["Target"] == (str(target) if target else ""), key
        share = row["Share of target reached"]
        assert (float(share) == pytest.approx(len(scopes["cumulative"]) / target)) if target else share == "n/a", key


def test_an_enterprise_served_in_three_periods_and_one_under_two_customer_ids_each_count_once(report_dir):
    rows = {r["Indicator"]: r for r in read_csv(report_dir, "indicators")}
    # alfa (2025, 2026-Q2, 2026-Q3) and Epsilon (two departments, 2025 and 2026-Q3) once each
    expected = {firm(c) for c in ("alfa", "zeta", "gamma", "eps-a", "lambda", "eta", "beta", "delta", "kappa")}
    assert int(rows["Enterprises supported"]["Since the project's start"]) == len(expected) == 9
    listed = [r["Organisation number"] for r in read_csv(report_dir, "indicator_enterprises")]
    assert len(listed) == len(set(listed)) and listed.count(CUSTOMERS["eps-a"].org_number) == 1


def test_two_years_eleven_months_before_the_first_job_is_new_three_years_and_a_day_is_not(report_dir):
    rows = {r["Organisation number"] or r["Enterprise"]: r for r in read_csv(report_dir, "indicator_enterprises")}
    beta, gamma = rows[CUSTOMERS["beta"].org_number], rows[CUSTOMERS["gamma"].org_number]
    assert (beta["First served in the project"][:10], beta["Registered"]) == ("2026-07-20", "2023-08-20")
    assert (gamma["First served in the project"][:10], gamma["Registered"]) == ("2025-06-10", "2022-06-09")
    column = "New enterprise (RCO05: registered less than 3 years before first served)"
    assert (beta[column], gamma[column]) == ("yes", "no")
    assert rows[CUSTOMERS["kappa"].org_number][column] == ""  # only a year that holds the cutoff: cannot say


def test_the_project_before_the_period_is_the_same_whether_the_previous_period_is_reused_or_read(report_dir):
    whole, reusing = ways_before["whole"], ways_before["reusing"]
    served_before = {c for r in RUNS if any(PROJECT_START <= t(at) < Q3_START for at in (r.start, r.end))
                     for c in [r.customer]}
    assert set(whole) == served_before and whole == reusing
    assert whole["alfa"].first_ms == t("2025-03-10 09:00") and whole["alfa"].research


def test_the_xlsx_lists_the_enterprises_behind_each_count_by_organisation_number(report_dir):
    wb = openpyxl.load_workbook(report_dir / "printfarm-report-2026-Q3-en.xlsx")
    sheet = [list(r) for r in wb["Indicator enterprises"].iter_rows(values_only=True)]
    header, rows = sheet[0], [dict(zip(sheet[0], r)) for r in sheet[1:]]
    key = {r["Organisation number"] or f"customer:{_cid(r['Enterprise'])}": r for r in rows}
    expected = truth()
    yes = lambda column: {k for k, r in key.items() if r[column] == "yes"}  # noqa: E731
    assert yes("Served in the period (RCO01, RCO04)") == expected["RCO01"]["period"]
    assert yes("Served since the project's start (RCO01, RCO04)") == expected["RCO01"]["cumulative"]
    assert yes("With a research organisation in the period (RCO10)") == expected["RCO10"]["period"]
    assert yes("With a research organisation since the project's start (RCO10)") == expected["RCO10"]["cumulative"]
    new = yes("New enterprise (RCO05: registered less than 3 years before first served)")
    assert new & expected["RCO01"]["cumulative"] == expected["RCO05"]["cumulative"]
    sizes = {"micro": "micro", "small": "small", "medium": "medium-sized", "large": "large",
             "small_medium": "SME, class not given"}
    for k, r in key.items():
        assert r["Size class (2003/361/EC)"] == sizes[size(k)], k
    counts = {r[2]: r for r in wb["Indicators"].iter_rows(values_only=True)}
    for name, scopes in expected.items():
        assert (counts[NAMES[name]][3], counts[NAMES[name]][5]) == (len(scopes["period"]), len(scopes["cumulative"]))
    assert "Organisation number" in header and "customer:eta" in key


def _cid(name: str) -> str:
    return next(cid for cid, c in CUSTOMERS.items() if c.name == name)


def _after(text: str, name: str, *also: str) -> list[str]:
    """The words after ``name`` on the first line that holds it (and each of ``also``)."""
    line = next(line for line in text.splitlines() if name in line and all(a in line for a in also))
    return line[line.index(name) + len(name):].split()


def test_the_one_page_summary_shows_each_indicator_with_its_target_and_no_organisation_number(report_dir):
    path = report_dir / "printfarm-summary-2026-Q3-en.pdf"
    pages, size = pdf_pages(path)
    assert pages == 1 and "A4" in size
    text = pdf_text(path)
    for key, scopes in truth().items():
        figures = _after(text, NAMES[key]) if key.startswith("RCO01_") else \
            _after(text, NAMES[key], f"{key} / {CODES[key]}")
        target = TARGETS.get(key)
        share = f"{len(scopes['cumulative']) / target * 100:.1f} %" if target else "–"
        assert figures[:3] == [str(len(scopes["period"])), str(len(scopes["cumulative"])),
                               str(target) if target else "–"], key
        assert " ".join(figures[3:]) == share, key
    assert not any(c.org_number and c.org_number in text for c in CUSTOMERS.values())


WORD = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>')


@pytest.mark.parametrize("lang", ["en", "sv"])
def test_the_one_pager_fits_its_page_without_text_running_into_text(report_dir, tmp_path, lang):
    path = report_dir / f"printfarm-summary-2026-Q3-{lang}.pdf"
    html = subprocess.run(["pdftotext", "-bbox", str(path), "-"], capture_output=True, text=True, check=True,
                          timeout=60).stdout
    page = re.search(r'<page width="([\d.]+)" height="([\d.]+)"', html)
    width, height = float(page.group(1)), float(page.group(2))
    words = [(float(a), float(b), float(c), float(d), w) for a, b, c, d, w in WORD.findall(html)]
    assert len(words) > 300 and all(0 <= a and c <= width and 0 <= b and d <= height for a, b, c, d, _ in words)
    # Word boxes hold the font's ascent and descent, so lines set close overlap by about a third;
    # text printed over text overlaps by far more.
    clashes = [(w1[4], w2[4]) for i, w1 in enumerate(words) for w2 in words[i + 1:]
               if min(w1[2], w2[2]) - max(w1[0], w2[0]) > 0.5
               and min(w1[3], w2[3]) - max(w1[1], w2[1]) > 0.6 * min(w1[3] - w1[1], w2[3] - w2[1])]
    assert clashes == []
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(path), str(tmp_path / "page")], check=True, timeout=60)
    assert [p.name for p in tmp_path.iterdir()] == ["page-1.png"]  # one page when rendered, too


def test_the_one_page_sentence_counts_with_the_right_grammar_in_both_languages(report_dir):
    period = truth()
    served_ = period["RCO01"]["period"]
    n = {c: len(period[f"RCO01_{c}"]["period"]) for c in ("micro", "small", "medium", "large")}
    assert (len(served_), n["large"], n["medium"]) == (8, 1, 2)
    en = " ".join(pdf_text(report_dir / "printfarm-summary-2026-Q3-en.pdf").split())
    assert (f"8 enterprises used the printers: {n['micro']} micro, {n['small']} small, 2 medium-sized and 1 large."
            in en)
    sv_path = report_dir / "printfarm-summary-2026-Q3-sv.pdf"
    sv = " ".join(pdf_text(sv_path).split())
    assert pdf_pages(sv_path)[0] == 1
    assert f"8 företag använde skrivarna: {n['micro']} mikroföretag, 3 små, 2 medelstora och 1 stort." in sv
    assert f"Nya företag (RCO05: registrerade mindre än tre år före första stödet): " \
           f"{len(period['RCO05']['period'])}." in sv
    assert "Målvärde" in sv and "Fondens indikatorer — ACES (sedan projektets start 2025-01-01)" in sv


def test_the_full_pdf_has_the_indicators_and_legible_site_names(report_dir):
    text = pdf_text(report_dir / "printfarm-report-2026-Q3-en.pdf")
    flat = " ".join(text.split())
    for key, scopes in truth().items():
        if key.startswith("RCO01_"):
            continue
        figures = _after(text, NAMES[key], key, CODES[key])
        assert figures[0] == str(len(scopes["period"])) and figures[2] == str(len(scopes["cumulative"])), key
    # the long site name is whole in the charts (wrapped, not cut)
    assert flat.count("Prototyplabbet för additiv tillverkning") >= 2

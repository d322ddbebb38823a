"""Material, cost and outcomes against ground truth, through the real broker, collector and InfluxDB.

A scripted agent publishes each job's events (protocol.Event with its material per tool and its
progress at the end) over Mosquitto; the collector stores them; ``printfarm-server report`` writes
the XLSX, the CSV and the PDFs. The truth is computed here from the script's own inputs (grams,
lengths, progress, the prices and rates written into the inventory) with the contract's rules —
measured as is, a slicer estimate pro rata to progress for a failed or cancelled job, mm to grams
by density over a 1.75 mm filament — not with the report code.
"""

from __future__ import annotations

import csv
import math
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl
import pytest

from common.protocol import MaterialUse
from tests.integration.scripted_fleet import Job, Printer, Session, reports_of, t

pytestmark = pytest.mark.integration

SITES = {"alfa": ("Alfa universitet", "Örebro"), "beta": ("Beta Science Park", "Västmanland")}
PRINTERS = {"alfa-mk4": ("alfa", "Prusa MK4"), "alfa-voron": ("alfa", "Voron 2.4"), "beta-x1c": ("beta", "Bambu Lab X1C")}
CUSTOMERS = {"kilsberg": ("Kilsbergens Verktyg AB", "company"), "region": ("Region Örebro län", "public"),
             "priv-1": ("", "private")}
PRICES = {"PLA": 250.0, "PETG": 300.0, "PETG-CF": 600.0}  # per kg; TPU has none (a note says so)
DENSITY = {"PLA": 1.24, "PETG": 1.27, "PETG-CF": 1.30, "TPU": 1.21}  # PETG-CF's from the inventory, the rest defaults
HOUR_RATE, MODEL_RATE, PRINTER_RATE, PRINTER_FEE = 100.0, 150.0, 80.0, 20.0  # default; X1C's model; alfa-voron's own


def rate(printer: str) -> tuple[float, float]:
    return {"alfa-voron": (PRINTER_RATE, PRINTER_FEE), "beta-x1c": (MODEL_RATE, 0.0)}.get(printer, (HOUR_RATE, 0.0))


@dataclass
class Run:
    printer: str
    start: str
    end: str
    outcome: str
    customer: str | None
    material: list[MaterialUse] = field(default_factory=list)
    progress: float | None = None
    error: str | None = None
    kind: str = ""  # the material's type the truth prices it as, per tool (the report's reading of free text)


S, M = "slicer", "measured"
RUNS = [
    Run("alfa-mk4", "07-06 08:00", "07-06 10:00", "done", "kilsberg", [MaterialUse(S, type="PLA", grams=50.0, mm=16_000.0)],
        100.0),
    Run("alfa-mk4", "07-07 08:00", "07-07 09:00", "failed", "region", [MaterialUse(S, type="PETG", grams=30.0, mm=10_000.0)],
        40.0, "Heater extruder: Thermal Runaway"),
    Run("alfa-mk4", "07-08 08:00", "07-08 09:00", "failed", "region", [MaterialUse(S, type="PLA", grams=20.0)], None,
        "Err: MINTEMP triggered"),  # no progress: its slicer estimate is not counted
    Run("alfa-voron", "07-09 08:00", "07-09 08:30", "cancelled", "kilsberg", [MaterialUse(M, type="PLA", mm=2_000.0)], 25.0),
    Run("alfa-voron", "08-03 12:00", "08-03 15:00", "done", None, [MaterialUse(M, type="PETG-CF", mm=15_000.0)], 100.0),
    Run("beta-x1c", "08-10 09:00", "08-10 13:00", "done", "priv-1",
        [MaterialUse(S, tool=0, type="Bambu PLA Basic", colour="#FFFFFF", grams=100.0),
         MaterialUse(S, tool=1, type="Bambu TPU for AMS", colour="#000000", grams=20.0)], 100.0),
    Run("beta-x1c", "09-01 09:00", "09-01 10:00", "failed", "kilsberg", [MaterialUse(S, type="PLA", grams=80.0)], 50.0,
        "HMS_0300_0200_0001_0003: nozzle over temperature"),
    Run("beta-x1c", "09-02 09:00", "09-02 11:00", "done", "region", [], 100.0),  # no material told: absent, not 0
]
KIND = {"PLA": "PLA", "PETG": "PETG", "PETG-CF": "PETG-CF", "Bambu PLA Basic": "PLA", "Bambu TPU for AMS": "TPU"}
CAUSE = {"Heater extruder: Thermal Runaway": "thermal runaway", "Err: MINTEMP triggered": "MINTEMP (temperature too low)",
         "HMS_0300_0200_0001_0003: nozzle over temperature": "Bambu Lab: motion controller", None: "cancelled"}


def file_of(r: Run) -> str:
    return f"part {r.start[:5]} [{r.customer}].gcode" if r.customer else f"part {r.start[:5]}.gcode"


# --- the truth, from the runs --------------------------------------------------------------------


def hours(r: Run) -> float:
    return (t(r.end) - t(r.start)) / 3_600_000


def tool_grams(r: Run, u: MaterialUse) -> float | None:
    share = 1.0 if u.source == M or r.outcome == "done" else (None if r.progress is None else r.progress / 100)
    if share is None:
        return None
    if u.grams is not None:
        return u.grams * share
    return u.mm * share * math.pi * 0.875 ** 2 / 1000 * DENSITY[KIND[u.type]]


def grams(r: Run) -> float | None:
    known = [g for u in r.material if (g := tool_grams(r, u)) is not None]
    return sum(known) if known else None


def metres(r: Run) -> float | None:
    share = 1.0 if r.outcome == "done" else (r.progress or 0) / 100
    known = [u.mm * (1.0 if u.source == M else share) / 1000 for u in r.material if u.mm is not None]
    return sum(known) if known else None


def cost(r: Run) -> float:
    hour_rate, fee = rate(r.printer)
    material = sum((tool_grams(r, u) or 0) / 1000 * PRICES.get(KIND[u.type], 0.0) for u in r.material)
    return hours(r) * hour_rate + material + fee


def organisation(r: Run) -> str:
    return SITES[PRINTERS[r.printer][0]][0]


def customer_name(customer: str | None) -> str:
    if customer is None:
        return "unattributed"
    name, kind = CUSTOMERS[customer]
    return "private person" if kind == "private" else name


# --- the pipeline --------------------------------------------------------------------------------


def script() -> list[Printer]:
    out = []
    for printer, (site, _) in PRINTERS.items():
        states, jobs = [("07-01 00:00", "idle")], []
        for r in sorted((r for r in RUNS if r.printer == printer), key=lambda r: t(r.start)):
            states += [(r.start, "printing"), (r.end, "error" if r.outcome == "failed" else "idle")]
            jobs += [Job("started", r.start, file=file_of(r), material=r.material),
                     Job(r.outcome, r.end, started=r.start, file=file_of(r), material=r.material, progress=r.progress,
                         error=r.error)]
        for i, (at, state) in enumerate(list(states)):
            if state == "error":  # back to idle after a failure, before the next job
                states.insert(states.index((at, state)) + 1, (at[:-5] + "23:00", "idle"))
        out.append(Printer(site, printer, f"pi-{site}", [Session("07-01 00:00", "09-20 00:00", states, jobs)]))
    return out


def write_inventory(path: Path) -> Path:
    lines = []
    for site, (org, county) in SITES.items():
        lines += [f"[sites.{site}]", f'organisation = "{org}"', f'county = "{county}"', ""]
    for printer, (site, model) in PRINTERS.items():
        lines += [f"[printers.{printer}]", f'site = "{site}"', f'model = "{model}"', ""]
    for cid, (name, kind) in CUSTOMERS.items():
        lines += [f"[customers.{cid}]", f'kind = "{kind}"', 'county = "Örebro"']
        lines += [f'name = "{name}"', 'size = "small"', "registered = 2020"] if kind == "company" else []
        lines += [f'name = "{name}"'] if kind == "public" else []
        lines.append("")
    for kind, price in PRICES.items():
        lines += [f'[materials."{kind}"]', f"price_per_kg = {price}"]
        lines += ["density = 1.30", ""] if kind == "PETG-CF" else [""]
    lines += ["[rates]", 'currency = "SEK"', f"hour_rate = {HOUR_RATE}", "",
              '[rates.models."Bambu Lab X1C"]', f"hour_rate = {MODEL_RATE}", "",
              "[rates.printers.alfa-voron]", f"hour_rate = {PRINTER_RATE}", f"start_fee = {PRINTER_FEE}", ""]
    path.write_text("\n".join(lines))
    return path


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    with reports_of(tmp_path_factory.mktemp("material"), write_inventory, script()) as (out, influx, _):
        yield out, influx


def read_csv(out: Path, table: str, lang: str = "en") -> list[dict]:
    with (out / f"printfarm-report-2026-Q3-{lang}-{table}.csv").open(encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def near(found: str | float | None, truth: float | None) -> bool:
    if truth is None:
        return found in (None, "")
    return found not in (None, "") and math.isclose(float(found), truth, rel_tol=1e-9, abs_tol=1e-9)


# --- the tests -------------------------------------------------------------------------------------


def test_the_database_holds_each_jobs_material_as_told_and_nothing_for_the_job_without(report_dir):
    _, influx = report_dir
    from devkit.pipeline import DB
    rows = influx.query("SELECT grams, mm, material, material_source, progress FROM job WHERE kind <> 'started'", db=DB)
    assert len(rows) == len(RUNS)
    by_time = {r["time"]: r for r in rows}
    for r in RUNS:
        row = by_time[t(r.end)]
        given = [u.grams for u in r.material if u.grams is not None]
        assert near(row["grams"], sum(given) if given else None)
        assert row["material"] == ("+".join(u.type for u in r.material) or None)
    assert [row for row in rows if row["material"] is None] == [by_time[t(RUNS[-1].end)]]


def test_every_jobs_grams_metres_material_hours_and_cost_equal_the_truth_in_the_csv(report_dir):
    out, _ = report_dir
    rows = read_csv(out, "billing")
    assert len(rows) == len(RUNS)
    for r, row in zip(sorted(RUNS, key=lambda r: t(r.end)), rows):
        assert row["Printer"] == r.printer and row["Organisation"] == organisation(r)
        assert row["Customer"] == customer_name(r.customer)
        assert row["Material"] == "+".join(dict.fromkeys(KIND[u.type] for u in r.material))
        assert near(row["Material (g)"], grams(r)), (r, row)
        assert near(row["Filament (m)"], metres(r)), (r, row)
        assert near(row["Machine hours"], hours(r)) and near(row["Cost (SEK)"], cost(r)), (r, row)
        assert row["Amount from"] == ({"slicer": "slicer estimate", "measured": "measured"}[r.material[0].source]
                                      if grams(r) is not None or metres(r) is not None else "")
        assert row["Cause"] == ("" if r.outcome == "done" else CAUSE[r.error])
        assert "gcode" not in " ".join(row.values())  # no file name on the invoicing sheet


def sums(key) -> dict:
    out: dict = {}
    for r in RUNS:
        f = out.setdefault(key(r), {"jobs": 0, "grams": None, "metres": None, "hours": 0.0, "cost": 0.0})
        f["jobs"] += 1
        for name, value in (("grams", grams(r)), ("metres", metres(r))):
            if value is not None:  # none known: absent, not 0
                f[name] = (f[name] or 0.0) + value
        f["hours"] += hours(r)
        f["cost"] += cost(r)
    return out


def test_cost_per_customer_and_per_organisation_equal_the_truth_in_the_csv(report_dir):
    out, _ = report_dir
    truth = sums(lambda r: customer_name(r.customer).replace("private person", "private persons (1)"))
    rows = {row["Customer"]: row for row in read_csv(out, "cost_customers")}
    assert set(rows) == set(truth)
    for name, f in truth.items():
        row = rows[name]
        assert int(row["Jobs ended"]) == f["jobs"] and near(row["Cost (SEK)"], f["cost"])
        assert near(row["Material (g)"], f["grams"]) and near(row["Machine hours"], f["hours"])
    truth = sums(organisation)
    rows = {row["Organisation"]: row for row in read_csv(out, "cost_organisations")}
    assert set(rows) == set(truth)
    for name, f in truth.items():
        assert near(rows[name]["Cost (SEK)"], f["cost"]) and near(rows[name]["Filament (m)"], f["metres"])
        assert near(rows[name]["Material (g)"], f["grams"])


def test_the_xlsx_sheets_hold_the_csvs_figures(report_dir):
    out, _ = report_dir
    wb = openpyxl.load_workbook(out / "printfarm-report-2026-Q3-en.xlsx", read_only=True)
    for key, sheet in (("billing", "Jobs to invoice"), ("cost_customers", "Cost per customer"),
                       ("cost_organisations", "Cost per organisation"), ("outcomes", "Outcomes"),
                       ("failure_causes", "Failure causes"), ("materials", "Materials")):
        cells = [list(row) for row in wb[sheet].iter_rows(values_only=True)]
        with (out / f"printfarm-report-2026-Q3-en-{key}.csv").open(encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
        assert len(cells) == len(rows) > 1, key
        for x, c in zip(cells[1:], rows[1:]):
            for a, b in zip(x, c):
                if isinstance(a, float):
                    assert near(b, a), (key, x, c)
                elif a is not None and not hasattr(a, "year"):
                    assert str(a) == b, (key, x, c)
    wb.close()


def test_outcomes_and_failure_causes_equal_the_truth(report_dir):
    out, _ = report_dir
    rows = {(r["By"], r["Name"]): r for r in read_csv(out, "outcomes")}
    for printer in PRINTERS:
        mine = [r for r in RUNS if r.printer == printer]
        row = rows[("printer", f"{PRINTERS[printer][0]}/{printer}")]
        assert int(row["Jobs ended"]) == len(mine)
        assert near(row["Success rate"], sum(r.outcome == "done" for r in mine) / len(mine))
    pla = [r for r in RUNS if "PLA" in {KIND[u.type] for u in r.material}]
    assert near(rows[("material", "PLA")]["Success rate"], sum(r.outcome == "done" for r in pla) / len(pla))
    wasted = sum(grams(r) or 0.0 for r in RUNS if r.outcome != "done")
    assert near(rows[("all", "all printers")]["Material wasted (g)"], wasted)
    causes = {r["Cause"]: int(r["Jobs ended"]) for r in read_csv(out, "failure_causes")}
    assert causes == {CAUSE[r.error]: 1 for r in RUNS if r.outcome != "done"}


def test_the_notes_say_what_was_not_priced_or_counted(report_dir):
    out, _ = report_dir
    wb = openpyxl.load_workbook(out / "printfarm-report-2026-Q3-en.xlsx", read_only=True)
    about = " ".join(str(c) for row in wb["About"].iter_rows(values_only=True) for c in row if c)
    wb.close()
    assert "No price per kg in the inventory for TPU" in about
    assert "1 failed or cancelled job material(s) with a slicer estimate and no progress" in about


def pdf_text(path: Path) -> str:
    return " ".join(subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True,
                                   timeout=60).stdout.split())


def en(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f}"


def sv(value: float | None) -> str:
    return "saknas" if value is None else f"{value:,.2f}".replace(",", " ").replace(".", ",")


def test_the_pdfs_show_the_organisations_and_customers_costs_and_the_totals(report_dir):
    out, _ = report_dir
    total_cost = sum(cost(r) for r in RUNS)
    total_grams = sum(grams(r) or 0.0 for r in RUNS)
    for lang, number in (("en", en), ("sv", sv)):
        text = pdf_text(out / f"printfarm-report-2026-Q3-{lang}.pdf")
        for name, f in sums(organisation).items():
            assert f"{name} {f['jobs']} {number(f['hours'])} {number(f['grams'])} {number(f['metres'])} " \
                   f"{number(f['cost'])}" in text, (lang, name)
        private = {"en": "private persons (1)", "sv": "privatpersoner (1)"}[lang]
        unattributed = {"en": "unattributed", "sv": "ej tillskrivet"}[lang]
        for name, f in sums(lambda r: r.customer).items():
            shown = unattributed if name is None else private if name == "priv-1" else CUSTOMERS[name][0]
            assert f"{shown} {f['jobs']} {number(f['hours'])} {number(f['grams'])} {number(f['metres'])} " \
                   f"{number(f['cost'])}" in text, (lang, name)
        summary = pdf_text(out / f"printfarm-summary-2026-Q3-{lang}.pdf")
        for text in (text, summary):
            assert f"{number(total_grams)} g" in text and f"{number(total_cost)} SEK" in text, lang

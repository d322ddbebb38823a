"""The same bill in every output: the real-agent material tests check the CSV's billing rows against their
truth, and then that the XLSX's "Jobs to invoice" sheet and the PDF's totals say the same."""

from __future__ import annotations

import csv
import math
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import openpyxl

from devkit.pipeline import DB
from server.__main__ import main as server_main

AMOUNTS = ("Material (g)", "Filament (m)", "Cost (SEK)")


def report_the_farm(tmp: Path, state_dir, influx) -> Path:
    """``printfarm-server report`` over yesterday to tomorrow for the farm's inventory
    (tmp/fleet.toml) and database, in every format, in English; its output folder."""
    config = tmp / "server.toml"
    config.write_text(f'inventory = "{tmp / "fleet.toml"}"\nstate_dir = "{state_dir}"\n[influx]\n'
                      f'url = "{influx.url}"\ndatabase = "{DB}"\nspool_dir = "{tmp / "spool"}"\n')
    today = datetime.now(timezone.utc).date()
    out = tmp / "out"
    assert server_main(["report", "-c", str(config), "--out", str(out), "--no-progress", "--period",
                        f"{today - timedelta(days=1)}..{today + timedelta(days=1)}",
                        "--format", "xlsx,csv,pdf,summary", "--lang", "en"]) == 0
    return out


def billing_rows(out: Path) -> list[dict]:
    (path,) = out.glob("*-en-billing.csv")
    with path.open(encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def _pdf_text(path: Path) -> str:
    return " ".join(subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                                   check=True, timeout=60).stdout.split())


def assert_xlsx_and_pdf_bill_as_the_csv(out: Path) -> None:
    rows = billing_rows(out)
    assert rows, "no billing rows"
    (path,) = out.glob("*-en.xlsx")
    wb = openpyxl.load_workbook(path, read_only=True)
    cells = [list(r) for r in wb["Jobs to invoice"].iter_rows(values_only=True)]
    wb.close()
    header = cells[0]
    assert len(cells) - 1 == len(rows)
    for sheet_row, csv_row in zip(cells[1:], rows):
        for column in AMOUNTS:
            assert math.isclose(float(csv_row[column]), float(sheet_row[header.index(column)]), abs_tol=1e-9), column
    grams = sum(float(r["Material (g)"]) for r in rows)
    cost = sum(float(r["Cost (SEK)"]) for r in rows)
    (pdf,) = [p for p in out.glob("*-en.pdf") if "summary" not in p.name]
    for text in (_pdf_text(pdf), _pdf_text(next(out.glob("*summary*-en.pdf")))):
        assert f"{grams:,.2f} g" in text and f"{cost:,.2f} SEK" in text, (grams, cost)

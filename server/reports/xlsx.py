"""The XLSX workbook: an "About" sheet (period, definitions, notes), then one sheet per grouping,
the monthly trend and the job list. Numbers are numbers (ratios as fractions formatted as %),
times are real date-times, headers are frozen.

Written with XlsxWriter in constant-memory mode: a year of a large fleet has a job list of ~100,000
rows (over a million cells), which it writes ~1.5x faster than openpyxl's write-only mode even
with lxml (4.5 s against 6-9 s on a loaded 2-core machine). openpyxl reads the files in tests.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import xlsxwriter

from server.reports.build import Report
from server.reports.labels import DEFINITIONS, SHEETS, TEXT, note_text
from server.reports.tables import PERCENT_COLUMNS, TABLE_KEYS, Table, tables

NUMBER_FORMATS = {"percent": "0.0%", "hours": "#,##0.00", "time": "yyyy-mm-dd hh:mm:ss"}


def write(report: Report, lang: str, path: Path) -> Path:
    book = Book(path, lang)
    book.about(report)
    for table in tables(report, lang):
        book.table(table)
    return book.close()


class Book:
    """A workbook with all its sheets in place, in their order, to be filled in any order: a
    constant-memory worksheet keeps its rows in a file of its own, so the job list can be written
    before the figures it comes after are known (see server/reports/ahead.py)."""

    def __init__(self, path: Path, lang: str):
        # Text stays text: a file named "=1+1" or "http://…" must not become a formula or a link.
        self.path, self.lang = Path(path), lang
        self.wb = wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_formulas": False,
                                                       "strings_to_urls": False, "strings_to_numbers": False})
        self.formats = {name: wb.add_format({"num_format": spec}) for name, spec in NUMBER_FORMATS.items()}
        self.formats["header"] = wb.add_format({"bold": True, "text_wrap": True, "valign": "top"})
        self.formats["title"] = wb.add_format({"bold": True, "font_size": 14})
        self.formats["bold"] = wb.add_format({"bold": True})
        self.formats["wrap"] = wb.add_format({"text_wrap": True, "valign": "top"})
        self.sheets = {key: wb.add_worksheet(SHEETS[lang][key]) for key in ("about", *TABLE_KEYS)}

    def about(self, report: Report) -> None:
        _about(self.sheets["about"], report, self.lang, self.formats)

    def table(self, table: Table) -> None:
        _sheet(self.sheets[table.key], table, self.formats)

    def close(self) -> Path:
        self.wb.close()
        return self.path


def _about(ws, report: Report, lang: str, formats: dict) -> None:
    t = TEXT[lang]
    ws.set_column(0, 0, 28)
    ws.set_column(1, 1, 110)
    lines = [([t["title"]], formats["title"]), ([t["period"], report.period.label], None),
             ([t["time_zone"], report.period.tz], None), ([t["generated"], report.generated()], formats["time"]),
             ([], None), ([t["notes"]], formats["bold"])]
    lines += [(["", note_text(note, lang)], None) for note in report.notes] or [(["", t["none"]], None)]
    lines += [([], None), ([t["definitions"]], formats["bold"])]
    lines += [(["", text], formats["wrap"]) for text in DEFINITIONS[lang]]
    for row, (values, fmt) in enumerate(lines):
        for col, value in enumerate(values):
            ws.write(row, col, value, fmt if col == len(values) - 1 else None)  # the format is for the last cell


def _sheet(ws, table: Table, formats: dict) -> None:
    ws.freeze_panes(1, 0)
    for col, header in enumerate(table.header):
        ws.set_column(col, col, max(10, min(40, len(header) + 2)))
        ws.write_string(0, col, header, formats["header"])
    cell_formats = [formats.get(_format(c)) for c in table.columns]
    # The typed writers directly: write() would work out each value's type again (~20 % slower).
    writers = {str: ws.write_string, float: ws.write_number, int: ws.write_number,
               datetime: ws.write_datetime, bool: ws.write_boolean}
    for row, values in enumerate(table.rows, start=1):
        row_formats = [formats["percent"]] * len(values) if row - 1 in table.percent_rows else cell_formats
        for col, value in enumerate(values):
            if value is None or value == "":
                continue  # an empty cell, not an empty string
            kind = type(value)
            writers[kind](row, col, value, None if kind is str else row_formats[col])


def _format(column: str) -> str | None:
    if column in PERCENT_COLUMNS:
        return "percent"
    if column.endswith("_h") or column.endswith("_m_est") or column in ("job_hours", "cost", "machine_cost"):
        return "hours"
    if column in ("started", "ended", "first_served", "job_started", "job_ended"):
        return "time"
    return None

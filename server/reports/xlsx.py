"""The XLSX workbook: an "About" sheet (period, definitions, notes), then one sheet per grouping,
the monthly trend and the job list. Numbers are numbers (ratios as fractions formatted as %),
times are real date-times, headers are frozen.

Written by server/reports/xlsx_file.py, streaming: a year of a large fleet has a job list of
~100,000 rows (over a million cells), which it writes ~5x faster than XlsxWriter's constant-memory
mode did (and that ~1.5x faster than openpyxl's write-only mode). Text stays text: a file named
"=1+1" or "http://…" is never a formula or a link (no cell here is either). openpyxl reads the
files in tests.
"""

from __future__ import annotations

from pathlib import Path

from server.reports.build import Report
from server.reports.labels import DEFINITIONS, SHEETS, TEXT, note_text
from server.reports.tables import PERCENT_COLUMNS, TABLE_KEYS, Table, tables
from server.reports.xlsx_file import STYLE_INDEX, SheetData, Workbook



def write(report: Report, lang: str, path: Path) -> Path:
    book = Book(path, lang)
    try:
        book.about(report)
        for table in tables(report, lang):
            book.table(table)
    except BaseException:
        book.discard()
        raise
    return book.close()


class Book:
    """A workbook with all its sheets in place, in their order, to be filled in any order, each
    once: the job list can be written before the figures it comes after are known (see
    server/reports/ahead.py)."""

    def __init__(self, path: Path, lang: str):
        self.path, self.lang = Path(path), lang
        keys = ("about", *TABLE_KEYS)
        self.index = {key: i for i, key in enumerate(keys)}
        self.wb = Workbook(path, [SHEETS[lang][key] for key in keys])

    def about(self, report: Report) -> None:
        _about(self.wb, self.index["about"], report, self.lang)

    def table(self, table: Table) -> None:
        _sheet(self.wb, self.index[table.key], table)

    def close(self) -> Path:
        return self.wb.close()

    def discard(self) -> None:
        """No workbook after all (the report failed)."""
        self.wb.discard()


def _about(wb: Workbook, index: int, report: Report, lang: str) -> None:
    t = TEXT[lang]
    lines = [([t["title"]], "title"), ([t["period"], report.period.label], None),
             ([t["time_zone"], report.period.tz], None), ([t["generated"], report.generated()], "time"),
             ([], None), ([t["notes"]], "bold")]
    lines += [(["", note_text(note, lang)], None) for note in report.notes] or [(["", t["none"]], None)]
    lines += [([], None), ([t["definitions"]], "bold")]
    lines += [(["", text], "wrap") for text in DEFINITIONS[lang]]
    data = SheetData(2)

    def rows():
        for row, (values, fmt) in enumerate(lines, start=1):
            styles = [0] * (len(values) - 1) + [STYLE_INDEX[fmt]] if values else []  # the format is for the last cell
            yield from data.rows([values], row, styles, styles)
    wb.write_sheet(index, rows(), (len(lines), 2), widths=(28, 110))


def _sheet(wb: Workbook, index: int, table: Table) -> None:
    width = max([len(table.header), *map(len, table.rows)])
    data = SheetData(width)
    header = [STYLE_INDEX["header"]] * len(table.header)
    numbers = [STYLE_INDEX[_format(c)] for c in table.columns] + [0] * (width - len(table.columns))
    percent = [STYLE_INDEX["percent"]] * width

    def rows():
        yield from data.rows([table.header], 1, header, header)
        if not table.percent_rows:
            yield from data.rows(table.rows, 2, numbers)
            return
        for i, values in enumerate(table.rows):  # the key figures: a few rows, some all ratios
            yield from data.rows([values], i + 2, percent if i in table.percent_rows else numbers)
    wb.write_sheet(index, rows(), (len(table.rows) + 1, width),
                   widths=[max(10, min(40, len(h) + 2)) for h in table.header], freeze_header=True)


def _format(column: str) -> str | None:
    if column in PERCENT_COLUMNS:
        return "percent"
    if column.endswith("_h") or column.endswith("_m_est") or column in ("job_hours", "cost", "machine_cost"):
        return "hours"
    if column in ("started", "ended", "first_served", "job_started", "job_ended"):
        return "time"
    return None

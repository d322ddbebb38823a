"""CSV files, one per table: ``<stem>-<table>.csv``, UTF-8 with BOM so Excel reads å, ä, ö.

Numbers carry 16 significant digits, as openpyxl writes them into the XLSX, so both files hold the
same figures (hours below a million stay exact to the millisecond); the decimal separator is a dot; times are local
(the report's time zone) ISO 8601. Ratios are fractions (0.25 = 25 %), as in the XLSX.

Text that a spreadsheet would run as a formula (it begins with ``=``, ``+``, ``-``, ``@``, a tab
or a carriage return: file names, user names and error texts come from the printers) gets a
leading apostrophe, so Excel and LibreOffice show it as text, as the XLSX already stores it. Printer
texts (file, user, error) are plain by then (common/text.py): a tab or a line break is a space.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

from server.reports.build import Report
from server.reports.tables import Table, report_tables, tables


def write(report: Report, lang: str, out_dir: Path, stem: str, jobs_written: bool = False) -> list[Path]:
    """Every table's file. ``jobs_written``: the job list's is written already (by the child that
    writes the job sheet ahead, server/reports/ahead.py); its path still comes last."""
    found = tables(report, lang) if not jobs_written else report_tables(report, lang)
    paths = [write_table(table, path_of(out_dir, stem, table.key)) for table in found]
    return paths + [path_of(out_dir, stem, "jobs")] if jobs_written else paths


def path_of(out_dir: Path, stem: str, key: str) -> Path:
    return Path(out_dir) / f"{stem}-{key}.csv"


def write_table(table: Table, path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh)
        writer.writerow(table.header)
        writer.writerows(cells(table.rows, len(table.header)))
    return path


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, float):
        return "%.16g" % value
    return value


def _text(value: str) -> str:
    # lstrip: a printer's tab or line break before "=" is a space by now (common/text.py)
    return "'" + value if value.lstrip(" ").startswith(FORMULA_STARTS) else value


def cells(rows: list, width: int):
    """The rows' cells as ``cell`` makes them, a column at a time: a column holds one or two types, so
    each is converted by a tight loop for its type, and a text column's few distinct values once each."""
    if not rows:
        return []
    columns = []
    for column in zip(*rows):
        types = set(map(type, column))
        types.discard(type(None))
        if not types:
            columns.append([""] * len(column))
        elif types == {str}:  # sites, printers, outcomes, materials: a handful of values
            made = {v: "" if v is None else _text(v) for v in set(column)}
            columns.append(list(map(made.__getitem__, column)))
        elif types == {float}:  # no dict here: -0.0 == 0.0 would share a cell
            columns.append(["" if v is None else "%.16g" % v for v in column])
        elif types == {datetime}:
            columns.append(["" if v is None else v.isoformat(sep=" ", timespec="seconds") for v in column])
        else:
            columns.append([_FAST.get(type(v), _cell)(v) for v in column])
    if len(columns) != width or any(len(row) != width for row in rows):  # ragged: zip would cut rows short
        return ([_FAST.get(type(v), _cell)(v) for v in row] for row in rows)
    return zip(*columns)


# _cell by exact type, without its chain of isinstance checks: a year's job list is a million cells.
_FAST = {str: _text, float: lambda v: "%.16g" % v, int: lambda v: v, type(None): lambda v: "",
         datetime: lambda v: v.isoformat(sep=" ", timespec="seconds")}


def cell(value):
    """One value as the CSV holds it (``cells`` does the same a column at a time)."""
    return _FAST.get(type(value), _cell)(value)

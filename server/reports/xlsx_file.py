"""A small streaming XLSX (Office Open XML spreadsheet) writer: what the report's workbook needs and
nothing more — sheets of text, numbers, booleans and date-times, a few cell styles, column widths and
a frozen header row.

Why not XlsxWriter: a year's job list is ~1 million cells, and XlsxWriter spends ~5 µs on each
(type checks, dimension bookkeeping, a regex or three, one file write per cell): ~5 of the yearly
report's ~11 CPU-seconds. Here a row is one formatted string, repeated texts are escaped once, and
the sheet goes into the zip as it is made, in large writes: ~1 µs a cell. The cells are written as
XlsxWriter wrote them in its constant-memory mode (inline strings, numbers with 16 significant
digits, the same date serials and escapes), so the workbook reads back the same.

Sheets are declared up front (their names and order) and then filled in any order, each once: the
job list can be written before the figures it comes after are known (server/reports/ahead.py).
"""

from __future__ import annotations

import math
import os
import re
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterable, Sequence

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
MAX_STRING = 32_767  # Excel's limit for a cell's text; longer texts are cut, as XlsxWriter did
MAX_SHEET_NAME = 31
BAD_SHEET_NAME = re.compile(r"[\[\]:*?/\\]")
ROWS_PER_WRITE = 2_000

# Cell styles by name: (number format or None, font or None, alignment or None). Index 0 is the default.
FONTS = {None: 0, "bold": 1, "title": 2}
STYLES: dict[str | None, tuple[str | None, str | None, bool]] = {  # name -> (number format, font, wrap+top)
    None: (None, None, False),
    "header": (None, "bold", True),
    "title": (None, "title", False),
    "bold": (None, "bold", False),
    "wrap": (None, None, True),
    "percent": ("0.0%", None, False),
    "hours": ("#,##0.00", None, False),
    "time": ("yyyy-mm-dd hh:mm:ss", None, False),
}
STYLE_INDEX = {name: i for i, name in enumerate(STYLES)}


def column_letters(n: int) -> list[str]:
    """"A", "B", ... for the first ``n`` columns."""
    out = []
    for i in range(n):
        name, i = "", i + 1
        while i:
            i, rem = divmod(i - 1, 26)
            name = chr(65 + rem) + name
        out.append(name)
    return out


_CONTROL_ESCAPE = re.compile(r"(_x[0-9a-fA-F]{4}_)")  # a literal "_x0041_" must not read back as "A"
_CONTROL = re.compile(r"([\x00-\x08\x0b-\x1f])")  # XML 1.0 cannot carry these: _xHHHH_ instead
_NEEDS_WORK = re.compile(r"[\x00-\x08\x0b-\x1f&<>\ufffe\uffff]|_x[0-9a-fA-F]{4}_")
_EDGE_SPACE = re.compile(r"^\s|\s$")


def text_cell_body(value: str) -> str:
    """What follows ``<c r=".." [s=".."]`` for a text cell: escaped as Excel expects."""
    value = value[:MAX_STRING]
    if _NEEDS_WORK.search(value):
        value = _CONTROL_ESCAPE.sub(r"_x005F\1", value)
        value = _CONTROL.sub(lambda m: f"_x{ord(m.group(1)):04X}_", value)
        value = value.replace("\ufffe", "_xFFFE_").replace("\uffff", "_xFFFF_")
        value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    space = ' xml:space="preserve"' if _EDGE_SPACE.search(value) else ""
    return f' t="inlineStr"><is><t{space}>{value}</t></is></c>'


EPOCH = datetime(1899, 12, 31)


def excel_serial(value: datetime) -> float:
    """A naive date-time as Excel's serial day number (1900 system, with its 29 Feb 1900)."""
    delta = value.replace(tzinfo=None) - EPOCH
    serial = delta.days + (float(delta.seconds) + float(delta.microseconds) / 1e6) / 86400
    return serial + 1 if serial >= 60 else serial


def number(value: float | int) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"an XLSX cell cannot hold {value!r}")
    return "%.16G" % value


class SheetData:
    """The rows of one sheet as XML, cell by cell; ``styles[col]`` is the style of that column's
    numbers and date-times (texts take ``text_styles[col]``, default none)."""

    def __init__(self, width: int):
        self.letters = column_letters(max(width, 1))
        self.texts: dict[str, str] = {}  # a text -> its escaped cell body: sites, names, outcomes repeat

    def grow(self, width: int) -> None:
        if width > len(self.letters):
            self.letters = column_letters(width)

    def rows(self, rows: Iterable[Sequence], first: int, styles: Sequence[int],
             text_styles: Sequence[int] | None = None) -> Iterable[str]:
        """XML of ``rows`` numbered from ``first`` (1-based), in chunks for few large writes."""
        letters, texts, chunk = self.letters, self.texts, []
        text_styles = text_styles or [0] * len(styles)
        for r, values in enumerate(rows, start=first):
            rs = str(r)
            cells = [f'<row r="{rs}">']
            for col, value in enumerate(values):
                if value is None or value == "":
                    continue  # an empty cell, not an empty string
                kind = type(value)
                if kind is str:
                    body = texts.get(value)
                    if body is None:
                        body = texts[value] = text_cell_body(value)
                    s = text_styles[col]
                elif kind is float or kind is int:
                    s = styles[col]
                    body = f"><v>{number(value)}</v></c>"
                elif kind is datetime:
                    s = styles[col]
                    body = f"><v>{number(excel_serial(value))}</v></c>"
                elif kind is bool:
                    s = styles[col]
                    body = f' t="b"><v>{int(value)}</v></c>'
                else:
                    raise TypeError(f"an XLSX cell cannot hold a {kind.__name__}: {value!r}")
                cells.append(f'<c r="{letters[col]}{rs}" s="{s}"{body}' if s else f'<c r="{letters[col]}{rs}"{body}')
            if len(cells) == 1:
                continue  # no cell in this row
            cells.append("</row>")
            chunk.append("".join(cells))
            if len(chunk) >= ROWS_PER_WRITE:
                yield "".join(chunk)
                chunk = []
        if chunk:
            yield "".join(chunk)


@dataclass
class Sheet:
    name: str
    part: str  # its file in the package: xl/worksheets/sheetN.xml
    written: bool = False


class Workbook:
    """An XLSX package at ``path`` with the sheets ``names``, in that order. Each sheet is written
    once (``write_sheet``), in any order; ``close`` writes the ones left empty and puts the file in
    place (until then it is a hidden ``.<name>.part`` beside it: a report that fails leaves no
    workbook; ``discard`` removes the part).
    Deflate level 1: the job list's XML compresses to ~8 % of its size at level 1 and ~6 % at the
    default 6, which takes three times as long."""

    def __init__(self, path: str | Path, names: Sequence[str]):
        for name in names:
            if not name or len(name) > MAX_SHEET_NAME or BAD_SHEET_NAME.search(name) or name.startswith("'"):
                raise ValueError(f"not a valid sheet name for Excel (31 characters, none of []:*?/\\): {name!r}")
        if len({n.lower() for n in names}) != len(names):
            raise ValueError(f"sheet names repeat (Excel ignores case): {list(names)}")
        self.path = Path(path)
        self.sheets = [Sheet(name, f"xl/worksheets/sheet{i}.xml") for i, name in enumerate(names, start=1)]
        self.part = self.path.with_name(f".{self.path.name}.part")
        self.zip = zipfile.ZipFile(self.part, "w", zipfile.ZIP_DEFLATED, compresslevel=1)
        self._put("[Content_Types].xml", _content_types(self.sheets))
        self._put("_rels/.rels", _package_rels())
        self._put("xl/workbook.xml", _workbook(self.sheets))
        self._put("xl/_rels/workbook.xml.rels", _workbook_rels(self.sheets))
        self._put("xl/styles.xml", _styles())

    def write_sheet(self, index: int, xml_rows: Iterable[str], size: tuple[int, int], widths: Sequence[float] = (),
                    freeze_header: bool = False) -> None:
        """Sheet ``index`` (0-based): its rows' XML (``SheetData.rows``), its size (rows, columns)
        for the dimension, column widths in characters, a frozen first row."""
        sheet = self.sheets[index]
        if sheet.written:
            raise ValueError(f"sheet {sheet.name!r} written twice")
        sheet.written = True
        with self.zip.open(sheet.part, "w") as fh:
            fh.write(_sheet_head(index == 0, size, widths, freeze_header).encode())
            for piece in xml_rows:
                fh.write(piece.encode())
            fh.write(_SHEET_TAIL.encode())

    def close(self) -> Path:
        for i, sheet in enumerate(self.sheets):
            if not sheet.written:
                self.write_sheet(i, (), (0, 0))
        self.zip.close()
        os.replace(self.part, self.path)
        return self.path

    def discard(self) -> None:
        self.zip.close()
        self.part.unlink(missing_ok=True)

    def _put(self, part: str, xml: str) -> None:
        self.zip.writestr(part, xml)


def excel_width(chars: float) -> float:
    """A column width in characters as Excel stores it (Calibri 11: 7 pixels a digit, 5 of padding)."""
    return int((int(chars * 7 + 0.5) + 5) / 7 * 256) / 256


def _sheet_head(selected: bool, size: tuple[int, int], widths: Sequence[float], freeze: bool) -> str:
    rows, cols = size
    last = f"{column_letters(cols)[-1]}{rows}" if rows and cols else ""
    ref = f"A1:{last}" if last and last != "A1" else "A1"
    tab = ' tabSelected="1"' if selected else ""
    pane = ('<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
            '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/>') if freeze else ""
    cols_xml = "".join(f'<col min="{i}" max="{i}" width="{excel_width(w):.16G}" customWidth="1"/>'
                       for i, w in enumerate(widths, start=1))
    return (f'{XML_HEAD}<worksheet xmlns="{MAIN_NS}" xmlns:r="{REL_NS}"><dimension ref="{ref}"/>'
            f'<sheetViews><sheetView workbookViewId="0"{tab}>{pane}</sheetView></sheetViews>'
            f'<sheetFormatPr defaultRowHeight="15"/>{f"<cols>{cols_xml}</cols>" if cols_xml else ""}<sheetData>')


_SHEET_TAIL = ('</sheetData><pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>'
               "</worksheet>")


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _content_types(sheets: list[Sheet]) -> str:
    kind = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    overrides = "".join(f'<Override PartName="/{s.part}" ContentType="{kind}.worksheet+xml"/>' for s in sheets)
    return (f'{XML_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{kind}.sheet.main+xml"/>'
            f'<Override PartName="/xl/styles.xml" ContentType="{kind}.styles+xml"/>{overrides}</Types>')


def _package_rels() -> str:
    return (f'{XML_HEAD}<Relationships xmlns="{PKG_REL_NS}"><Relationship Id="rId1" '
            f'Type="{REL_NS}/officeDocument" Target="xl/workbook.xml"/></Relationships>')


def _workbook(sheets: list[Sheet]) -> str:
    listed = "".join(f'<sheet name="{_attr(s.name)}" sheetId="{i}" r:id="rId{i}"/>' for i, s in enumerate(sheets, 1))
    return (f'{XML_HEAD}<workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}"><bookViews><workbookView/></bookViews>'
            f"<sheets>{listed}</sheets></workbook>")


def _workbook_rels(sheets: list[Sheet]) -> str:
    rels = "".join(f'<Relationship Id="rId{i}" Type="{REL_NS}/worksheet" Target="worksheets/sheet{i}.xml"/>'
                   for i in range(1, len(sheets) + 1))
    rels += f'<Relationship Id="rId{len(sheets) + 1}" Type="{REL_NS}/styles" Target="styles.xml"/>'
    return f'{XML_HEAD}<Relationships xmlns="{PKG_REL_NS}">{rels}</Relationships>'


def _styles() -> str:
    formats = [f for f, _, _ in STYLES.values() if f]
    fmt_id = {f: 164 + i for i, f in enumerate(formats)}  # 164 on: a workbook's own number formats
    num_fmts = "".join(f'<numFmt numFmtId="{fmt_id[f]}" formatCode="{_attr(f)}"/>' for f in formats)
    font = '<sz val="{}"/><name val="Calibri"/><family val="2"/>'  # no theme: the package has no theme part
    fonts = (f"<font>{font.format(11)}</font><font><b/>{font.format(11)}</font>"
             f"<font><b/>{font.format(14)}</font>")
    xfs = []
    for fmt, font_name, wrap in STYLES.values():
        attrs = f'numFmtId="{fmt_id[fmt] if fmt else 0}" fontId="{FONTS[font_name]}" fillId="0" borderId="0" xfId="0"'
        attrs += ' applyNumberFormat="1"' if fmt else ""
        attrs += ' applyFont="1"' if font_name else ""
        xfs.append(f'<xf {attrs} applyAlignment="1"><alignment vertical="top" wrapText="1"/></xf>' if wrap
                   else f"<xf {attrs}/>")
    return (f'{XML_HEAD}<styleSheet xmlns="{MAIN_NS}"><numFmts count="{len(formats)}">{num_fmts}</numFmts>'
            f'<fonts count="3">{fonts}</fonts>'
            '<fills count="2"><fill><patternFill patternType="none"/></fill>'
            '<fill><patternFill patternType="gray125"/></fill></fills>'
            '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
            '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
            f'<cellXfs count="{len(xfs)}">{"".join(xfs)}</cellXfs>'
            '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>')

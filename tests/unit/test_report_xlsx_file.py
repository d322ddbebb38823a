"""The report's own XLSX writer (server/reports/xlsx_file.py): what it writes reads back as given."""

import zipfile
from datetime import datetime

import openpyxl
import pytest

from server.reports.xlsx_file import STYLE_INDEX, SheetData, Workbook

TRICKY = ["a & b <c> \"d\"", "  leading and trailing  ", "tab\there", "_x0041_ stays literal", "bell\x07",
          "=1+1", "x" * 40_000]


def written(tmp_path, rows, styles, **options):
    path = tmp_path / "t.xlsx"
    wb = Workbook(path, ["One", "Two"])
    width = max(map(len, rows))
    wb.write_sheet(1, SheetData(width).rows(rows, 1, styles), (len(rows), width), **options)
    wb.close()
    return path


def test_texts_numbers_times_and_booleans_read_back_as_written(tmp_path):
    when = datetime(2025, 3, 30, 2, 59, 59, 500_000)
    rows = [[t] for t in TRICKY] + [[1.5, 7, when, True, None, "", 1e-300, 12345678901234567]]
    path = written(tmp_path, rows, [STYLE_INDEX["hours"], 0, STYLE_INDEX["time"], 0, 0, 0, 0, 0], freeze_header=True)
    ws = openpyxl.load_workbook(path)["Two"]
    got = [[c.value for c in row] for row in ws.iter_rows()]
    # Excel decodes _xHHHH_ (so shows "_x0041_" and a bell); openpyxl leaves the escapes as they are
    expected_texts = TRICKY[:3] + ["_x005F_x0041_ stays literal", "bell_x0007_", "=1+1", "x" * 32_767]
    assert [r[0] for r in got[:len(TRICKY)]] == expected_texts
    assert got[-1][:4] == [1.5, 7, when, True] and got[-1][4:6] == [None, None]
    assert got[-1][6] == 1e-300 and got[-1][7] == float("%.16G" % 12345678901234567)
    assert ws["A8"].number_format == "#,##0.00" and ws["C8"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert ws["A1"].data_type == "s" and ws.freeze_panes == "A2"
    assert openpyxl.load_workbook(path).sheetnames == ["One", "Two"]  # the one never written is there, empty


def test_a_number_excel_cannot_hold_is_an_error_not_a_broken_file(tmp_path):
    with pytest.raises(ValueError, match="nan"):
        written(tmp_path, [[float("nan")]], [0])


@pytest.mark.parametrize("names", [["a/b"], ["x" * 32], ["Jobs", "jobs"]])
def test_a_sheet_name_excel_refuses_is_refused_up_front(tmp_path, names):
    with pytest.raises(ValueError, match="sheet name"):
        Workbook(tmp_path / "t.xlsx", names)


def test_no_workbook_until_closed_and_none_after_discard(tmp_path):
    path = tmp_path / "t.xlsx"
    wb = Workbook(path, ["One"])
    wb.write_sheet(0, SheetData(1).rows([["x"]], 1, [0]), (1, 1))
    assert not path.exists()
    wb.discard()
    assert not path.exists() and not list(tmp_path.iterdir())
    wb = Workbook(path, ["One"])
    assert wb.close() == path and zipfile.is_zipfile(path)  # positive control

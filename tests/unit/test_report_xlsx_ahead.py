"""The XLSX written ahead (server/reports/ahead.py: job sheet first, by a forked child, while the
report is still being made) holds the same workbook as the one written from the finished report."""

import dataclasses

import openpyxl
import pytest

from common.pseudonyms import Pseudonyms
from server.reports import build as build_mod
from server.reports import tables, xlsx
from server.reports.generate import write_files, xlsx_ahead
from server.reports.people import People
from tests.unit.test_report_outputs import INVENTORY, NOW, PERIOD, raw


def cells(path):
    wb = openpyxl.load_workbook(path)
    return [(ws.title, [list(r) for r in ws.iter_rows(values_only=True)]) for ws in wb.worksheets]


def people():
    return People(Pseudonyms("test-secret-0123456789abcdef"))


def made_ahead(out, lang="en", formats=("xlsx", "csv")):
    """As make_report(ahead=) does it: the job list as soon as the job events are in, the rest later."""
    with xlsx_ahead(PERIOD, list(formats), out, lang) as ahead:
        data, who = raw(), people()
        rows = build_mod.job_rows(data, INVENTORY, PERIOD, who)
        ahead.jobs(rows, who.show)
        report = build_mod.build(data, INVENTORY, PERIOD, NOW, who, jobs=rows)
        paths = write_files(report, list(formats), out, lang, ahead=ahead)
    return report, paths


@pytest.mark.parametrize("lang", ["en", "sv"])
def test_a_workbook_written_ahead_has_the_cells_sheets_and_order_of_one_written_at_the_end(tmp_path, lang):
    report, paths = made_ahead(tmp_path / "ahead", lang)
    straight = xlsx.write(build_mod.build(raw(), INVENTORY, PERIOD, NOW, people()), lang, tmp_path / "straight.xlsx")
    assert paths[0] == tmp_path / "ahead" / f"printfarm-report-{PERIOD.label}-{lang}.xlsx"
    ahead, expected = cells(paths[0]), cells(straight)
    assert [title for title, _ in ahead] == [title for title, _ in expected]
    assert [title for title, _ in ahead][1:] == [t.title for t in tables.tables(report, lang)]  # About first
    assert ahead == expected
    jobs = ahead[-1][1]  # the job list, last
    assert len(jobs) == 1 + len(report.jobs) == 1 + 3  # header + a done, a failed and a running job


@pytest.mark.parametrize("lang", ["en", "sv"])
def test_csv_files_with_the_job_list_written_ahead_equal_those_written_at_the_end(tmp_path, lang):
    report, paths = made_ahead(tmp_path / "ahead", lang)
    straight = write_files(build_mod.build(raw(), INVENTORY, PERIOD, NOW, people()), ["csv"], tmp_path / "straight",
                           lang)
    ahead = [p for p in paths if p.suffix == ".csv"]
    assert [p.name for p in ahead] == [p.name for p in straight] and ahead[-1].name.endswith("-jobs.csv")
    for mine, theirs in zip(ahead, straight):
        assert mine.read_bytes() == theirs.read_bytes(), mine.name
    assert len(ahead[-1].read_text(encoding="utf-8-sig").splitlines()) == 1 + 3  # header + three jobs


def test_job_rows_made_ahead_equal_those_build_makes_with_users_pseudonymised_once(tmp_path):
    data, who = raw(), people()
    rows = build_mod.job_rows(data, INVENTORY, PERIOD, who)
    ahead = build_mod.build(data, INVENTORY, PERIOD, NOW, who, jobs=rows)
    at_once = build_mod.build(raw(), INVENTORY, PERIOD, NOW, people())
    assert [dataclasses.astuple(r) for r in ahead.jobs] == [dataclasses.astuple(r) for r in at_once.jobs]
    assert not {"anna", "zed"} & {r.user for r in ahead.jobs}  # pseudonyms, and (equal above) made once
    assert ahead.groupings == at_once.groupings


def test_a_report_that_fails_after_the_job_list_leaves_no_workbook_and_no_waiting_child(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="influxd went away"):
        with xlsx_ahead(PERIOD, ["xlsx", "csv"], out, "en") as ahead:
            data, who = raw(), people()
            ahead.jobs(build_mod.job_rows(data, INVENTORY, PERIOD, who), who.show)
            child = ahead.child
            raise RuntimeError("influxd went away")
    assert not child.is_alive() and child.exitcode == 3  # it read the end of the pipe
    assert not list(out.glob("*.xlsx")) and not list(out.glob("*.csv"))  # nor the job list's CSV it wrote
    report, paths = made_ahead(out)  # positive control: the same steps, finished, do write it
    assert paths[0].exists() and cells(paths[0])

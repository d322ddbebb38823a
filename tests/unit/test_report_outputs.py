"""Report building and its files from a hand-made database answer: no InfluxDB needed."""

import csv
from datetime import datetime, timezone

import openpyxl
import pytest

from common.text import plain
from server import inventory as inventory_mod
from server.reports import aggregate, labels, periods
from server.reports.accounting import StatePoint, Timeline
from server.reports.build import build
from server.reports.generate import write_files
from server.reports.query import JobEvent, RawData

H = 3_600_000
PERIOD = periods.parse("2026-07")
NOW = PERIOD.end_ms + 30 * 24 * H
INVENTORY = inventory_mod.from_dict({
    "sites": {"umu": {"organisation": "Umeå universitet", "county": "Västerbotten"},
              "lul": {"organisation": "LTU", "county": "Norrbotten"}},
    "printers": {"a1": {"site": "umu"}, "a2": {"site": "umu"}, "b1": {"site": "lul"}},
})


def raw() -> RawData:
    s = PERIOD.start_ms
    data = RawData(PERIOD.start_ms, PERIOD.end_ms)
    data.timelines[("umu", "a1")] = Timeline(initial=StatePoint(s - H, "idle"), continues=True,
                                             points=[StatePoint(s + H, "printing"), StatePoint(s + 3 * H, "idle")])
    data.timelines[("umu", "a2")] = Timeline(initial=StatePoint(s - H, "idle"), continues=True,
                                             points=[StatePoint(s + 2 * H, "printing"), StatePoint(s + 4 * H, "idle")])
    data.timelines[("ghost", "g1")] = Timeline(points=[StatePoint(s + 10 * H, "idle", True)], last_data=s + 20 * H)
    data.jobs = [
        JobEvent(s + H, "umu", "a1", "started", "a.gcode", "anna"),
        JobEvent(s + 3 * H, "umu", "a1", "done", "a.gcode", "anna", 7200.0, None, 1500.0, None, s + H),
        JobEvent(s + 2 * H, "umu", "a2", "started", "b.gcode", "anna"),
        JobEvent(s + 4 * H, "umu", "a2", "failed", "b.gcode", "anna", 7200.0, None, 900.0, "thermal", s + 2 * H),
        JobEvent(s + 11 * H, "ghost", "g1", "started", "c.gcode", "zed"),
    ]
    return data


@pytest.fixture
def report():
    return build(raw(), INVENTORY, PERIOD, NOW)


def test_site_rows_sum_their_printers_and_count_a_user_once_per_site(report):
    umu = next(r for r in report.groupings["site"] if r["site"] == "umu")
    assert umu["printing_h"] == 4 and umu["printers"] == 2 and umu["users"] == 1
    assert umu["jobs_started"] == 2 and umu["jobs_done"] == 1 and umu["jobs_failed"] == 1
    assert umu["filament_m_est"] == 1.5  # completed jobs only
    assert umu["util_period"] == 4 / umu["in_network_h"]


def test_network_counts_distinct_users_per_site_and_organisations_served(report):
    network = report.groupings["network"][0]
    assert network["users"] == 2 and network["organisations_served"] == 2  # Umeå + the ghost site's 'unknown'
    assert network["printers"] == 4  # b1 has no data but is in the inventory


def test_unlisted_printer_unknown_site_and_silent_printer_each_get_a_note(report):
    codes = {(n.code, n.args.get("printer") or n.args.get("site")) for n in report.notes}
    assert ("unknown_site", "ghost") in codes
    assert ("not_in_inventory", "ghost/g1") in codes
    assert ("never_reported", "lul/b1") in codes
    assert ("first_data", "ghost/g1") in codes
    assert ("gaps", "ghost/g1") in codes
    county = {r["county"] for r in report.groupings["county"]}
    assert county == {"Västerbotten", "Norrbotten", "unknown"}


def test_a_job_still_running_at_the_end_is_listed_as_not_finished(report):
    outcomes = sorted((j.printer, j.outcome) for j in report.jobs)
    assert outcomes == [("a1", "done"), ("a2", "failed"), ("g1", "running")]


def test_a_running_period_is_counted_up_to_now_and_says_so():
    now = PERIOD.start_ms + 10 * 24 * H
    report = build(RawData(PERIOD.start_ms, PERIOD.end_ms), INVENTORY, PERIOD, now)
    assert report.as_of_ms == now
    assert {n.code for n in report.notes} >= {"running_period", "no_data"}
    assert report.groupings["network"][0]["not_in_network_h"] == 3 * 10 * 24


def test_empty_inventory_and_empty_database_still_give_a_report_with_a_note(tmp_path):
    empty = inventory_mod.from_dict({})
    report = build(RawData(PERIOD.start_ms, PERIOD.end_ms), empty, PERIOD, NOW)
    assert {n.code for n in report.notes} == {"no_data", "no_printers"}
    paths = write_files(report, ["csv", "xlsx", "pdf"], tmp_path, "en")
    assert all(p.stat().st_size > 0 for p in paths)


@pytest.mark.parametrize("lang", labels.LANGS)
def test_csv_and_xlsx_hold_the_same_figures(report, tmp_path, lang):
    write_files(report, ["xlsx", "csv"], tmp_path, lang)
    wb = openpyxl.load_workbook(tmp_path / f"printfarm-report-2026-07-{lang}.xlsx")
    sheet = wb[labels.SHEETS[lang]["site"]]
    assert sheet.freeze_panes == "A2"
    with (tmp_path / f"printfarm-report-2026-07-{lang}-site.csv").open(encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    for xrow, crow in zip(sheet.iter_rows(min_row=2, values_only=True), rows[1:]):
        numbers = [(x, c) for x, c in zip(xrow, crow) if isinstance(x, (int, float))]
        assert numbers and all(float(c) == x for x, c in numbers)


def test_every_label_exists_in_both_languages():
    for table in (labels.COLUMNS, labels.SHEETS, labels.OUTCOMES, labels.TEXT, labels.NOTES):
        assert set(table["en"]) == set(table["sv"])
    assert len(labels.DEFINITIONS["en"]) == len(labels.DEFINITIONS["sv"])
    every_column = set(aggregate.VALUE_COLUMNS) | {c for cols in aggregate.KEY_COLUMNS.values() for c in cols}
    assert every_column <= set(labels.COLUMNS["en"])


def test_job_times_are_local_wall_clock(report):
    first = report.jobs[0]
    assert first.started == datetime(2026, 7, 1, 1, 0)  # 23:00 UTC the day before + 2 h CEST
    assert first.started.tzinfo is None and datetime.fromtimestamp(0, timezone.utc)


def test_text_that_looks_like_a_formula_or_link_stays_text_in_the_xlsx(tmp_path):
    data = raw()
    s = PERIOD.start_ms
    data.jobs.append(JobEvent(s + 5 * H, "umu", "a1", "started", "=HYPERLINK(\"http://x\")", "http://evil"))
    write_files(build(data, INVENTORY, PERIOD, NOW), ["xlsx"], tmp_path, "en")
    jobs = openpyxl.load_workbook(tmp_path / "printfarm-report-2026-07-en.xlsx")["Jobs"]
    values = {c.value for row in jobs.iter_rows() for c in row}
    assert "=HYPERLINK(\"http://x\")" in values and "http://evil" in values
    assert not any(c.hyperlink for row in jobs.iter_rows() for c in row)


FORMULAS = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]


def test_text_that_a_spreadsheet_would_run_as_a_formula_is_neutralised_in_the_csv(tmp_path):
    data = raw()
    s = PERIOD.start_ms
    for i, text in enumerate(FORMULAS):
        data.jobs.append(JobEvent(s + (5 + i) * H, "umu", "a1", "failed", text, text, 60.0, None, None, text,
                                  s + (5 + i) * H - 60_000))
    write_files(build(data, INVENTORY, PERIOD, NOW), ["csv"], tmp_path, "en")
    cells = [c for path in tmp_path.glob("*.csv") for row in csv.reader(path.open(encoding="utf-8-sig", newline=""))
             for c in row]
    for text in FORMULAS:
        assert cells.count("'" + plain(text)) >= 3, text  # file, user and error of its job (a tab is a space)
    assert not [c for c in cells if c.lstrip().startswith(("=", "+", "@", "\t", "\r"))]
    assert all(float(c) <= 0 for c in cells if c.startswith("-"))  # only numbers may begin with "-"


def test_a_large_xlsx_written_by_a_forked_child_equals_one_written_in_process(report, tmp_path, monkeypatch):
    from server.reports import generate

    write_files(report, ["xlsx"], tmp_path / "inline", "en")
    monkeypatch.setattr(generate, "FORK_XLSX_ABOVE", 1)
    paths = write_files(report, ["xlsx", "csv"], tmp_path / "forked", "en")
    assert paths[0].name == "printfarm-report-2026-07-en.xlsx"
    read = lambda p: [[list(r) for r in ws.iter_rows(values_only=True)] for ws in openpyxl.load_workbook(p)][1:]
    assert read(paths[0]) == read(tmp_path / "inline" / paths[0].name)


def test_pdf_shows_site_names_percent_axes_and_one_line_for_notes_that_repeat(tmp_path):
    import subprocess

    named = inventory_mod.from_dict({
        "sites": {"umu": {"name": "Umeå Makerspace", "organisation": "Umeå universitet", "county": "Västerbotten"},
                  "lul": {"name": "LTU Fab Lab", "organisation": "LTU", "county": "Norrbotten"}},
        "printers": {"a1": {"site": "umu"}, "a2": {"site": "umu"}, "b1": {"site": "lul"}, "b2": {"site": "lul"},
                     "b3": {"site": "lul"}},
    })
    report = build(raw(), named, PERIOD, NOW)
    assert sum(n.code == "never_reported" for n in report.notes) == 3  # b1, b2, b3
    path = write_files(report, ["pdf"], tmp_path, "en")[0]
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    flat = " ".join(text.split())
    assert "3 printers have never sent data up to the end of the period: lul/b1, lul/b2, lul/b3." in flat
    assert "Printer lul/b1 has never sent data" not in flat  # collapsed, not listed one by one
    assert "Umeå Makerspace" in text and "LTU Fab Lab" in text  # charts and tables name sites
    assert " %" in text and "0 %" in text  # percentage axes in percent


def test_collapsed_notes_keep_single_notes_as_they_are_and_cut_long_lists():
    from server.reports.build import Note

    notes = [Note("gaps", {"printer": f"s/p{i}", "hours": 1.5, "gaps": 1}) for i in range(10)]
    notes.append(Note("silent", {"printer": "s/q"}))
    lines = labels.collapsed_notes(notes, "sv")
    assert lines[0].startswith("10 skrivare har timmar utan data, sammanlagt 15.00 timmar")
    assert "… och 2 till" in lines[0] and lines[1] == labels.note_text(notes[-1], "sv")


def test_the_previous_period_is_the_same_kind_just_before():
    assert periods.before(periods.parse("2026-01")).label == "2025-12"
    assert periods.before(periods.parse("2026-Q1")).label == "2025-Q4"
    assert periods.before(periods.parse("2026")).label == "2025"
    span = periods.parse("2026-07-01..2026-07-10")
    before = periods.before(span)
    assert before.label == "2026-06-21_2026-06-30" and before.end_ms == span.start_ms
    day = periods.parse("2026-11-30..2026-11-30")
    assert day.label == "2026-11-30" and periods.before(day).label == "2026-11-29"  # a day is its date


def test_every_customer_view_label_exists_in_both_languages():
    from server.reports import customer_rows, key_figures

    for table in (labels.KINDS, labels.NOTES_MANY):
        assert set(table["en"]) == set(table["sv"])
    columns = set(customer_rows.CUSTOMER_COLUMNS + customer_rows.KIND_COLUMNS + customer_rows.COUNTY_COLUMNS
                  + customer_rows.ENTERPRISE_COLUMNS + key_figures.FIGURES)
    assert columns <= set(labels.COLUMNS["en"]) and columns <= set(labels.COLUMNS["sv"])


def test_dollar_signs_in_names_are_drawn_as_dollars_not_mathtext_and_the_pdf_is_made(tmp_path):
    """"$$" (or "$\\frac{") in an inventory name stopped the whole PDF with a mathtext parse error."""
    import subprocess

    named = inventory_mod.from_dict({
        "sites": {"umu": {"name": "Cash $$ Lab $\\frac{1}{", "organisation": "Umeå $ för $", "county": "Västerbotten"},
                  "lul": {"name": "LTU $x^$ Lab", "organisation": "LTU", "county": "Norrbotten"}},
        "printers": {"a1": {"site": "umu"}, "a2": {"site": "umu"}, "b1": {"site": "lul"}},
    })
    paths = write_files(build(raw(), named, PERIOD, NOW), ["pdf", "summary"], tmp_path, "en")
    text = subprocess.run(["pdftotext", "-layout", str(paths[0]), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "Cash $$ Lab" in text and "LTU $x^$ Lab" in text
    assert all(p.stat().st_size > 1000 for p in paths)


HIDDEN = "\x1b]0;pwned\x07cube\x9b2J\u202eedoc\n.gcode"


def test_printer_text_with_escapes_or_overrides_reaches_no_spreadsheet_cell_as_it_was(tmp_path):
    """Points stored before the collector cleaned printer text are made plain in the report too."""
    data = raw()
    s = PERIOD.start_ms
    data.jobs.append(JobEvent(s + 5 * H, "umu", "a1", "failed", HIDDEN, HIDDEN, 60.0, None, None, HIDDEN,
                              s + 5 * H - 60_000))
    write_files(build(data, INVENTORY, PERIOD, NOW), ["csv", "xlsx"], tmp_path, "en")
    jobs = openpyxl.load_workbook(tmp_path / "printfarm-report-2026-07-en.xlsx")["Jobs"]
    cells = [c.value for row in jobs.iter_rows() for c in row if isinstance(c.value, str)]
    cells += [c for path in tmp_path.glob("*.csv") for row in csv.reader(path.open(encoding="utf-8-sig", newline=""))
              for c in row]
    assert sum(c == plain(HIDDEN) for c in cells) == 6  # file, user, error: in the XLSX and in the CSV
    assert not [c for c in cells if not c.isprintable()]


def test_a_large_reports_pdf_drawn_by_a_forked_child_equals_one_drawn_in_process(report, tmp_path, monkeypatch):
    import subprocess

    from server.reports import generate, pdf

    text = lambda p: subprocess.run(["pdftotext", "-layout", str(p), "-"], capture_output=True, text=True,
                                    check=True).stdout
    inline = write_files(report, ["pdf", "summary"], tmp_path / "inline", "en")
    monkeypatch.setattr(generate, "FORK_XLSX_ABOVE", 1)
    paths = write_files(report, ["pdf", "csv", "summary"], tmp_path / "forked", "en")
    assert [p.suffix for p in paths][:2] == [".pdf", ".csv"] and paths[-1].name == inline[1].name
    assert [text(p) for p in (paths[0], paths[-1])] == [text(p) for p in inline]
    monkeypatch.setattr(pdf, "write", lambda *args: 1 / 0)
    with pytest.raises(RuntimeError, match="report-pdf failed"):
        write_files(report, ["pdf", "csv"], tmp_path / "failed", "en")

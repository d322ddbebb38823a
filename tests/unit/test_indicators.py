"""The indicators' rules one by one: size classes and registration in the inventory, the project and
its targets, research organisations, the three-year line of "new", counts in words, chart axes."""

from __future__ import annotations

import logging
from datetime import date, datetime, timezone

import matplotlib
import pytest

from common.configkit import ConfigError
from server import inventory as inventory_mod
from server.reports import indicator_labels, periods
from server.reports.build import build
from server.reports.indicators import is_new
from server.reports.query import JobEvent, RawData

matplotlib.use("Agg")
TZ = "Europe/Stockholm"


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


# --- new: did not exist three years before it was first served ---------------------------------


@pytest.mark.parametrize("registered, first_job, new", [
    (date(2023, 8, 20), "2026-07-20T09:00", True),   # 2 years 11 months before
    (date(2022, 6, 9), "2025-06-10T09:00", False),   # 3 years and 1 day before
    (date(2022, 6, 10), "2025-06-10T09:00", False),  # exactly 3 years: it existed that day
    (date(2022, 6, 11), "2025-06-10T09:00", True),   # 3 years less a day
    (date(2021, 2, 28), "2024-02-29T09:00", False),  # a leap day's "three years before" is 28 February
    (date(2021, 3, 1), "2024-02-29T09:00", True),
    (date(2022, 6, 10), "2025-06-09T22:30", False),  # 00:30 on 10 June in Stockholm: the local date counts
    (2019, "2025-06-10T09:00", False), (2023, "2025-06-10T09:00", True),
    (2022, "2025-06-10T09:00", None),  # the year holds the day three years before: cannot say
    (None, "2025-06-10T09:00", None),
])
def test_new_means_registered_less_than_three_years_before_the_first_job(registered, first_job, new):
    assert is_new(registered, ms(first_job), TZ) is new


# --- the inventory ---------------------------------------------------------------------------------


def company(**fields) -> dict:
    return {"customers": {"x": {"name": "X AB", "kind": "company", "county": "Örebro", **fields}}}


@pytest.mark.parametrize("size", ["micro", "small", "medium", "large"])
def test_the_four_size_classes_load(size):
    assert inventory_mod.from_dict(company(size=size, registered=2020)).customers["x"].size == size


def test_the_old_small_medium_loads_with_a_line_on_how_to_refine_it(caplog):
    with caplog.at_level(logging.WARNING, logger="server.inventory"):
        inv = inventory_mod.from_dict(company(size="small_medium", registered="2020-01-01"), "fleet.toml")
    assert inv.customers["x"].size == "small_medium"
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("fleet.toml: customers.x.size: 'small_medium' is the old class") and
               "fix: set size = 'micro' (fewer than 10 staff), 'small' (fewer than 50), 'medium'" in line
               for line in lines), lines


@pytest.mark.parametrize("value, expected", [(date(2021, 3, 15), date(2021, 3, 15)), ("2021-03-15", date(2021, 3, 15)),
                                             (2021, 2021)])
def test_registration_is_a_date_or_a_year(value, expected):
    assert inventory_mod.from_dict(company(size="small", registered=value)).customers["x"].registered == expected


def test_a_company_without_a_registration_loads_and_says_it_cannot_count_as_new(caplog):
    with caplog.at_level(logging.WARNING, logger="server.inventory"):
        inventory_mod.from_dict(company(size="small"), "fleet.toml")
    assert any("customers.x.registered: is missing" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("customer, key, fix", [
    ({"name": "U", "kind": "academia", "county": "Örebro", "registered": 1477}, "customers.x.registered",
     "only companies"),
    ({"name": "X", "kind": "company", "size": "small", "county": "Örebro", "registered": 21}, "customers.x.registered",
     "YYYY-MM-DD"),
    ({"name": "X", "kind": "company", "size": "sme", "county": "Örebro"}, "customers.x.size", "'micro'"),
])
def test_bad_size_or_registration_names_the_key_and_the_fix(customer, key, fix):
    with pytest.raises(ConfigError) as err:
        inventory_mod.from_dict({"customers": {"x": customer}}, "fleet.toml")
    assert err.value.key == key and fix in err.value.fix, err.value.line()


def test_two_entries_of_one_enterprise_must_agree_on_its_size():
    same = {"kind": "company", "county": "Örebro", "org_number": "556677-8899", "registered": 2001}
    with pytest.raises(ConfigError) as err:
        inventory_mod.from_dict({"customers": {"a": {"name": "A", "size": "small", **same},
                                               "b": {"name": "A, Västerås", "size": "medium", **same}}})
    assert err.value.key == "customers.b.size" and "customers.a" in err.value.problem


def test_the_project_has_a_period_and_targets_by_indicator_code():
    inv = inventory_mod.from_dict({"project": {"start": date(2025, 1, 1), "end": date(2026, 12, 31),
                                               "targets": {"RCO01": 40, "RCO10": 12}}})
    low, high = inv.project.bounds_ms(TZ)
    assert (low, high) == (ms("2024-12-31T23:00"), ms("2026-12-31T23:00"))  # local midnights, the end day included
    assert inv.project.targets == {"RCO01": 40, "RCO10": 12}


@pytest.mark.parametrize("project, key, fix", [
    ({"start": "2025-01-01", "end": "2026-12-31", "targets": {"CO26": 3}}, "project.targets.CO26", "write RCO10"),
    ({"start": "2025-01-01", "end": "2026-12-31", "targets": {"RCO99": 3}}, "project.targets.RCO99", "RCO01, RCO04"),
    ({"start": "2025-01-01", "end": "2024-12-31"}, "project.end", "last day"),
    ({"start": "2025-01-01"}, "project.end", "add this required key"),
])
def test_project_errors_name_the_key_and_the_fix(project, key, fix):
    with pytest.raises(ConfigError) as err:
        inventory_mod.from_dict({"project": project}, "fleet.toml")
    assert err.value.key == key and fix in err.value.fix, err.value.line()


def sites(**kinds) -> dict:
    return {"sites": {site: {"organisation": org, "county": "Örebro", **({"organisation_kind": kind} if kind else {})}
                      for site, (org, kind) in kinds.items()}}


def test_a_research_organisation_said_on_one_site_covers_all_its_sites():
    inv = inventory_mod.from_dict(sites(a=("Örebro universitet", "research"), b=("Örebro universitet", ""),
                                        c=("Science Park", "")))
    assert inv.research_sites() == {"a", "b"}


def test_one_organisation_with_two_kinds_or_an_unknown_kind_is_refused():
    with pytest.raises(ConfigError) as err:
        inventory_mod.from_dict(sites(a=("Örebro universitet", "research"), b=("Örebro universitet", "public")))
    assert err.value.key == "sites.b.organisation_kind" and "same organisation_kind" in err.value.fix
    with pytest.raises(ConfigError) as err:
        inventory_mod.from_dict(sites(a=("Örebro universitet", "university")))
    assert err.value.key == "sites.a.organisation_kind" and "'research'" in err.value.fix


# --- words and charts --------------------------------------------------------------------------------


@pytest.mark.parametrize("n, word, lang, text", [
    (1, "large", "sv", "1 stort"), (2, "large", "sv", "2 stora"), (1, "small", "sv", "1 litet"),
    (0, "small", "sv", "0 små"), (1, "medium", "sv", "1 medelstort"), (3, "micro", "sv", "3 mikroföretag"),
    (1, "enterprise", "en", "1 enterprise"), (2, "enterprise", "en", "2 enterprises"),
    (1200, "enterprise", "sv", "1\u00a0200 företag"),
])
def test_a_count_takes_its_noun_in_the_right_number(n, word, lang, text):
    assert indicator_labels.count(n, word, lang) == text


PERIOD = periods.parse("2026-07")
LONG = "Mälardalens universitet, Prototyplabbet för additiv tillverkning i Västerås"


def one_job_report():
    inv = inventory_mod.from_dict({"sites": {"mdu": {"name": LONG, "organisation": "MDU", "county": "Västmanland"}},
                                   "printers": {"p1": {"site": "mdu"}}})
    s = PERIOD.start_ms
    data = RawData(PERIOD.start_ms, PERIOD.end_ms)
    data.jobs = [JobEvent(s + 3_600_000, "mdu", "p1", "started", "a.gcode"),
                 JobEvent(s + 7_200_000, "mdu", "p1", "done", "a.gcode", job_started=s + 3_600_000)]
    return build(data, inv, PERIOD, PERIOD.end_ms + 1)


def test_the_job_chart_counts_in_whole_jobs_and_shows_whole_site_names():
    from server.reports import pdf
    fig = pdf._charts_page(one_job_report(), "en")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in (fig.axes[0], fig.axes[2]):  # utilisation and jobs per site
        labels = [t for t in ax.get_yticklabels() if t.get_text()]
        assert [t.get_text().replace("\n", " ") for t in labels] == [LONG]
        assert all(t.get_window_extent(renderer).x0 >= 0 for t in labels)  # inside the page, not cut
    ticks = [x for x in fig.axes[2].get_xticks() if 0 <= x <= 1]
    assert ticks == [0, 1]  # one job: no 0.5 steps

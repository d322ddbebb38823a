"""Report periods in local calendar time."""

from datetime import datetime, timezone

import pytest

from server.reports import periods


def utc(text):
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


def test_a_quarter_starts_and_ends_at_local_midnight_in_stockholm():
    q3 = periods.parse("2026-Q3")
    assert (q3.start_ms, q3.end_ms) == (utc("2026-06-30T22:00"), utc("2026-09-30T22:00"))
    assert q3.label == "2026-Q3" and q3.hours == 92 * 24


def test_a_quarter_with_the_end_of_summer_time_has_one_hour_more():
    assert periods.parse("2026-Q4").hours == 92 * 24 + 1
    assert periods.parse("2026-Q1").hours == 90 * 24 - 1


def test_month_year_and_other_time_zone():
    assert periods.parse("2026-02").hours == 28 * 24
    assert periods.parse("2026").hours == 365 * 24
    assert periods.parse("2026-07", tz="UTC").start_ms == utc("2026-07-01T00:00")


def test_a_date_range_includes_its_last_day_and_a_time_range_excludes_its_end():
    days = periods.parse("2026-07-01..2026-07-02")
    assert days.hours == 48 and days.start_ms == utc("2026-06-30T22:00")
    hours = periods.parse("2026-07-01T08:00..2026-07-01T17:00")
    assert hours.hours == 9 and hours.start_ms == utc("2026-07-01T06:00")


@pytest.mark.parametrize("text", ["2026-13", "2026-Q5", "last month", "2026-07-02..2026-07-01", "2026-07-xx..2026-08-01"])
def test_a_bad_period_names_what_is_accepted(text):
    with pytest.raises(periods.PeriodError):
        periods.parse(text)


def test_an_unknown_time_zone_is_a_clear_error():
    with pytest.raises(periods.PeriodError, match="Europe/Stockholm"):
        periods.parse("2026-07", tz="Mars/Olympus")


def test_months_of_a_quarter_and_of_an_odd_range_are_clipped():
    assert [m.label for m in periods.months(periods.parse("2026-Q3"))] == ["2026-07", "2026-08", "2026-09"]
    parts = periods.months(periods.parse("2026-07-15..2026-08-10"))
    assert [m.label for m in parts] == ["2026-07", "2026-08"]
    assert parts[0].start_ms == periods.parse("2026-07-15..2026-08-10").start_ms
    assert sum(p.end_ms - p.start_ms for p in parts) == 27 * 86_400_000


def test_previous_period_for_scheduled_reports():
    now = utc("2026-10-01T04:00")  # 06:00 local on 1 October
    assert periods.previous("month", now).label == "2026-09"
    assert periods.previous("quarter", now).label == "2026-Q3"
    assert periods.previous("year", now).label == "2025"
    assert periods.previous("quarter", utc("2026-02-01T05:00")).label == "2025-Q4"
    assert periods.previous("month", utc("2026-01-01T05:00")).label == "2025-12"

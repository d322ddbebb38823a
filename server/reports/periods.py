"""Report periods: a month, quarter, year or any from–to, as UTC ms bounds of local calendar days.

Periods are half-open, ``[start, end)``, and start at local midnight in the report's time zone
(Europe/Stockholm by default), so a quarter that crosses a DST change has 2,209 or 2,207 hours.

Accepted spellings: ``2026-07`` (month), ``2026-Q3`` (quarter), ``2026`` (year),
``2026-07-01..2026-08-15`` (from–to; a date as the end includes that whole day),
``2026-07-01T08:00..2026-07-01T17:00`` (times: the end is exclusive).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TZ = "Europe/Stockholm"

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")


class PeriodError(ValueError):
    pass


@dataclass(frozen=True)
class Period:
    start_ms: int
    end_ms: int
    label: str  # e.g. "2026-Q3", used in file names
    tz: str = DEFAULT_TZ

    @property
    def hours(self) -> float:
        return (self.end_ms - self.start_ms) / 3_600_000

    def local(self, ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, zone(self.tz))


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PeriodError(f"unknown time zone {name!r}: use an IANA name like 'Europe/Stockholm'") from None


def _midnight_ms(day: date, tz: ZoneInfo) -> int:
    return int(datetime.combine(day, time(0), tz).timestamp() * 1000)


def _month_start(year: int, month: int) -> date:
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return date(year, month, 1)


def _span(first: date, after: date, label: str, tz_name: str) -> Period:
    tz = zone(tz_name)
    return Period(_midnight_ms(first, tz), _midnight_ms(after, tz), label, tz_name)


def month(year: int, month_no: int, tz: str = DEFAULT_TZ) -> Period:
    return _span(_month_start(year, month_no), _month_start(year, month_no + 1), f"{year}-{month_no:02d}", tz)


def quarter(year: int, q: int, tz: str = DEFAULT_TZ) -> Period:
    first = 3 * (q - 1) + 1
    return _span(_month_start(year, first), _month_start(year, first + 3), f"{year}-Q{q}", tz)


def year(y: int, tz: str = DEFAULT_TZ) -> Period:
    return _span(date(y, 1, 1), date(y + 1, 1, 1), str(y), tz)


def parse(text: str, tz: str = DEFAULT_TZ) -> Period:
    """A Period from its spelling; PeriodError says what is accepted."""
    text = text.strip()
    if m := _MONTH.match(text):
        if not 1 <= int(m.group(2)) <= 12:
            raise PeriodError(f"{text!r}: month must be 01-12")
        return month(int(m.group(1)), int(m.group(2)), tz)
    if m := _QUARTER.match(text):
        return quarter(int(m.group(1)), int(m.group(2)), tz)
    if m := _YEAR.match(text):
        return year(int(m.group(1)), tz)
    if ".." in text:
        return _range(text, tz)
    raise PeriodError(f"{text!r} is not a period: use 2026-07, 2026-Q3, 2026 or 2026-07-01..2026-08-15")


def _range(text: str, tz_name: str) -> Period:
    tz = zone(tz_name)
    first, last = (part.strip() for part in text.split("..", 1))
    start = _instant(first, tz, end=False)
    end = _instant(last, tz, end=True)
    if end <= start:
        raise PeriodError(f"{text!r}: the end must be after the start")
    label = first if first == last and "T" not in first else f"{first}_{last}".replace(":", "")
    return Period(start, end, label, tz_name)  # one whole day: just the date


def _instant(text: str, tz: ZoneInfo, end: bool) -> int:
    try:
        if "T" in text or " " in text:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=tz)
            return int(moment.timestamp() * 1000)
        day = date.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"{text!r} is not a date (YYYY-MM-DD) or time (YYYY-MM-DDTHH:MM)") from None
    return _midnight_ms(day + timedelta(days=1) if end else day, tz)


def months(period: Period) -> list[Period]:
    """The calendar months that overlap ``period``, each clipped to it (for the monthly trend)."""
    first = period.local(period.start_ms).date().replace(day=1)
    out = []
    while True:
        m = month(first.year, first.month, period.tz)
        if m.start_ms >= period.end_ms:
            return out
        out.append(Period(max(m.start_ms, period.start_ms), min(m.end_ms, period.end_ms), m.label, period.tz))
        first = _month_start(first.year, first.month + 1)


def previous(kind: str, now_ms: int, tz: str = DEFAULT_TZ) -> Period:
    """The last complete month, quarter or year before ``now_ms`` (for scheduled reports)."""
    today = datetime.fromtimestamp(now_ms / 1000, zone(tz)).date()
    if kind == "month":
        last = _month_start(today.year, today.month - 1)
        return month(last.year, last.month, tz)
    if kind == "quarter":
        q = (today.month - 1) // 3  # the current quarter's index 0-3; previous is q (1-based) or Q4
        return quarter(today.year, q, tz) if q else quarter(today.year - 1, 4, tz)
    if kind == "year":
        return year(today.year - 1, tz)
    raise PeriodError(f"{kind!r}: use month, quarter or year")


def before(period: Period) -> Period:
    """The period just before ``period``, of the same kind: the previous month, quarter or year, or
    for a from–to range the range of the same length that ends where it starts."""
    label, tz = period.label, period.tz
    if m := _MONTH.match(label):
        first = _month_start(int(m.group(1)), int(m.group(2)) - 1)
        return month(first.year, first.month, tz)
    if m := _QUARTER.match(label):
        y, q = int(m.group(1)), int(m.group(2))
        return quarter(y, q - 1, tz) if q > 1 else quarter(y - 1, 4, tz)
    if m := _YEAR.match(label):
        return year(int(m.group(1)) - 1, tz)
    start = period.start_ms - (period.end_ms - period.start_ms)
    return Period(start, period.start_ms, _range_label(start, period.start_ms, tz), tz)


def _range_label(start_ms: int, end_ms: int, tz_name: str) -> str:
    tz = zone(tz_name)
    first, after = (datetime.fromtimestamp(ms / 1000, tz) for ms in (start_ms, end_ms))
    if first.time() == time(0) and after.time() == time(0):
        last = after.date() - timedelta(days=1)
        return str(last) if last == first.date() else f"{first.date()}_{last}"
    return f"{first:%Y-%m-%dT%H%M}_{after:%Y-%m-%dT%H%M}"

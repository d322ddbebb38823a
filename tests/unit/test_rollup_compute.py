"""Hourly rollups from a hand-made database answer: the report's own segments, cut into hours."""

from hypothesis import given, settings
from hypothesis import strategies as st

from server import inventory as inventory_mod
from server.reports import accounting as acc
from server.reports import periods
from server.reports.accounting import StatePoint, Timeline
from server.reports.build import build
from server.reports.query import RawData
from server.rollups.compute import compute

H = 3_600_000
START = periods.parse("2026-07").start_ms  # on a UTC hour
INVENTORY = inventory_mod.from_dict({
    "sites": {"umu": {"organisation": "Umeå universitet", "county": "Västerbotten"}},
    "printers": {"a1": {"site": "umu"}, "never": {"site": "umu"}},
})


class FakeReader:
    def __init__(self, data: RawData):
        self.data = data

    def fetch(self, start, end, now):
        assert (start, end) == (self.data.start_ms, self.data.end_ms)
        return self.data


def data(start=START, end=START + 6 * H, **timelines) -> RawData:
    raw = RawData(start, end)
    raw.timelines.update({("umu", k) if k != "x1" else ("makers", k): tl for k, tl in timelines.items()})
    return raw


def test_each_hour_gets_the_milliseconds_of_each_state_and_the_printers_tags():
    tl = Timeline(initial=StatePoint(START - H, "idle"), continues=True,
                  points=[StatePoint(START + H + 15 * 60_000, "printing"), StatePoint(START + 3 * H, "idle")])
    rows = compute(FakeReader(data(a1=tl)), INVENTORY, START, START + 6 * H, START + 10 * H).rows
    assert [r.hour for r in rows] == [START + i * H for i in range(6)]
    assert [r.ms[acc.PRINTING] for r in rows] == [0, 45 * 60_000, H, 0, 0, 0]
    assert rows[1].ms[acc.IDLE] == 15 * 60_000
    assert dict(rows[0].tags) == {"county": "Västerbotten", "organisation": "Umeå universitet", "printer": "a1",
                                  "site": "umu"}


def test_hours_before_a_printers_first_data_have_no_point_and_an_unlisted_printer_is_unknown():
    tl = Timeline(points=[StatePoint(START + 2 * H + 1000, "idle", session_start=True)], continues=True)
    rows = compute(FakeReader(data(x1=tl)), INVENTORY, START, START + 6 * H, START + 10 * H).rows
    assert [r.hour for r in rows] == [START + i * H for i in range(2, 6)]
    assert rows[0].ms[acc.NOT_IN_NETWORK] == 1000 and acc.in_network(rows[0].ms) == H - 1000
    assert dict(rows[0].tags)["organisation"] == "unknown"  # the listed printer 'never' has no rows at all


def test_the_hour_under_way_is_counted_up_to_now():
    tl = Timeline(initial=StatePoint(START - H, "printing"), continues=True)
    raw = data(end=START + 2 * H, a1=tl)
    rows = compute(FakeReader(raw), INVENTORY, START, START + 2 * H, START + H + 600_000).rows
    assert [(r.hour, r.ms[acc.PRINTING]) for r in rows] == [(START, H), (START + H, 600_000)]


def test_a_split_adds_a_dimension_and_its_parts_sum_to_the_printer():
    tl = Timeline(initial=StatePoint(START - H, "printing"), continues=True, points=[StatePoint(START + H, "idle")])

    cut = START + 30 * 60_000

    def by_half_hour(key, segs, raw):  # e.g. the customer of the job under way
        return [({"customer": "early"}, [(a, min(b, cut), c) for a, b, c in segs if a < cut]),
                ({"customer": "late"}, [(max(a, cut), b, c) for a, b, c in segs if b > cut])]
    rows = compute(FakeReader(data(end=START + 2 * H, a1=tl)), INVENTORY, START, START + 2 * H, START + 9 * H,
                   split=by_half_hour).rows
    first_hour = {dict(r.tags)["customer"]: r.ms[acc.PRINTING] for r in rows if r.hour == START}
    assert first_hour == {"early": 30 * 60_000, "late": 30 * 60_000}
    assert [dict(r.tags)["customer"] for r in rows if r.hour == START + H] == ["late"]


POINTS = st.lists(st.tuples(st.integers(-5 * H, 30 * H), st.sampled_from(sorted(acc.STATE_CATEGORY)), st.booleans()),
                  max_size=25)


@settings(max_examples=200, deadline=None)
@given(POINTS, st.integers(-5 * H, 40 * H), st.booleans(), st.integers(0, 3 * H))
def test_the_hours_sum_to_what_the_report_counts_for_the_period(raw, last, continues, now_after):
    """The rollups of a period, summed, are the report's figures of it, state by state."""
    start, end = START, START + 24 * H
    pts = sorted({START + ts: StatePoint(START + ts, s, b) for ts, s, b in raw}.values(), key=lambda p: p.ts)
    before = [p for p in pts if p.ts < start]
    inside = [p for p in pts if start <= p.ts < end]
    tl = Timeline(initial=before[-1] if before else None, points=inside, continues=continues,
                  last_data=START + last, last_data_before={p.ts: p.ts - 60_000 for p in inside if p.session_start})
    now = end + now_after - H  # sometimes the period is still running
    period = periods.Period(start, end, "test")
    report = build(data(start, end, a1=tl), INVENTORY, period, now)
    usage = next(u for u in report.usages if u.printer == "a1")
    rows = compute(FakeReader(data(start, end, a1=tl)), INVENTORY, start, end, now).rows
    for cat in acc.CATEGORIES:
        if cat != acc.NOT_IN_NETWORK:  # hours wholly before the first data have no point
            assert sum(r.ms[cat] for r in rows) == usage.ms[cat], cat

"""Hourly rollups from a hand-made database answer: the report's own segments, cut into hours."""

from hypothesis import given, settings
from hypothesis import strategies as st

from server import inventory as inventory_mod
from server.reports import accounting as acc
from server.reports import periods
from server.reports.accounting import StatePoint, Timeline
from server.attribution import Attribution
from server.reports import customer_rows
from server.reports.build import build
from server.reports.query import JobEvent, RawData
from server.rollups import hours
from server.rollups.compute import by_hour, compute
from server.rollups.customers import CustomerSplit

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

    def by_half_hour(raw, start, until):  # e.g. the customer of the job under way
        return lambda key, segs: [({"customer": "early"}, [(a, min(b, cut), c) for a, b, c in segs if a < cut]),
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


# -- the customer dimension -------------------------------------------------------------------------

CUSTOMERS = inventory_mod.from_dict({
    "sites": {"umu": {"organisation": "Umeå universitet", "county": "Västerbotten"}},
    "printers": {"a1": {"site": "umu"}},
    "customers": {
        "kilsberg": {"name": "Kilsbergens Verktyg AB", "kind": "company", "size": "small_medium", "county": "Örebro"},
        "bergslag": {"name": "Bergslagens Gjuteri AB", "kind": "company", "size": "large", "county": "Västmanland"},
        "uni": {"name": "Umeå universitet", "kind": "academia", "county": "Västerbotten"},
        "priv-1": {"kind": "private", "county": "Örebro"}, "priv-2": {"kind": "private", "county": "Örebro"},
    },
    "attribution": {"accounts": [{"site": "umu", "user": "anna", "customer": "uni"}]},
})
M = 60_000


def jobs_of(*runs) -> list[JobEvent]:
    """(start, end or None, file, user) per job on a1, as start and end events; times in minutes."""
    out = []
    for start, end, file, user in runs:
        out.append(JobEvent(START + start * M, "umu", "a1", "started", file, user))
        if end is not None:
            out.append(JobEvent(START + end * M, "umu", "a1", "done", file, user, job_started=START + start * M))
    return sorted(out, key=lambda j: j.ts)


def opening_from(events: list[JobEvent]):
    """A stand-in for customers.opening_jobs over ``events``: the last start before ``start``
    unless a job ended after it."""
    def opening(start: int) -> list[JobEvent]:
        starts = [j for j in events if j.kind == "started" and j.ts < start]
        ends = [j for j in events if j.kind != "started" and j.ts < start]
        if not starts or (ends and ends[-1].ts > starts[-1].ts):
            return []
        return [starts[-1]]
    return opening


def printing(*spans) -> Timeline:
    """a1 idle but for these printing spans (minutes after START)."""
    pts = [StatePoint(START - H, "idle")]
    for a, b in spans:
        pts += [StatePoint(START + a * M, "printing"), StatePoint(START + b * M, "idle")]
    return Timeline(initial=pts[0], points=pts[1:], continues=True)


def roll(tl, events, start, end, opening=None):
    raw = data(start, end, a1=tl)
    raw.jobs = [j for j in events if start <= j.ts < end]
    split = CustomerSplit(CUSTOMERS, Attribution(CUSTOMERS, None), opening or opening_from(events))
    return compute(FakeReader(raw), CUSTOMERS, start, end, START + 100 * H, split).rows


def by_customer(rows) -> dict[tuple[int, str, str], dict]:
    return {(r.hour, dict(r.tags)["customer"], dict(r.tags)["customer_kind"]): r.ms for r in rows}


def test_printing_in_a_job_goes_to_its_customer_by_the_hour_and_the_rest_is_unattributed():
    events = jobs_of((30, 150, "bracket [kilsberg].gcode", "bo"), (200, 230, "x.gcode", "eva"))
    rows = by_customer(roll(printing((30, 150), (200, 230), (250, 260)), events, START, START + 5 * H))
    assert {k: v[acc.PRINTING] for k, v in rows.items() if v[acc.PRINTING]} == {
        (START, "kilsberg", "company_sme"): 30 * M, (START + H, "kilsberg", "company_sme"): H,
        (START + 2 * H, "kilsberg", "company_sme"): 30 * M,
        (START + 3 * H, "unattributed", "unattributed"): 30 * M,  # eva's job: no customer
        (START + 4 * H, "unattributed", "unattributed"): 10 * M,  # printing in no job
    }
    kilsberg = rows[(START + 2 * H, "kilsberg", "company_sme")]
    assert kilsberg[acc.IDLE] == 0 and acc.in_network(kilsberg) == 30 * M  # only its printing
    assert rows[(START + 2 * H, "unattributed", "unattributed")][acc.IDLE] == 30 * M
    for hour in range(5):  # the parts of each hour add up to the printer's hour
        assert sum(acc.in_network(ms) for (h, _, _), ms in rows.items() if h == START + hour * H) == H


def test_an_hour_inside_a_job_is_its_customers_by_the_start_event_before_it():
    """The trap: a span shorter than the job has none of its events; the start event comes from
    before the span. Without it (the positive control) the hour reads unattributed."""
    events = jobs_of((30, 200, "plate [bergslag].gcode", "carl"))
    tl = printing((30, 200))
    hour = START + H
    found = by_customer(roll(tl, events, hour, hour + H))
    assert found == {(hour, "bergslag", "company_large"): {**dict.fromkeys(acc.CATEGORIES, 0), acc.PRINTING: H}}
    blind = by_customer(roll(tl, events, hour, hour + H, opening=lambda start: []))
    assert list(blind) == [(hour, "unattributed", "unattributed")]
    # The job's last hour: its end event names its start; grouped with the start event before.
    last = by_customer(roll(tl, events, START + 3 * H, START + 4 * H))
    assert last[(START + 3 * H, "bergslag", "company_large")][acc.PRINTING] == 20 * M


def test_private_persons_share_one_tag_and_accounts_attribute_like_the_report():
    events = jobs_of((0, 30, "a [priv-1].gcode", "x"), (60, 90, "b [priv-2].gcode", "y"), (120, 150, "c.gcode", "anna"))
    rows = by_customer(roll(printing((0, 30), (60, 90), (120, 150)), events, START, START + 3 * H))
    assert {k for k, v in rows.items() if v[acc.PRINTING]} == {
        (START, "private", "private"), (START + H, "private", "private"), (START + 2 * H, "uni", "academia")}


RUNS = st.lists(st.tuples(st.integers(0, 23 * 60), st.integers(1, 600), st.sampled_from(
    ["[kilsberg]", "[bergslag]", "[uni]", "[priv-1]", ""]), st.booleans()), max_size=6)


@settings(max_examples=150, deadline=None)
@given(RUNS, st.sampled_from([1, 2, 3, 24]))
def test_hours_rolled_up_span_by_span_sum_to_the_reports_printing_hours_per_customer_kind(runs, span_hours):
    """However the day is cut into spans (each shorter than some jobs), the rollups summed per
    kind are the report's customer view of the day, and the parts add up to the printer."""
    runs = sorted(runs)
    spans, events = [], []
    for n, (start, length, tag, ended) in enumerate(runs):
        end = min(start + length, runs[n + 1][0] if n + 1 < len(runs) else 24 * 60)
        if end <= start:
            continue
        spans.append((start, end))
        events += jobs_of((start, end if ended else None, f"j{n} {tag}.gcode", "u"))
    tl = printing(*spans)
    start, end = START, START + 24 * H
    rows = [r for a in range(0, 24, span_hours) for r in roll(tl, events, START + a * H, START + (a + span_hours) * H)]
    raw = data(start, end, a1=tl)
    raw.jobs = events
    report = build(raw, CUSTOMERS, periods.Period(start, end, "test"), START + 100 * H)
    kinds = {row["kind"]: round(row["printing_h"] * H) for row in customer_rows.kinds(report.customers, CUSTOMERS)}
    summed = dict.fromkeys(kinds, 0)
    for r in rows:
        summed[dict(r.tags)["customer_kind"]] += r.ms[acc.PRINTING]
    assert summed == kinds
    assert sum(acc.in_network(r.ms) for r in rows) == 24 * H  # the whole day, every part counted once


SEGS = st.lists(st.tuples(st.integers(0, 30 * 60), st.integers(1, 300), st.sampled_from(acc.CATEGORIES)), max_size=12)


@settings(max_examples=200, deadline=None)
@given(SEGS, st.integers(1, 30 * 60))
def test_hours_of_a_sparse_part_are_those_of_every_window_that_has_time(raw, until_min):
    """by_hour looks only at the hours a part touches; it finds what totals_by_window finds in all."""
    until = START + until_min * M
    segs, at = [], START
    for gap, length, cat in raw:  # non-overlapping, as a split's parts are
        a = at + gap * M
        b = min(a + length * M, until)
        if a >= until:
            break
        segs.append((a, b, cat))
        at = b
    windows = hours.bounds(START, until)
    every = [(h, ms) for h, ms in zip(windows, acc.totals_by_window(segs, windows)) if sum(ms.values())]
    assert [(h, ms) for h, ms in by_hour(segs[::-1], windows) if sum(ms.values())] == every

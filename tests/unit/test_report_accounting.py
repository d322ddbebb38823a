"""Time in state from state changes: pure functions, no database."""

from hypothesis import given
from hypothesis import strategies as st

from server.reports import accounting as acc
from server.reports.accounting import StatePoint, Timeline

H = 3_600_000
S, E = 100 * H, 200 * H  # the period


def test_a_state_that_began_before_the_period_counts_only_inside_it():
    tl = Timeline(initial=StatePoint(90 * H, "printing"), points=[StatePoint(110 * H, "idle")], continues=True)
    ms = acc.totals(acc.segments(tl, S, E))
    assert ms[acc.PRINTING] == 10 * H and ms[acc.IDLE] == 90 * H and ms[acc.UNKNOWN] == 0


def test_finishing_and_cancelling_count_as_printing_paused_and_offline_states_separately():
    tl = Timeline(initial=StatePoint(0, "idle"), continues=True, points=[
        StatePoint(S, "printing"), StatePoint(S + H, "paused"), StatePoint(S + 2 * H, "finishing"),
        StatePoint(S + 3 * H, "cancelling"), StatePoint(S + 4 * H, "unreachable"), StatePoint(S + 5 * H, "offline"),
        StatePoint(S + 6 * H, "error"), StatePoint(S + 7 * H, "idle")])
    ms = acc.totals(acc.segments(tl, S, E))
    assert ms == {acc.PRINTING: 3 * H, acc.PAUSED: H, acc.OFFLINE: 2 * H, acc.ERROR: H, acc.IDLE: 93 * H,
                  acc.UNKNOWN: 0, acc.NOT_IN_NETWORK: 0}


def test_time_between_the_last_data_and_an_agent_restart_is_unknown_not_idle():
    restart = StatePoint(150 * H, "idle", session_start=True)
    tl = Timeline(initial=StatePoint(0, "idle"), points=[restart], last_data_before={restart.ts: 140 * H},
                  continues=True)
    assert acc.segments(tl, S, E) == [(S, 140 * H, acc.IDLE), (140 * H, 150 * H, acc.UNKNOWN), (150 * H, E, acc.IDLE)]


def test_a_restart_without_data_since_the_previous_state_point_is_unknown_from_that_point():
    restart = StatePoint(150 * H, "idle", session_start=True)
    tl = Timeline(initial=StatePoint(0, "idle"), points=[StatePoint(120 * H, "error"), restart], continues=True)
    ms = acc.totals(acc.segments(tl, S, E))
    assert ms[acc.ERROR] == 0 and ms[acc.UNKNOWN] == 30 * H and ms[acc.IDLE] == 20 * H + 50 * H


def test_a_printer_silent_before_the_period_end_is_unknown_after_its_last_data():
    tl = Timeline(initial=StatePoint(0, "idle"), last_data=180 * H, continues=False)
    assert acc.segments(tl, S, E) == [(S, 180 * H, acc.IDLE), (180 * H, E, acc.UNKNOWN)]


def test_a_printer_silent_since_before_the_period_is_unknown_all_period():
    tl = Timeline(initial=StatePoint(0, "idle"), last_data=50 * H)
    assert acc.segments(tl, S, E) == [(S, E, acc.UNKNOWN)]


def test_a_printer_added_mid_period_is_not_in_network_before_its_first_data():
    tl = Timeline(points=[StatePoint(160 * H, "idle", session_start=True)], continues=True)
    ms = acc.totals(acc.segments(tl, S, E))
    assert ms[acc.NOT_IN_NETWORK] == 60 * H and ms[acc.IDLE] == 40 * H
    assert acc.in_network(ms) == 40 * H


def test_a_printer_without_any_data_is_not_in_network_and_its_utilisation_is_not_a_number():
    ms = acc.totals(acc.segments(Timeline(), S, E))
    assert ms[acc.NOT_IN_NETWORK] == 100 * H
    assert acc.ratio(ms[acc.PRINTING], acc.in_network(ms)) is None


def test_available_hours_exclude_offline_and_unknown():
    ms = dict.fromkeys(acc.CATEGORIES, 0) | {acc.PRINTING: 10, acc.IDLE: 50, acc.OFFLINE: 20, acc.UNKNOWN: 15,
                                              acc.NOT_IN_NETWORK: 5}
    assert acc.in_network(ms) == 95 and acc.available(ms) == 60


def test_an_unknown_state_name_counts_as_unknown_rather_than_guessing():
    assert acc.category("exploded") == acc.UNKNOWN


@given(st.lists(st.tuples(st.integers(0, 300 * H), st.sampled_from(sorted(acc.STATE_CATEGORY)), st.booleans()),
                max_size=30),
       st.integers(0, 300 * H), st.booleans())
def test_segments_cover_the_period_exactly_without_overlap(raw, last, continues):
    points = sorted({ts: StatePoint(ts, s, b) for ts, s, b in raw}.values(), key=lambda p: p.ts)
    inside = [p for p in points if S <= p.ts < E]
    before = [p for p in points if p.ts < S]
    tl = Timeline(initial=before[-1] if before else None, points=inside, continues=continues,
                  last_data=last, last_data_before={p.ts: p.ts - H for p in inside if p.session_start})
    segs = acc.segments(tl, S, E)
    assert segs[0][0] == S and segs[-1][1] == E
    assert all(a < b for a, b, _ in segs)
    assert all(prev[1] == nxt[0] for prev, nxt in zip(segs, segs[1:]))
    assert sum(acc.totals(segs).values()) == E - S


@given(st.lists(st.integers(S, E), min_size=1, max_size=6, unique=True))
def test_totals_by_window_equal_clipped_totals(cuts):
    segs = [(S, 130 * H, acc.IDLE), (130 * H, 131 * H, acc.PRINTING), (131 * H, E, acc.UNKNOWN)]
    bounds = sorted(set(cuts) | {S, E})
    by_window = acc.totals_by_window(segs, bounds)
    for (low, high), got in zip(zip(bounds, bounds[1:]), by_window):
        assert got == acc.totals(segs, low, high)


@given(st.lists(st.tuples(st.integers(0, 300 * H), st.integers(0, 50 * H), st.sampled_from(acc.CATEGORIES)),
                max_size=20),
       st.lists(st.integers(0, 320 * H), min_size=1, max_size=6, unique=True), st.booleans())
def test_totals_by_window_equal_clipped_totals_for_any_segments_in_any_order(raw, cuts, shuffled):
    segs = [(a, a + length, cat) for a, length, cat in raw]
    segs = segs if shuffled else sorted(segs)
    bounds = sorted(cuts)
    for (low, high), got in zip(zip(bounds, bounds[1:]), acc.totals_by_window(segs, bounds)):
        assert got == acc.totals(segs, low, high)

"""The bookings overlap check (server/bookings.py) in one sweep: it refuses exactly the files that
checking every pair refuses, and names a pair that truly overlaps."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.configkit import ConfigError
from server.bookings import Booking, _check_overlaps

PATH = Path("bookings.csv")


def _clash(a: Booking, b: Booking) -> bool:
    """Every pair by the definition: another customer, overlapping times, one printer in common."""
    return (a.site == b.site and a.customer != b.customer and a.start_ms < b.end_ms and b.start_ms < a.end_ms
            and (not a.printer or not b.printer or a.printer == b.printer))


def _any_clash(bookings: list[Booking]) -> bool:
    return any(_clash(a, b) for i, a in enumerate(bookings) for b in bookings[i + 1:])


def _named_pair(err: ConfigError, bookings: list[Booking]) -> tuple[Booking, Booking]:
    by_line = {b.line: b for b in bookings}
    b = by_line[int(err.key.rsplit(" ", 1)[1])]
    a = by_line[int(str(err.problem).split("overlaps line ")[1].split()[0])]
    return a, b


@st.composite
def booking_files(draw) -> list[Booking]:
    rows = draw(st.lists(st.tuples(st.sampled_from(["lab", "park"]), st.sampled_from(["", "x1", "x2"]),
                                   st.integers(0, 20), st.integers(1, 12), st.sampled_from(["uni", "makers", "acme"])),
                         max_size=14))
    return [Booking(site, printer, start, start + length, customer, line)
            for line, (site, printer, start, length, customer) in enumerate(rows, start=2)]


@settings(max_examples=200, deadline=None)
@given(booking_files())
def test_the_sweep_refuses_exactly_what_checking_every_pair_refuses(bookings):
    try:
        _check_overlaps(list(bookings), PATH)
    except ConfigError as err:
        assert _any_clash(bookings)
        assert _clash(*_named_pair(err, bookings)), err.line()
    else:
        assert not _any_clash(bookings)


def test_a_clash_behind_thousands_of_one_customers_overlapping_bookings_is_found():
    """Positive control at size: a long run of one customer's overlapping whole-site bookings (what
    made the pairwise check quadratic), then another customer on one printer inside the last one."""
    day = 86_400_000
    rows = [Booking("lab", "" if n % 2 else "x1", n * day, n * day + 30 * day, "uni", n + 2) for n in range(16_000)]
    _check_overlaps(list(rows), PATH)  # one customer: overlaps are fine
    clash = Booking("lab", "x2", 15_990 * day, 15_991 * day, "makers", 16_002)
    with pytest.raises(ConfigError) as err:
        _check_overlaps(rows + [clash], PATH)
    a, b = _named_pair(err.value, rows + [clash])
    assert b == clash and a.customer == "uni" and _clash(a, b)


def test_a_whole_site_booking_is_checked_against_every_customer_still_running():
    """The one ending last is the whole site's own customer on x1; another customer on x2 is still on."""
    rows = [Booking("lab", "x2", 0, 10, "makers", 2), Booking("lab", "x1", 0, 20, "uni", 3),
            Booking("lab", "", 5, 6, "uni", 4)]
    with pytest.raises(ConfigError) as err:
        _check_overlaps(rows, PATH)
    assert _named_pair(err.value, rows) == (rows[0], rows[2])


def test_bookings_of_two_printers_or_two_sites_may_overlap():
    ok = [Booking("lab", "x1", 0, 10, "uni", 2), Booking("lab", "x2", 0, 10, "makers", 3),
          Booking("park", "", 0, 10, "acme", 4), Booking("lab", "x1", 10, 20, "makers", 5)]
    _check_overlaps(ok, PATH)

"""The CSV converts its cells a column at a time (server/reports/csv.py ``cells``): whatever the
mix of types in a column, every cell must come out as the one-cell conversion makes it."""

import math
import random
from datetime import datetime, timedelta, timezone

from server.reports import csv as csv_out

VALUES = [None, "=1+1", " -x", "@a", "\tb", "plain", "plain", "", 0, 1, True, False, 1.0, 0.0, -0.0, 0.1 + 0.2,
          1e300, math.nan, math.inf, datetime(2025, 3, 30, 2, 30, 5),
          datetime(2025, 1, 2, tzinfo=timezone(timedelta(hours=1)))]


def one_by_one(rows):
    return [[csv_out.cell(v) for v in row] for row in rows]


def test_columns_of_any_mix_of_types_give_the_cells_one_by_one():
    rng = random.Random(23)
    for _ in range(3000):
        width = rng.randint(1, 5)
        pools = [rng.sample(VALUES, rng.randint(1, 4)) for _ in range(width)]
        rows = [[rng.choice(pools[c]) for c in range(width)] for _ in range(rng.randint(0, 6))]
        assert [list(r) for r in csv_out.cells(rows, width)] == one_by_one(rows), rows


def test_ragged_rows_lose_no_cell():
    rows = [["a", 1.5], ["b"], ["=c", 2.0, None]]
    assert [list(r) for r in csv_out.cells(rows, 2)] == one_by_one(rows)


def test_minus_zero_keeps_its_sign_beside_zero():
    assert [list(r) for r in csv_out.cells([[0.0], [-0.0]], 1)] == [["0"], ["-0"]]

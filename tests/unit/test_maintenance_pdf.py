"""The report's maintenance pages (server/reports/maintenance.py ``grid``): every cell's text
inside its own column and the page, long notes cut with "…", printer IDs whole."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

from server.maintenance_intervals import Interval  # noqa: E402
from server.reports import maintenance as section  # noqa: E402
from server.reports import periods  # noqa: E402

LONG = "new nozzle, belts tensioned, hotend fan replaced and the bed levelled again"


def report(n: int):
    period = periods.parse("2025", "UTC")
    rows = [{"site": f"umea-makerspace-{i % 3}", "printer": f"umea-prusa-mk4-{i:03d}", "services_in_period": i % 3,
             "last_service": period.start_ms + i * 86_400_000 if i % 2 == 0 else None,
             "last_note": LONG if i % 2 == 0 else "", "printing_since_h": 12345.5 + i, "jobs_since": 1400 + i,
             "filament_since_m": 56789.25, "service_interval": Interval(500, 400, 6),
             "due": ("12345.5 of 500 printing hours", "1400 of 400 jobs", "6 months") if i % 4 else ()}
            for i in range(n)]
    return SimpleNamespace(maintenance=rows, period=period)


def test_the_cells_stay_in_their_columns_and_on_the_page():
    pages = section.pdf_pages(report(section.ROWS_PER_PAGE + 5), "sv")
    assert len(pages) == 2
    fig = pages[0]
    renderer = fig.canvas.get_renderer()
    page = fig.bbox
    assert len(fig.axes[0].texts) == len(section.COLUMNS) * (section.ROWS_PER_PAGE + 1)  # headers and cells
    texts = [t for t in fig.axes[0].texts if t.get_text()]
    rows: dict[float, list] = {}
    for t in texts:
        box = t.get_window_extent(renderer)
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, t.get_text()
        rows.setdefault(round(t.get_position()[1], 6), []).append(box)
    for boxes in rows.values():
        boxes.sort(key=lambda b: b.x0)
        assert all(a.x1 <= b.x0 for a, b in zip(boxes, boxes[1:]))  # no cell runs into the next
    shown = [t.get_text() for t in texts]
    assert "umea-prusa-mk4-000" in shown and LONG not in shown
    assert any(s.startswith(LONG[:20]) and s.endswith("…") for s in shown)

"""The live fleet table in the terminal (rich), built from the collector's /api/fleet.

Every cell from the fleet is a rich ``Text`` of plain text (common/text.py): rich never reads it
as markup (``[link=...]`` would print an OSC-8 link), and no escape sequence reaches the
terminal, even from a collector that did not clean it.
"""

from __future__ import annotations

import time
from collections import Counter

from rich.console import Group
from rich.table import Table
from rich.text import Text

from common.text import plain

STYLE = {"printing": "bold green", "paused": "yellow", "finishing": "green", "cancelling": "yellow",
         "idle": "cyan", "offline": "dim", "error": "bold red", "unreachable": "bold magenta",
         "unknown": "dim"}


def state_counts(fleet: dict) -> Counter:
    return Counter(p["state"] for p in fleet.get("printers", []))


def summary_line(fleet: dict) -> str:
    counts = state_counts(fleet)
    return " ".join(f"{state}={counts[state]}" for state in sorted(counts))


def _text(value, style: str = "") -> Text:
    return Text(plain(value or ""), style=style)


def _age(ms: int | None, now: float) -> str:
    if not ms:
        return "never"
    seconds = max(now - ms / 1000, 0)
    return f"{seconds:.0f} s ago" if seconds < 120 else f"{seconds / 60:.0f} min ago"


def _bar(progress: float | None, width: int = 10) -> Text:
    if progress is None:
        return Text("")
    filled = int(round(progress / 100 * width))
    bar = Text("█" * filled, style="green") + Text("░" * (width - filled), style="dim")
    return bar + Text(f" {progress:5.1f}%")


def _temps(temps: dict) -> str:
    parts = []
    for name in ("tool0", "bed"):
        actual, target = (temps.get(name) or [None, None])[:2]
        if actual is not None:
            parts.append(f"{actual:.0f}/{target or 0:.0f}")
    return " · ".join(parts)


def render(fleet: dict, header: str, footer: str, now: float | None = None, width: int = 140) -> Group:
    now = now or time.time()
    narrow = width < 120  # an 80-column terminal: drop temperatures, shorten the bar
    table = Table(expand=True, header_style="bold", pad_edge=False)
    columns = [("Site", None), ("Printer", 13), ("State", 11), ("Job", None),
               ("Progress", 12 if narrow else 19), ("Nozzle · bed °C", 15), ("Last seen", 9)]
    for name, size in columns:
        if not (narrow and name.startswith("Nozzle")):
            table.add_column(name, width=size, ratio=None if size else 1, min_width=None if size else 10,
                             no_wrap=True, overflow="ellipsis")
    row_in_site, last_site, last_county = 0, None, None
    for p in sorted(fleet.get("printers", []), key=lambda p: (p["county"], p["site"], p["printer"])):
        if p["county"] != last_county and last_county is not None:
            table.add_section()  # a line between counties, not sites: a regional fleet fits a screen
        last_county = p["county"]
        row_in_site = row_in_site + 1 if p["site"] == last_site else 0
        last_site = p["site"]
        # The site on its first row, the county under it.
        site_cell = (_text(p["site"], "bold") if row_in_site == 0
                     else _text(p["county"], "dim") if row_in_site == 1 else Text(""))
        job = p.get("error") if p["state"] in ("error", "unreachable") else (p.get("file") or "")
        busy = p["state"] in ("printing", "paused", "finishing", "cancelling")
        live = p["state"] not in ("offline", "error", "unreachable")
        cells = [site_cell, _text(p["printer"]), _text(p["state"], STYLE.get(p["state"], "")), _text(job),
                 _bar(p.get("progress") if busy else None, 4 if narrow else 10),
                 Text(_temps(p.get("temps") or {}) if live else ""), Text(_age(p.get("last_seen"), now))]
        if narrow:
            del cells[5]
        table.add_row(*cells)
    counts = state_counts(fleet)
    tally = Text("  ").join(_text(f"{state} {counts[state]}", STYLE.get(state, "")) for state in sorted(counts))
    # Tally and keys above the table: on a short terminal the table's end is cut, not they.
    return Group(Text(header, style="bold"), tally, Text(footer, style="dim"), table)

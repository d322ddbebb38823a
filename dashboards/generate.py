"""Write the dashboards' JSON: ``python -m dashboards.generate`` (``--check`` to verify only).

Generated with grafana-foundation-sdk (typed builders for every panel and option, so a typo in
an option name fails here, not silently in Grafana). The JSON is committed, so deploying needs
no Python: Grafana provisions dashboards/json/ as it is.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards import alerts, fleet_overview, funder, influxql, printer, utilisation

OUT = Path(__file__).parent / "json"
DASHBOARDS = {
    "fleet-overview.json": fleet_overview.build,
    "printer-detail.json": printer.build,
    "regional-utilisation.json": utilisation.build,
    "alerts-events.json": alerts.build,
    "funder.json": funder.build,
}


def render() -> dict[str, str]:
    influxql.register()
    out = {}
    for name, build in DASHBOARDS.items():
        board = build().build()
        for i, panel in enumerate(board.panels or [], start=1):
            panel.id_val = i
        out[name] = json.dumps(board, cls=JSONEncoder, indent=2, ensure_ascii=False) + "\n"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if json/ is not up to date")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = OUT / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            OUT.mkdir(exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python -m dashboards.generate", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

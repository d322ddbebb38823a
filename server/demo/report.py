"""The utilisation report at the end of a demo: the reports module when present, else a summary."""

from __future__ import annotations

import csv
import json
import logging
import subprocess
import sys
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path

log = logging.getLogger(__name__)
STATES = ("printing", "paused", "idle", "offline", "error", "unreachable")


def write_report(collector_conf: Path, influx_url: str, out: Path, started: float, db: str = "printfarm") -> list[Path]:
    """Try ``printfarm-server report`` for today; fall back to a CSV of time per state."""
    out.mkdir(parents=True, exist_ok=True)
    day = datetime.now().astimezone().date().isoformat()
    cmd = [sys.executable, "-m", "server", "report", "-c", str(collector_conf), "--period", f"{day}..{day}",
           "--format", "xlsx,pdf,csv", "--out", str(out), "--no-progress"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode == 0:
            return [Path(line) for line in done.stdout.split("\n") if line.strip() and Path(line.strip()).exists()]
        last_line = (done.stderr.strip().splitlines() or ["no output"])[-1][:300]
        log.warning("printfarm-server report failed (%s); writing a summary", last_line)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("printfarm-server report failed (%s); writing a summary", exc)
    return [_summary(influx_url, db, out, started)]


def _summary(influx_url: str, db: str, out: Path, started: float) -> Path:
    """Share of polls in each state per printer since the demo began (polls are evenly spaced)."""
    since = int(started * 1000)
    rows = []
    for state in STATES:  # state is a field of telemetry, not a tag: one query per state
        found = _query(influx_url, db, f"SELECT count(seq) FROM telemetry WHERE time >= {since}ms "
                                       f"AND state = '{state}' GROUP BY printer, site")
        rows += [({**tags, "state": state}, count) for tags, count in found]
    jobs = _query(influx_url, db, f"SELECT count(\"count\") FROM job WHERE time >= {since}ms GROUP BY printer, kind")
    per_printer: dict[str, dict] = {}
    for tags, count in rows:
        entry = per_printer.setdefault(tags.get("printer", "?"), {"site": tags.get("site", "")})
        entry[tags.get("state", "?")] = count
    for tags, count in jobs:
        per_printer.setdefault(tags.get("printer", "?"), {})[f"jobs_{tags.get('kind')}"] = count
    columns = ["printer", "site", "printing", "paused", "idle", "offline", "error", "unreachable", "utilisation_pct",
               "jobs_started", "jobs_done", "jobs_failed", "jobs_cancelled"]
    path = out / "demo-utilisation.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for printer, entry in sorted(per_printer.items()):
            polls = sum(entry.get(state, 0) for state in STATES)
            busy = entry.get("printing", 0) + entry.get("paused", 0)
            entry["utilisation_pct"] = round(100 * busy / polls, 1) if polls else 0
            writer.writerow([printer, entry.get("site", "")] + [entry.get(c, 0) for c in columns[2:]])
    return path


def _query(url: str, db: str, q: str) -> list[tuple[dict, int]]:
    data = urllib.parse.urlencode({"db": db, "q": q}).encode()
    with urllib.request.urlopen(url + "/query", data=data, timeout=30) as reply:
        body = json.loads(reply.read())
    out = []
    for result in body.get("results", []):
        for series in result.get("series", []):
            out.append((series.get("tags") or {}, int(series["values"][0][1])))
    return out

"""The report at the end of a demo: ``printfarm-server report`` for today, with the customer view,
in Swedish (the one-page summary is what the project pastes into its progress report)."""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import datetime
from pathlib import Path

log = logging.getLogger(__name__)


def write_report(collector_conf: Path, out: Path) -> list[Path]:
    """Run the product's own report command on today's data; the paths it wrote."""
    out.mkdir(parents=True, exist_ok=True)
    day = datetime.now().astimezone().date().isoformat()
    cmd = [sys.executable, "-m", "server", "report", "-c", str(collector_conf), "--period", f"{day}..{day}",
           "--format", "xlsx,pdf,csv,summary", "--out", str(out), "--no-progress"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.error("printfarm-server report failed: %s", exc)
        return []
    if done.returncode != 0:
        log.error("printfarm-server report failed: %s", (done.stderr.strip().splitlines() or ["no output"])[-1][:300])
        return []
    return [Path(line.strip()) for line in done.stdout.splitlines() if line.strip() and Path(line.strip()).exists()]

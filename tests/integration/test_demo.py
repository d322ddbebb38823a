"""printfarm-demo as a newcomer runs it: printers printing within a minute, Ctrl-C leaves nothing."""

from __future__ import annotations

import csv
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time

import psutil
import pytest

from devkit.demo import __main__ as demo

pytestmark = pytest.mark.integration


def demo_command() -> list[str]:
    script = shutil.which("printfarm-demo")
    return [script] if script else [sys.executable, "-m", "devkit.demo"]


ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]")


class Terminal:
    """The demo's output through a pseudo-terminal, so it draws its live table as for a person."""

    def __init__(self):
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 150, 0, 0))
        self.text = ""

    def read_until(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, ANSI.sub("", self.text))
            if found:
                return found
            self.read(0.2)
        raise AssertionError(f"no {pattern!r} within {timeout} s; the terminal showed:\n{ANSI.sub('', self.text)}")

    def read(self, wait: float) -> None:
        if select.select([self.master], [], [], wait)[0]:
            try:
                self.text += os.read(self.master, 65536).decode(errors="replace")
            except OSError:  # the demo closed the terminal
                pass

    def close(self):
        os.close(self.master)
        os.close(self.slave)


def terminal_env() -> dict[str, str]:
    """The demo reads its size from the pseudo-terminal; COLUMNS and LINES (pytest-xdist's workers
    set 80 x 24) would override it and crop the table above its tally."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return {**env, "TERM": "xterm-256color"}


def test_demo_table_shows_printers_printing_within_a_minute_and_ctrl_c_leaves_nothing(tmp_path, demo_stack_turn):
    term = Terminal()
    began = time.monotonic()
    proc = subprocess.Popen(
        demo_command() + ["--workdir", str(tmp_path / "work"), "--report-dir", str(tmp_path / "report")],
        stdin=term.slave, stdout=term.slave, stderr=term.slave, env=terminal_env())
    try:
        # The tally under the table, e.g. "error 1  idle 6  offline 2  printing 15".
        found = term.read_until(r"idle \d+ .*printing (\d+)", 60)
        assert int(found.group(1)) > 0 and time.monotonic() - began < 60
        shown = ANSI.sub("", term.text)
        assert "du-borlange" in shown and "Dalarna" in shown and "Site" in shown  # the ACES region
        tree = psutil.Process(proc.pid).children(recursive=True)
        names = {p.name() for p in tree}
        assert {"mosquitto", "influxd"} <= names and len(tree) >= 16, names  # + simulator, collector, 12 agents
        proc.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            term.read(0.2)
        term.read(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        term.close()
    assert proc.returncode == 0, ANSI.sub("", term.text)[-3000:]
    assert "nothing left running" in term.text
    gone, alive = psutil.wait_procs(tree, timeout=5)
    assert alive == []
    leftovers = [p for p in psutil.process_iter(["cmdline"]) if str(tmp_path) in " ".join(p.info["cmdline"] or [])]
    assert leftovers == []
    assert list((tmp_path / "report").iterdir()), "a utilisation report was written"
    assert_closing_report_has_the_customer_view_and_the_one_page_summary(tmp_path / "report")


def assert_closing_report_has_the_customer_view_and_the_one_page_summary(folder) -> None:
    summary = next(folder.glob("printfarm-summary-*-sv.pdf"))
    info = subprocess.run(["pdfinfo", str(summary)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"^Pages:\s+1$", info, re.M), info
    text = " ".join(subprocess.run(["pdftotext", str(summary), "-"], capture_output=True, text=True,
                                   check=True).stdout.split())
    assert "ACES" in text and "Delade 3D-skrivare: lägesrapport" in text and "Företag som använt" in text
    assert "Örebro" in text and "Gävleborg" in text  # utilisation per county of the region
    assert "Fondens indikatorer" in text and "Sedan projektets start" in text and "Målvärde" in text  # its targets
    with next(folder.glob("printfarm-report-*-sv-customers.csv")).open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[-1]["Kund"] == "ej tillskrivet"  # unattributed jobs are counted, never dropped
    assert len(rows) >= 2 and int(rows[0]["Jobb startade"]) + int(rows[0]["Jobb klara"]) > 0  # a customer served
    full = " ".join(subprocess.run(["pdftotext", str(next(folder.glob("printfarm-report-*-sv.pdf"))), "-"],
                                   capture_output=True, text=True, check=True).stdout.split())
    assert "Kunder —" in full and "Per kundtyp" in full  # the customer view page of the full report


def test_demo_without_a_terminal_prints_summary_lines(tmp_path, demo_stack_turn):
    proc = subprocess.run(
        demo_command() + ["--minutes", "0.25", "--no-report", "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"printfarm-demo: t=\d+s .*printing=[1-9]", proc.stdout), proc.stdout
    assert "nothing left running" in proc.stdout


def test_demo_without_mosquitto_or_influxdb_prints_what_to_install(monkeypatch, capsys):
    monkeypatch.setattr(demo.services, "missing_packages", lambda: ["mosquitto", "influxdb"])
    assert demo.ensure_services(install=False) is False
    err = capsys.readouterr().err
    assert "apt-get install -y mosquitto influxdb" in err and "--install" in err

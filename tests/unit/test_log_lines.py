"""Printer-supplied text and topics never break a log line: one record, one line."""

from __future__ import annotations

import logging

from agent.printers.base import Snapshot
from agent.service import PrinterWorker
from agent.printers.octoprint import OctoPrintSettings
from common.text import one_line
from server.ingest import RejectLog
from tests.unit.scripted_printer import ScriptedPrinter as Printer

FORGED = "Printing\n2026-01-01 00:00:00 ERROR agent: forged line\r\x1b[31m"


def test_the_agent_logs_printer_state_texts_and_file_names_on_one_line(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("PF_KEY", "k")
    cfg = OctoPrintSettings(id="p1", site="lab", url="http://127.0.0.1:1", api_key_env="PF_KEY")
    snaps = [Snapshot(ts=1, state="idle"),
             Snapshot(ts=2, state="printing", state_text=FORGED, file=FORGED, progress=1.0)]
    worker = PrinterWorker(cfg, Printer(snaps), lambda *a: None, "pi-1")
    caplog.set_level(logging.INFO)
    worker.run_once()
    worker.run_once()
    lines = [r.getMessage() for r in caplog.records]
    assert any("forged line" in line for line in lines)  # it is logged, on one line
    assert not [line for line in lines if "\n" in line or "\r" in line or "\x1b" in line]


def test_a_rejected_topic_with_a_newline_is_logged_on_one_line(caplog):
    RejectLog().note("bad_topic", "printfarm/v1/x\nFORGED ERROR line/y/status", "detail\nmore")
    (record,) = caplog.records
    assert "FORGED ERROR line" in record.getMessage() and "\n" not in record.getMessage()


def test_a_printers_repeating_problem_is_logged_on_one_line(caplog):
    from agent.printers.problems import ProblemLog

    ProblemLog(logging.getLogger("test"), "OctoPrint at http://127.0.0.1:5000").note(FORGED)
    (record,) = caplog.records
    assert "forged line" in record.getMessage() and "\n" not in record.getMessage()


def test_one_line_caps_the_length():
    assert one_line("x" * 500, 50) == "x" * 49 + "…"

"""The PrusaLink client's pieces without a server: digest answers, the state mapping of both
APIs, the end of a legacy job, and what it does with failures. The HTTP side against a
server is in tests/integration/test_prusalink_agent.py."""

from __future__ import annotations

import logging

import msgspec
import pytest
import requests

from agent.config import from_dict
from agent.jobs import JobTracker
from agent.printers.base import Snapshot
from agent.printers.digest import DigestAuth, parse_challenge
from agent.printers.prusalink import PrusaLink
from agent.printers.prusalink_http import AuthRejected, HTTPStatus
from agent.printers.prusalink_material import job_material, model_name
from agent.printers.prusalink_states import ATTENTION_REASON, from_legacy, from_v1
from common.configkit import ConfigError
from common.protocol import MaterialUse, Tool

BUDDY_CHALLENGE = 'Digest realm="Printer API", nonce="aaaaaaaa00000000", stale=false'


# -- digest ---------------------------------------------------------------------------------

def test_digest_answer_without_qop_matches_the_firmwares_own_test_vector():
    # Prusa-Firmware-Buddy's server test: user maker, password "password", GET /secret.html.
    auth = DigestAuth("maker", "password")
    assert auth.header("GET", "/secret.html") is None  # nothing to answer before a challenge
    assert auth.learn(BUDDY_CHALLENGE)
    header = auth.header("GET", "/secret.html")
    assert 'response="0cbf0ac5ca4c879c35a3b91430214a47"' in header and "qop" not in header and "nc=" not in header
    assert parse_challenge(header)["uri"] == "/secret.html"


def test_digest_answer_with_qop_auth_matches_rfc_2617():
    auth = DigestAuth("Mufasa", "Circle Of Life", cnonce=lambda: "0a4f113b")
    auth.learn('Digest realm="testrealm@host.com", qop="auth,auth-int", '
               'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    header = auth.header("GET", "/dir/index.html")
    assert 'response="6629fae49393a05397450978507c4ef1"' in header
    assert "nc=00000001" in header and 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in header
    assert "nc=00000002" in auth.header("GET", "/dir/index.html")  # the count goes up per use


def test_a_refused_answer_to_the_same_nonce_is_not_retried_but_a_stale_or_new_nonce_is():
    auth = DigestAuth("maker", "wrong")
    assert auth.learn(BUDDY_CHALLENGE)  # first challenge: answer it
    assert not auth.learn(BUDDY_CHALLENGE)  # same nonce, stale=false: our password is wrong
    assert auth.learn('Digest realm="Printer API", nonce="aaaaaaaa00000005", stale=true')
    assert auth.learn('Digest realm="Printer API", nonce="aaaaaaaa00000009", stale=false')
    assert not auth.learn('ApiKey realm="Printer API"') and not auth.learn(None)


# -- the v1 API -----------------------------------------------------------------------------

STATUS = {"job": {"id": 42, "progress": 37.0, "time_remaining": 600, "time_printing": 300},
          "printer": {"state": "PRINTING", "temp_nozzle": 214.9, "target_nozzle": 215.0, "temp_bed": 59.5,
                      "target_bed": 60.0}}


def test_v1_status_becomes_a_snapshot_with_progress_0_to_100_unscaled():
    snap = from_v1(1000, STATUS, "benchy_0.2mm_PLA.gcode")
    assert (snap.state, snap.state_text, snap.job_id, snap.file) == ("printing", "PRINTING", "42", "benchy_0.2mm_PLA.gcode")
    assert (snap.progress, snap.print_time, snap.time_left, snap.ended) == (37.0, 300.0, 600.0, None)
    assert snap.temps == {"tool0": (214.9, 215.0), "bed": (59.5, 60.0)}
    assert snap.user is None and snap.filament_mm is None  # PrusaLink names no user


@pytest.mark.parametrize("state, has_job, expected", [
    ("IDLE", False, ("idle", None, None)), ("READY", False, ("idle", None, None)),
    ("PRINTING", True, ("printing", None, None)), ("PAUSED", True, ("paused", None, None)),
    ("FINISHED", False, ("idle", "done", None)), ("STOPPED", False, ("idle", "cancelled", None)),
    ("ERROR", False, ("error", "failed", "ERROR")),
    ("ATTENTION", True, ("paused", None, ATTENTION_REASON)), ("ATTENTION", False, ("idle", None, ATTENTION_REASON)),
    ("BUSY", True, ("printing", None, None)), ("BUSY", False, ("idle", None, None)),
    ("SOMETHING_NEW", False, ("error", None, "SOMETHING_NEW")),
])
def test_every_v1_state_is_mapped(state, has_job, expected):
    status = {"printer": {"state": state}, **({"job": {"id": 1}} if has_job else {})}
    snap = from_v1(0, status, None)
    assert (snap.state, snap.ended, snap.error) == expected and snap.state_text == state


def _v1(ts: int, state: str, job: int | None = None) -> Snapshot:
    status = {"printer": {"state": state}, **({"job": {"id": job, "progress": 50}} if job else {})}
    return from_v1(ts, status, "cube.gcode" if job else None)


def test_attention_mid_print_is_a_pause_and_one_job_ends_once_across_an_agent_restart():
    # Buddy firmware says ATTENTION for an M600 colour change mid-print; the print then goes on.
    saved = []
    first = JobTracker(save=saved.append)
    kinds = [e.kind for snap in (_v1(0, "PRINTING", 7), _v1(1000, "ATTENTION", 7)) for e in first.update(snap)]
    assert kinds == ["started", "paused"] and saved[-1]["job_id"] == "7"  # still open, on disk
    second = JobTracker(job=saved[-1], save=saved.append)  # the agent restarted during ATTENTION
    snaps = (_v1(2000, "ATTENTION", 7), _v1(3000, "PRINTING", 7), _v1(4000, "ATTENTION", 7),
             _v1(5000, "PRINTING", 7), _v1(9000, "FINISHED"), _v1(10000, "IDLE"))
    events = [e for snap in snaps for e in second.update(snap)]
    assert [(e.kind, e.ts) for e in events] == [("resumed", 3000), ("paused", 4000), ("resumed", 5000),
                                               ("done", 9000)]
    assert events[-1].job_started == 0 and saved[-1] is None


def test_a_final_state_that_still_names_the_job_ends_it_once_after_a_restart():
    # Prusa-Link (the Pi add-on) can still show the job with FINISHED/STOPPED: its id says it is ours.
    saved = []
    JobTracker(save=saved.append).update(_v1(0, "PRINTING", 7))
    back = JobTracker(job=saved[-1], save=saved.append)  # the agent was away while it finished
    events = [e for snap in (_v1(9000, "FINISHED", 7), _v1(10000, "FINISHED", 7)) for e in back.update(snap)]
    assert [(e.kind, e.job_started) for e in events] == [("done", 0)] and saved[-1] is None
    again = JobTracker(job=saved[-1], save=saved.append)  # restarted once more: nothing to count
    assert again.update(_v1(11000, "FINISHED", 7)) == []


def test_garbage_in_a_v1_answer_becomes_none_not_a_crash():
    snap = from_v1(0, {"printer": {"state": 7, "temp_nozzle": "hot"}, "job": {"id": "x", "progress": float("nan")}}, None)
    assert (snap.state, snap.job_id, snap.progress, snap.temps) == ("error", None, None, {})
    assert from_v1(0, {"printer": [], "job": None}, None).state_text == "UNKNOWN"


# -- the legacy API -------------------------------------------------------------------------

LEGACY_PRINTER = {"temperature": {"tool0": {"actual": 210.2, "target": 215.0}, "bed": {"actual": 60.1, "target": 60.0}},
                  "state": {"text": "Printing", "flags": {"printing": True}}}
LEGACY_JOB = {"state": "Printing", "job": {"estimatedPrintTime": 900, "file": {"name": "cube.gcode",
              "path": "/usb/CUBE~1.GCO", "display": "cube.gcode"}},
              "progress": {"completion": 0.42, "printTime": 300, "printTimeLeft": 600}}


def test_legacy_completion_0_to_1_becomes_percent():
    snap = from_legacy(0, LEGACY_PRINTER, LEGACY_JOB)
    assert (snap.state, snap.state_text, snap.file, snap.job_id) == ("printing", "Printing", "cube.gcode", None)
    assert (snap.progress, snap.print_time, snap.time_left) == (42.0, 300.0, 600.0)
    assert snap.temps == {"tool0": (210.2, 215.0), "bed": (60.1, 60.0)}


def test_legacy_idle_as_buddy_firmware_sends_it_with_null_job():
    snap = from_legacy(0, {"state": {"text": "Operational"}}, {"state": "Operational", "job": None, "progress": None})
    assert (snap.state, snap.file, snap.progress, snap.ended) == ("idle", None, None, None)


def test_legacy_link_state_of_newer_firmware_tells_finished_from_idle():
    printer = {"state": {"text": "Operational", "flags": {"link_state": "FINISHED"}}}
    snap = from_legacy(0, printer, {"state": "Operational", "job": None, "progress": None})
    assert (snap.state, snap.state_text, snap.ended) == ("idle", "FINISHED", "done")


def test_legacy_link_state_attention_with_a_job_is_a_pause():
    printer = {"state": {"text": "Printing", "flags": {"link_state": "ATTENTION"}}}
    snap = from_legacy(0, printer, {"state": "Error", "job": {"file": {"name": "cube.gcode"}}, "progress": {}})
    assert (snap.state, snap.state_text, snap.ended, snap.error) == ("paused", "ATTENTION", None, ATTENTION_REASON)


@pytest.mark.parametrize("text, expected", [("Paused", "paused"), ("Pausing", "paused"), ("Cancelling", "cancelling"),
                                            ("Error", "error"), ("Resuming", "printing"), ("Offline", "offline")])
def test_legacy_states(text, expected):
    assert from_legacy(0, {}, {"state": text}).state == expected


# -- the client -----------------------------------------------------------------------------

class FakeHTTP:
    """Answers from a dict of path -> answer (a dict, None for 204, or an exception)."""

    url = "http://maker:pw@127.0.0.1:1"
    uses_digest = True

    def __init__(self, answers: dict):
        self.answers, self.asked = answers, []

    def get(self, path):
        self.asked.append(path)
        answer = self.answers[path]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self):
        pass


def client(answers, interval=1.0):
    return PrusaLink(FakeHTTP(answers), interval=interval, clock=lambda: 1_790_000_000.0)


BUDDY_JOB = {"id": 42, "state": "PRINTING", "file": {"name": "BENCHY~1.GCO", "display_name": "benchy.gcode",
                                                      "path": "/usb/BENCHY~1.GCO"}}
# Prusa-Link's meta of a single-tool file (py-gcode-metadata: the sum and a list per tool).
META = {"filament used [g]": 12.5, "filament used [g] per tool": [12.5], "filament used [mm]": 4190.2,
        "filament used [mm] per tool": [4190.2], "filament_type": "PETG", "filament_type per tool": ["PETG"]}
BUDDY_PRINTER = {"telemetry": {"temp-bed": 60.0, "temp-nozzle": 215.0, "material": "PLA"}}


def test_v1_asks_for_the_file_its_meta_and_capabilities_once_per_job_then_one_request_per_poll():
    http = FakeHTTP({"/api/version": {"text": "PrusaLink"}, "/api/v1/status": STATUS, "/api/v1/job": BUDDY_JOB,
                     "/api/v1/files/usb/BENCHY~1.GCO": {"name": "BENCHY~1.GCO", "meta": META},
                     "/api/v1/info": {"nozzle_diameter": 0.6, "mmu": False}, "/api/printer": BUDDY_PRINTER})
    printer = PrusaLink(http, clock=lambda: 1.0)
    assert [printer.poll().file for _ in range(3)] == ["benchy.gcode"] * 3
    assert http.asked == ["/api/version", "/api/v1/status", "/api/v1/job", "/api/v1/files/usb/BENCHY~1.GCO",
                          "/api/v1/info", "/api/printer", "/api/v1/status", "/api/printer", "/api/v1/status"]


def test_a_change_of_filament_shows_within_two_polls_and_a_failed_read_keeps_the_last():
    answers = {"/api/version": {}, "/api/v1/status": {"printer": {"state": "IDLE"}}, "/api/v1/info": {},
               "/api/printer": BUDDY_PRINTER}
    printer = PrusaLink(FakeHTTP(answers), clock=lambda: 1.0)
    assert printer.poll().info["tools"][0].material == "PLA"
    answers["/api/printer"] = {"telemetry": {"material": "PETG"}}
    assert "PETG" in [printer.poll().info["tools"][0].material for _ in range(2)]
    answers["/api/printer"] = HTTPStatus(500, "/api/printer")
    assert [printer.poll().info["tools"][0].material for _ in range(2)] == ["PETG", "PETG"]


def test_a_v1_job_carries_grams_mm_and_type_from_its_files_meta():
    http = FakeHTTP({"/api/version": {}, "/api/v1/status": STATUS, "/api/v1/job": BUDDY_JOB,
                     "/api/v1/files/usb/BENCHY~1.GCO": {"name": "BENCHY~1.GCO", "meta": META},
                     "/api/v1/info": {"nozzle_diameter": 0.6, "mmu": False}, "/api/printer": BUDDY_PRINTER})
    snap = PrusaLink(http, clock=lambda: 1.0, model="MK4").poll()
    assert snap.material == (MaterialUse(source="slicer", tool=0, type="PETG", grams=12.5, mm=4190.2),)
    assert snap.info == {"model": "MK4", "tools": [Tool(nozzle_mm=0.6, material="PLA")],
                         "volume": [250.0, 210.0, 220.0], "enclosed": False}


def test_meta_in_the_jobs_answer_is_used_without_asking_for_the_file():
    job = {**BUDDY_JOB, "file": {**BUDDY_JOB["file"], "meta": META}}
    http = FakeHTTP({"/api/version": {}, "/api/v1/status": STATUS, "/api/v1/job": job, "/api/v1/info": {},
                     "/api/printer": {}})
    assert PrusaLink(http, clock=lambda: 1.0).poll().material[0].grams == 12.5
    assert not [p for p in http.asked if p.startswith("/api/v1/files")]


def test_an_mmu_file_gives_one_material_per_tool_used_and_strings_as_connect_sends_them():
    meta = {"filament used [g]": "3.10, 0.00, 7.25, 0.00, 0.00", "filament used [mm]": "1040.1, 0, 2390.5, 0, 0",
            "filament_type": "PLA;PLA;PETG;PLA;PLA"}
    assert job_material(meta) == (MaterialUse(source="slicer", tool=0, type="PLA", grams=3.1, mm=1040.1),
                                  MaterialUse(source="slicer", tool=2, type="PETG", grams=7.25, mm=2390.5))
    listed = {"filament used [g] per tool": [1.0, 2.0], "filament_type per tool": ["PLA", "ASA"],
              "filament used [g]": 3.0}
    assert [(u.tool, u.type, u.grams) for u in job_material(listed)] == [(0, "PLA", 1.0), (1, "ASA", 2.0)]


def test_buddy_firmware_without_meta_gives_the_loaded_type_and_no_amounts():
    http = FakeHTTP({"/api/version": {}, "/api/v1/status": STATUS, "/api/v1/job": BUDDY_JOB,
                     "/api/v1/files/usb/BENCHY~1.GCO": {"name": "BENCHY~1.GCO", "ro": False},
                     "/api/v1/info": {"nozzle_diameter": 0.4, "mmu": True}, "/api/printer": BUDDY_PRINTER})
    snap = PrusaLink(http, clock=lambda: 1.0).poll()
    assert snap.material == (MaterialUse(source="slicer", tool=0, type="PLA"),)
    assert snap.info["model"] is None and len(snap.info["slots"]) == 5  # an MMU: five slots


@pytest.mark.parametrize("meta", [None, {}, {"filament used [g]": "lots", "filament_type": 7},
                                  {"filament used [g]": -3.0, "filament used [mm]": float("nan")},
                                  {"filament used [g] per tool": "x"}])
def test_garbage_meta_gives_no_material_and_no_crash(meta):
    assert job_material(meta) == ()


def test_a_failing_meta_read_keeps_the_printer_monitored_and_logs_once_without_the_file_name(caplog):
    http = FakeHTTP({"/api/version": {}, "/api/v1/status": STATUS, "/api/v1/job": BUDDY_JOB,
                     "/api/v1/files/usb/BENCHY~1.GCO": HTTPStatus(500, "/api/v1/files/usb/BENCHY~1.GCO"),
                     "/api/v1/info": {}, "/api/printer": {}})
    with caplog.at_level(logging.WARNING):
        snap = PrusaLink(http, clock=lambda: 1.0).poll()
    assert (snap.state, snap.file, snap.material) == ("printing", "benchy.gcode", None)
    assert "HTTP 500 from /api/v1/files/..." in caplog.text and "BENCHY" not in caplog.text


def test_the_pi_add_on_names_its_model_and_legacy_firmware_its_nozzle_in_version():
    assert model_name({"original": "PrusaLink I3MK3S"}, None) == "MK3S"
    assert model_name({"original": "Unknown printer type"}, None) is None
    answers = {"/api/version": {"nozzle_diameter": 0.4}, "/api/v1/status": HTTPStatus(404, "x"),
               "/api/job": LEGACY_JOB, "/api/printer": {**LEGACY_PRINTER, "telemetry": {"material": "PETG"}}}
    snap = client(answers).poll()
    assert snap.info["tools"] == [Tool(nozzle_mm=0.4, material="PETG")]
    assert snap.material == (MaterialUse(source="slicer", type="PETG"),)


def test_a_printer_without_v1_is_read_through_the_legacy_api():
    printer = client({"/api/version": {}, "/api/v1/status": HTTPStatus(404, "/api/v1/status"),
                      "/api/job": LEGACY_JOB, "/api/printer": LEGACY_PRINTER})
    assert (printer.poll().progress, printer.poll().progress) == (42.0, 42.0)
    assert printer.http.asked.count("/api/v1/status") == 1  # asked once, then remembered


@pytest.mark.parametrize("last, expected", [
    ({"completion": 0.995, "printTimeLeft": 30}, "done"),
    ({"completion": 0.90, "printTimeLeft": 1}, "done"),  # the printer's own estimate says it was ending
    ({"completion": 0.40, "printTimeLeft": 600}, "cancelled"),
])
def test_a_legacy_job_that_turns_operational_is_judged_by_its_last_poll(last, expected):
    answers = {"/api/version": {}, "/api/v1/status": HTTPStatus(404, "x"), "/api/printer": {},
               "/api/job": {**LEGACY_JOB, "progress": last}}
    printer = client(answers, interval=1.0)
    assert printer.poll().state == "printing"
    answers["/api/job"] = {"state": "Operational", "job": None, "progress": None}
    assert printer.poll().ended == expected
    assert printer.poll().ended is None  # judged once


def test_a_legacy_job_seen_cancelling_is_cancelled_even_at_99_percent():
    answers = {"/api/version": {}, "/api/v1/status": HTTPStatus(404, "x"), "/api/printer": {},
               "/api/job": {**LEGACY_JOB, "state": "Cancelling", "progress": {"completion": 0.99}}}
    printer = client(answers)
    printer.poll()
    answers["/api/job"] = {"state": "Operational"}
    assert printer.poll().ended == "cancelled"


@pytest.mark.parametrize("error, text", [
    (requests.ConnectTimeout("x"), "no answer within the timeout"),
    (requests.ConnectionError("x"), "connection refused or lost"),
    (AuthRejected(401), "credentials rejected (HTTP 401): check username and password_file"),
    (HTTPStatus(500, "/api/v1/status"), "HTTP 500 from /api/v1/status"),
    (ValueError("no JSON"), "unreadable answer (ValueError)"),
])
def test_failures_become_unreachable_with_a_reason(error, text):
    snap = client({"/api/version": error}).poll()
    assert (snap.state, snap.error, snap.state_text) == ("unreachable", text, text)


def test_a_repeating_failure_is_logged_once_without_credentials(caplog):
    answers = {"/api/version": requests.ConnectionError("x")}
    printer = client(answers)
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            printer.poll()
        answers.update({"/api/version": {}, "/api/v1/status": STATUS, "/api/v1/job": None})
        assert printer.poll().state == "printing"
    messages = [r.getMessage() for r in caplog.records if r.name == "agent.printers.prusalink"]
    assert sum("connection refused" in m for m in messages) == 1 and any("answers again" in m for m in messages)
    assert "pw" not in caplog.text.replace("PrusaLink", "")


# -- config ---------------------------------------------------------------------------------

def _config(tmp_path, **table):
    return {"agent": {"id": "pi", "site": "lab", "state_dir": str(tmp_path)}, "broker": {"host": "127.0.0.1"},
            "printers": [{"id": "mk4-1", "type": "prusalink", "url": "http://127.0.0.1:8080", **table}]}


def test_prusalink_config_reads_the_password_from_a_file_and_never_shows_it(tmp_path):
    (tmp_path / "pw").write_text("s3cret-pw\n")
    cfg = from_dict(_config(tmp_path, password_file=str(tmp_path / "pw")))
    printer = cfg.printers[0]
    assert (printer.type, printer.username, printer.api) == ("prusalink", "maker", "auto")
    assert printer.password.reveal() == "s3cret-pw" and "s3cret" not in repr(printer.password)
    assert "s3cret" not in msgspec.json.encode(msgspec.structs.asdict(printer)).decode()
    assert isinstance(printer.build(), PrusaLink)


@pytest.mark.parametrize("table, key", [
    ({}, "printers[0].password_file"),
    ({"password_env": "NO_SUCH_VARIABLE_HERE"}, "printers[0].password_env"),
    ({"password_file": "/etc/hostname", "api_key_file": "/etc/hostname"}, "printers[0].api_key_file"),
    ({"password_file": "/etc/hostname", "api": "v2"}, "printers[0].api"),
])
def test_prusalink_config_errors_name_the_key(tmp_path, table, key):
    with pytest.raises(ConfigError) as err:
        from_dict(_config(tmp_path, **table))
    assert err.value.key == key


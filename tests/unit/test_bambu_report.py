"""Bambu reports: decoding, merging partial reports, and the state mapping (no network)."""

import json

import msgspec
import pytest

from agent.printers.bambu import errors
from agent.printers.bambu.report import PrintState, decode
from devkit.sim.faces.bambu_reports import changed, envelope, idle_print_object


def report(**fields) -> bytes:
    return json.dumps({"print": {**fields, "command": "push_status", "msg": 1, "sequence_id": "7"}}).encode()


def state_after(*reports: bytes) -> PrintState:
    state = PrintState()
    for payload in reports:
        state.merge(decode(payload))
    return state


def full(**fields) -> bytes:
    return json.dumps(envelope({**idle_print_object(), **fields}, 1, partial=False)).encode()


def test_a_full_x1_report_keeps_only_the_fields_we_map():
    fields = decode(full(gcode_state="RUNNING", mc_percent=42))
    assert fields["gcode_state"] == "RUNNING" and fields["mc_percent"] == 42
    assert "ams" in fields  # the trays: what the printer has loaded
    assert "wifi_signal" not in fields and "command" not in fields and "xcam" not in fields


def test_partial_p1_reports_merge_into_the_full_state():
    state = state_after(full(gcode_state="RUNNING", mc_percent=10, bed_temper=60.0, nozzle_temper=219.5,
                             layer_num=3, total_layer_num=80, subtask_name="bracket"),
                        report(mc_percent=11), report(nozzle_temper=220.25), report(layer_num=4))
    assert state.normalised()[0] == "printing"
    assert (state.progress(), state.layers(), state.file()) == (11.0, (4, 80), "bracket")
    assert state.temps(chamber=False) == {"tool0": (220.25, 0.0), "bed": (60.0, 0.0)}


def test_reports_without_a_print_object_are_valid_but_change_nothing():
    assert decode(b'{"info": {"command": "get_version", "module": []}}') == {}
    assert decode(b'{"mc_print": {"command": "push_info", "param": "x"}}') == {}


@pytest.mark.parametrize("payload", [b"", b"not json", b"[1, 2]", b'{"print": 5}', b'{"print": [1]}'])
def test_garbage_payloads_raise_decode_errors(payload):
    with pytest.raises((msgspec.DecodeError, msgspec.ValidationError)):
        decode(payload)


@pytest.mark.parametrize("gcode_state,expected", [
    ("IDLE", ("idle", "IDLE", None, None)),
    ("PREPARE", ("printing", "PREPARE", None, None)),
    ("RUNNING", ("printing", "RUNNING", None, None)),
    ("PAUSE", ("paused", "PAUSE", None, None)),
    ("FINISH", ("idle", "FINISH", None, "done")),
])
def test_gcode_states_map_to_the_normalised_states(gcode_state, expected):
    assert state_after(report(gcode_state=gcode_state)).normalised() == expected


@pytest.mark.parametrize("code", [50348044, 0x0500400E])
def test_failed_with_a_cancel_code_is_a_cancel_not_a_failure(code):
    assert state_after(report(gcode_state="FAILED", print_error=code)).normalised() == (
        "idle", "FAILED", None, "cancelled")


def test_failed_with_codes_is_an_error_with_readable_text():
    state = state_after(report(gcode_state="FAILED", print_error=0x03008008, mc_print_error_code="50364424",
                               hms=[{"attr": 0x03000200, "code": 0x00010003}]))
    assert state.normalised() == ("error", "FAILED", "nozzle temperature malfunction [0300_8008]; "
                                  "HMS_0300_0200_0001_0003: nozzle over temperature", "failed")


def test_unknown_codes_still_read_with_their_number_module_and_level():
    state = state_after(report(gcode_state="FAILED", print_error=0x0C00_4DEA,
                               hms=[{"attr": 0x07010300, "code": 0x00020011}]))
    error = state.normalised()[2]
    assert error.startswith("camera/LiDAR error, not in printfarm's table") and "[0C00_4DEA]" in error
    assert "HMS_0701_0300_0002_0011: AMS warning, not in printfarm's table" in error


def test_a_cancel_stays_a_cancel_after_its_transient_code_clears():
    # pybambu models.py print_update: the cancel code lasts a couple of seconds, then print_error
    # is 0 while gcode_state stays FAILED until the next job.
    state = state_after(report(gcode_state="RUNNING", print_error=0), report(print_error=50348044),
                        report(gcode_state="FAILED"), report(print_error=0), report(nozzle_temper=30.0))
    assert state.normalised() == ("idle", "FAILED", None, "cancelled")


def test_failed_with_the_cancel_code_only_in_fail_reason_is_a_cancel():
    # newer firmware (the shape of ha-bambulab's MOCK-H2C.json): print_error 0, fail_reason kept
    state = state_after(report(gcode_state="FAILED", print_error=0, fail_reason="50348044"))
    assert state.normalised() == ("idle", "FAILED", None, "cancelled")


def test_failed_with_no_code_at_all_is_a_cancel_whose_code_cleared():
    # the shape of ha-bambulab's P1P.json: FAILED, print_error 0, no fail_reason, no HMS
    assert state_after(report(gcode_state="FAILED", print_error=0, hms=[])).normalised() == (
        "idle", "FAILED", None, "cancelled")


def test_a_real_failure_is_an_error_while_its_code_lasts_then_idle_still_failed():
    state = state_after(report(gcode_state="RUNNING"), report(gcode_state="FAILED", print_error=0x03008008))
    assert state.normalised() == ("error", "FAILED", "nozzle temperature malfunction [0300_8008]", "failed")
    state.merge(decode(report(print_error=0)))
    assert state.normalised() == ("idle", "FAILED", "nozzle temperature malfunction [0300_8008]", "failed")


def test_a_new_job_forgets_the_last_jobs_cancel():
    state = state_after(report(gcode_state="RUNNING"), report(gcode_state="FAILED", print_error=50348044),
                        report(print_error=0), report(gcode_state="PREPARE"), report(gcode_state="RUNNING"),
                        report(gcode_state="FAILED", print_error=0x03008008))
    assert state.normalised()[3] == "failed"


def test_a_pause_code_is_not_how_the_job_ended():
    state = state_after(report(gcode_state="RUNNING"), report(gcode_state="PAUSE", print_error=0x03008013),
                        report(gcode_state="FAILED", print_error=50348044), report(print_error=0))
    assert state.normalised() == ("idle", "FAILED", None, "cancelled")  # cancelled from the pause
    state = state_after(report(gcode_state="RUNNING"), report(gcode_state="PAUSE", print_error=0x03008013),
                        report(gcode_state="FAILED", print_error=0))
    assert "0300_8013" not in state.normalised()[2]


def test_a_job_seen_ending_without_any_code_is_a_failure_not_a_cancel():
    # A printer that stops a job by itself (BambuStudio #9786: nobody touched it, no HMS): no
    # cancel code came with the change to FAILED.
    state = state_after(report(gcode_state="RUNNING"), report(gcode_state="FAILED", print_error=0))
    assert state.normalised() == ("idle", "FAILED", "the printer ended the job without an error code "
                                  "(see its screen)", "failed")


@pytest.mark.parametrize("fields,expected", [
    ({"gcode_state": "INIT"}, ("idle", "INIT", None, None)),
    ({"gcode_state": "OFFLINE"}, ("offline", "OFFLINE", None, None)),
    ({"gcode_state": ""}, ("idle", "", None, None)),  # empty at power-on (pybambu takes it silently)
])
def test_power_on_states_are_not_unknown(fields, expected):
    assert state_after(report(**fields)).normalised() == expected


def test_no_gcode_state_yet_is_still_unreachable():
    assert state_after(report(nozzle_temper=20.0)).normalised()[0] == "unreachable"


def test_a_pause_with_a_code_carries_its_reason():
    assert state_after(report(gcode_state="PAUSE", print_error=0x03008003)).normalised() == (
        "paused", "PAUSE", "AI print monitoring detected spaghetti [0300_8003]", None)


def test_an_unknown_gcode_state_is_not_guessed():
    state, text, error, ended = state_after(report(gcode_state="CALIBRATING")).normalised()
    assert (state, ended) == ("unreachable", None) and "unknown gcode_state 'CALIBRATING'" in text


def test_numbers_as_strings_are_read_and_nonsense_is_none():
    state = state_after(report(mc_percent="57", mc_remaining_time="12", nozzle_temper="NaN", bed_temper=None,
                               layer_num="x", total_layer_num=100, chamber_temper=True))
    assert (state.progress(), state.time_left()) == (57.0, 720.0)
    assert state.temps(chamber=True) == {} and state.layers() == (None, 100)


def test_progress_is_clamped_and_zero_layers_mean_no_job():
    state = state_after(report(mc_percent=250, layer_num=0, total_layer_num=0))
    assert state.progress() == 100.0 and state.layers() == (None, None)


def test_the_chamber_temperature_only_where_a_sensor_exists():
    state = state_after(report(chamber_temper=31.5))
    assert state.temps(chamber=True) == {"chamber": (31.5, None)} and state.temps(chamber=False) == {}
    assert state.temps(chamber=None) == {"chamber": (31.5, None)}  # model unknown: a real-looking reading


def test_the_p1_a1_placeholder_is_no_reading_when_the_model_is_unknown():
    state = state_after(report(chamber_temper=5))
    assert state.temps(chamber=None) == {} and state.temps(chamber=False) == {}


def test_the_chamber_of_newer_firmware_is_unpacked_from_device_ctc():
    state = state_after(report(chamber_temper=5, device={"ctc": {"info": {"temp": 57 | 60 << 16}, "state": 0}}))
    assert state.temps(chamber=None) == {"chamber": (57.0, 60.0)}
    state.merge(decode(report(device={"extruder": {"info": [{"id": 0, "temp": 220 | 220 << 16}], "state": 1}})))
    assert state.temps(chamber=True)["chamber"] == (57.0, 60.0)  # a partial device report keeps ctc


def test_a_partial_extruder_report_updates_one_nozzle_and_keeps_the_other():
    state = state_after(report(device={"extruder": {"info": [{"id": 0, "temp": 38}, {"id": 1, "temp": 40}],
                                                    "state": 2}}),
                        report(device={"extruder": {"info": [{"id": 1, "temp": 225 | 225 << 16}]}}),
                        report(device={"extruder": {"state": 2 | 1 << 4}}))
    assert state.temps(chamber=False) == {"tool0": (38.0, 0.0), "tool1": (225.0, 225.0)}
    assert state.active_nozzle() == 1


def test_two_nozzles_are_two_tools_and_the_active_one_is_known():
    state = state_after(report(nozzle_temper=38.0, nozzle_target_temper=0, device={"extruder": {
        "info": [{"id": 0, "temp": 38}, {"id": 1, "temp": 225 | 225 << 16}], "state": 2 | 1 << 4}}))
    assert state.temps(chamber=False) == {"tool0": (38.0, 0.0), "tool1": (225.0, 225.0)}
    assert state.active_nozzle() == 1


@pytest.mark.parametrize("device", [5, {"ctc": 7, "extruder": {"info": "x"}}, {"extruder": {"info": [{"id": "a"}]}},
                                    {"ctc": {"info": {"temp": -3}}, "extruder": {"state": "x"}}])
def test_garbage_in_the_device_block_is_ignored(device):
    state = state_after(report(nozzle_temper=200.0, device={"extruder": {"info": [{"id": [1], "temp": 5}]}}),
                        report(nozzle_temper=200.0, device=device))
    assert state.temps(chamber=None) == {"tool0": (200.0, None)} and state.active_nozzle() is None


def test_job_identity_from_cloud_task_ids_else_from_the_start_time():
    assert state_after(report(task_id="6417", subtask_id="6418", gcode_start_time="1790000000")).job_id() == \
        "task:6417/6418"
    assert state_after(report(task_id="0", subtask_id="0", gcode_start_time="1790000000")).job_id() == \
        "start:1790000000"
    assert state_after(report(task_id="", gcode_start_time="0")).job_id() is None


def test_file_is_the_job_name_else_the_gcode_file_name():
    assert state_after(report(subtask_name="bracket_v3", gcode_file="/data/x.gcode")).file() == "bracket_v3"
    assert state_after(report(subtask_name="", gcode_file="/data/Metadata/plate_2.gcode")).file() == "plate_2.gcode"


def test_codes_are_written_the_way_bambu_writes_them():
    assert errors.print_error_code(50348044) == "0300_400C"
    assert errors.hms_code(0x03000100, 0x00010001) == "HMS_0300_0100_0001_0001"


def test_the_fake_p1_sends_only_what_changed():
    before = idle_print_object()
    assert changed(before, {**before, "mc_percent": 5}) == {"mc_percent": 5}
    assert changed(before, before) == {}

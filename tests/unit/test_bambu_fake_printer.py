"""The fake Bambu printer sends what the public record says real ones send.

Documented shapes (OpenBambuAPI mqtt.md, "pushing.pushall"/"print.push_status") and a P1S
partial report captured in greghesp/ha-bambulab issue #174. The types are the documented
ones, quirks included: error code as a string, temperatures as floats. No captured report
carries gcode_start_time, so the fakes send none for LAN jobs either.
"""

from devkit.pipeline import wait_for
from devkit.sim.faces.bambu_printer import FakeBambuPrinter

DOCUMENTED_TYPES = {
    "gcode_state": str, "mc_percent": int, "mc_remaining_time": int, "layer_num": int, "total_layer_num": int,
    "nozzle_temper": float, "nozzle_target_temper": float, "bed_temper": float, "bed_target_temper": float,
    "chamber_temper": float, "subtask_name": str, "gcode_file": str, "print_error": int,
    "mc_print_error_code": str, "hms": list, "task_id": str, "subtask_id": str,
    "command": str, "sequence_id": str, "wifi_signal": str, "ams": dict, "upload": dict, "ipcam": dict,
    "xcam": dict, "lights_report": list, "spd_lvl": int, "spd_mag": int, "mc_print_stage": str,
}


class Wire:
    def __init__(self):
        self.sent = []

    def publish(self, serial, report):
        self.sent.append((serial, report))


def test_an_x1_reports_the_whole_object_with_the_documented_types():
    wire = Wire()
    printer = FakeBambuPrinter(wire, "00M09A350100123", "X1")
    printer.start("bracket", layers=80)
    serial, report = wire.sent[-1]
    body = report["print"]
    assert serial == "00M09A350100123" and set(report) == {"print"}
    assert {k: type(body[k]) for k in DOCUMENTED_TYPES} == DOCUMENTED_TYPES
    assert body["command"] == "push_status" and body["gcode_state"] == "PREPARE"
    assert len(body["ams"]["ams"][0]["tray"]) == 4


def test_a_p1_reports_only_what_changed_like_the_captured_one():
    wire = Wire()
    printer = FakeBambuPrinter(wire, "01P00A000000001", "P1")
    printer.update(nozzle_temper=28.78125)
    assert wire.sent[-1][1] == {"print": {"nozzle_temper": 28.78125, "command": "push_status", "msg": 1,
                                          "sequence_id": "1"}}
    printer.update(nozzle_temper=28.78125)  # nothing changed: nothing sent
    assert len(wire.sent) == 1


def test_pushall_is_answered_with_the_whole_object_and_counted_even_when_silent():
    wire = Wire()
    printer = FakeBambuPrinter(wire, "01P00A000000001", "P1")
    printer.answer({"pushing": {"sequence_id": "1", "command": "pushall", "version": 1, "push_target": 1}})
    assert printer.pushalls == 1 and wire.sent[-1][1]["print"]["msg"] == 0
    assert set(DOCUMENTED_TYPES) <= set(wire.sent[-1][1]["print"])
    printer.stall()
    printer.answer({"pushing": {"command": "pushall"}})
    printer.heartbeat()
    assert printer.pushalls == 2 and len(wire.sent) == 1
    printer.answer({"pushing": {"command": "start"}})
    printer.answer("garbage")
    assert printer.pushalls == 2


def test_a_cancel_and_a_failure_carry_the_codes_a_printer_sends():
    wire = Wire()
    printer = FakeBambuPrinter(wire, "00M09A350100123", "X1")
    printer.cancel()
    assert wire.sent[-1][1]["print"]["print_error"] == 50348044
    printer.fail(0x03008008, [(0x03000200, 0x00010003)])
    body = wire.sent[-1][1]["print"]
    assert body["gcode_state"] == "FAILED" and body["hms"] == [{"attr": 0x03000200, "code": 0x00010003}]


def test_a_lan_job_has_task_id_0_and_no_start_time():
    wire = Wire()
    printer = FakeBambuPrinter(wire, "01P00A000000001", "P1P")
    printer.start("bracket")
    body = wire.sent[-1][1]["print"]  # a P1: only what changed
    assert body["subtask_name"] == "bracket" and "task_id" not in body and "gcode_start_time" not in body
    assert printer.state["task_id"] == "0" and "gcode_start_time" not in printer.state


def test_the_cancel_code_clears_after_a_couple_of_seconds_and_failed_stays():
    wire = Wire()
    printer = FakeBambuPrinter(wire, "00M09A350100123", "X1C", cancel_code_for=0.05)
    printer.start("bracket")
    printer.cancel()
    assert wire.sent[-1][1]["print"]["print_error"] == 50348044
    wait_for(lambda: printer.state["print_error"] == 0, 5, "the code to clear")
    assert printer.state["gcode_state"] == "FAILED" and printer.state["fail_reason"] == "50348044"
    assert wire.sent[-1][1]["print"]["print_error"] == 0  # the X1C reports it (whole object)


def test_an_idle_a1_dozes_until_asked_to_start_pushing():
    wire = Wire()
    printer = FakeBambuPrinter(wire, "03900A000000001", "A1")
    printer.doze()
    printer.heartbeat()
    assert wire.sent == []
    printer.answer({"pushing": {"sequence_id": "1", "command": "start"}})
    assert printer.starts == 1 and wire.sent[-1][1]["print"]["chamber_temper"] == 5
    printer.heartbeat()
    assert len(wire.sent) == 2  # reporting again


def test_an_h2d_reports_the_printing_nozzle_in_its_extruder_list():
    wire = Wire()
    printer = FakeBambuPrinter(wire, "09400A000000001", "H2D")
    printer.start("sign", nozzle=225.0)
    printer.progress(5, 2, 30, nozzle=224.0, bed=65.0)
    device = printer.state["device"]
    assert device["extruder"]["info"][1]["temp"] == 224 | 225 << 16  # the left nozzle (id 1) prints
    assert printer.state["nozzle_temper"] == 38.0  # top level: the idle one, as the real H2D

"""The fake Bambu printer sends what the public record says real ones send.

Documented shapes (OpenBambuAPI mqtt.md, "pushing.pushall"/"print.push_status") and a P1S
partial report captured in greghesp/ha-bambulab issue #174. The types are the documented
ones, quirks included: error code and start time as strings, temperatures as floats.
"""

from devkit.sim.faces.bambu_printer import FakeBambuPrinter

DOCUMENTED_TYPES = {
    "gcode_state": str, "mc_percent": int, "mc_remaining_time": int, "layer_num": int, "total_layer_num": int,
    "nozzle_temper": float, "nozzle_target_temper": float, "bed_temper": float, "bed_target_temper": float,
    "chamber_temper": float, "subtask_name": str, "gcode_file": str, "print_error": int,
    "mc_print_error_code": str, "hms": list, "task_id": str, "subtask_id": str, "gcode_start_time": str,
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

"""The shapes of a Bambu Lab printer's reports, for the fake printers.

Field names, nesting and JSON types follow the documented report (OpenBambuAPI, mqtt.md,
"pushing.pushall" and "print.push_status", https://github.com/Doridian/OpenBambuAPI) and
reports captured from printers in public issue threads (greghesp/ha-bambulab #174: a P1S's
partial report ``{"print": {"nozzle_temper": 28.78125, "command": "push_status", "msg": 1,
"sequence_id": "53856"}}``; #176: a cancel shows as error 0300 400C). Written here from those
descriptions; nothing copied. The quirks kept on purpose because clients trip on them: numbers
sent as strings (``mc_print_error_code``, fan speeds), temperatures as
floats, ``mc_remaining_time`` in minutes, ids "0" for jobs not sent through Bambu's cloud.
"""

from __future__ import annotations

import copy
import json
from importlib import resources


def _tray(index: int, material: str, colour: str) -> dict:
    return {"id": str(index), "remain": 80, "tag_uid": "0000000000000000", "tray_color": colour,
            "tray_diameter": "1.75", "tray_id_name": "", "tray_info_idx": "GFA00", "tray_sub_brands": "",
            "tray_type": material, "tray_uuid": "0" * 32, "tray_weight": "1000", "nozzle_temp_max": "240",
            "nozzle_temp_min": "190", "bed_temp": "35", "bed_temp_type": "1", "drying_temp": "55",
            "drying_time": "8", "cols": [colour], "xcam_info": "0" * 24}


def model_report(model: str) -> dict:
    """The ``print`` object of ``bambu_models/<model>.json`` (A1, P1P, X1C, H2D, H2S, P2S)."""
    text = resources.files("devkit.sim.faces").joinpath(f"bambu_models/{model.upper()}.json").read_text()
    return json.loads(text)["print"]


def packed(current: int, target: int) -> int:
    """A temperature as newer firmware packs it: current in the low 16 bits, target in the high."""
    return current & 0xFFFF | (target & 0xFFFF) << 16


def idle_print_object() -> dict:
    """The whole ``print`` object of an idle printer with one AMS, as pushall answers it."""
    return copy.deepcopy(_IDLE)


_IDLE = {
    "ams": {"ams": [{"id": "0", "humidity": "4", "temp": "22.7",
                     "tray": [_tray(0, "PLA", "000000FF"), _tray(1, "PLA", "DFE2E3FF"),
                              _tray(2, "PETG", "F95959FF"), _tray(3, "PLA", "2850E0FF")]}],
            "ams_exist_bits": "1", "insert_flag": True, "power_on_flag": False, "tray_exist_bits": "f",
            "tray_is_bbl_bits": "f", "tray_now": "255", "tray_pre": "255", "tray_read_done_bits": "f",
            "tray_reading_bits": "0", "tray_tar": "255", "version": 4},
    "ams_rfid_status": 6, "ams_status": 0, "aux_part_fan": True,
    "bed_target_temper": 0.0, "bed_temper": 24.0, "big_fan1_speed": "0", "big_fan2_speed": "0",
    "chamber_temper": 24.0, "command": "push_status", "cooling_fan_speed": "0", "fail_reason": "0",
    "fan_gear": 0, "filam_bak": [], "force_upgrade": False, "gcode_file": "", "gcode_file_prepare_percent": "0",
    "gcode_state": "IDLE", "heatbreak_fan_speed": "0", "hms": [], "home_flag": 0,
    "hw_switch_state": 1,
    "ipcam": {"ipcam_dev": "1", "ipcam_record": "enable", "resolution": "1080p", "timelapse": "disable"},
    "layer_num": 0, "lifecycle": "product",
    "lights_report": [{"mode": "on", "node": "chamber_light"}, {"mode": "off", "node": "work_light"}],
    "maintain": 3, "mc_percent": 0, "mc_print_error_code": "0", "mc_print_stage": "1", "mc_print_sub_stage": 0,
    "mc_remaining_time": 0, "mess_production_state": "active", "nozzle_diameter": "0.4",
    "nozzle_target_temper": 0.0, "nozzle_temper": 24.0, "online": {"ahb": False, "rfid": False, "version": 9},
    "print_error": 0, "print_gcode_action": 0, "print_real_action": 0, "print_type": "", "profile_id": "",
    "project_id": "", "queue_number": 0, "sdcard": True, "spd_lvl": 2, "spd_mag": 100, "stg": [],
    "stg_cur": -1, "subtask_id": "", "subtask_name": "", "task_id": "", "total_layer_num": 0,
    "upgrade_state": {"ahb_new_version_number": "", "ams_new_version_number": "", "consistency_request": False,
                      "dis_state": 0, "err_code": 0, "force_upgrade": False, "message": "", "module": "null",
                      "new_version_state": 2, "ota_new_version_number": "", "progress": "0", "sequence_id": 0,
                      "status": "IDLE"},
    "upload": {"file_size": 0, "finish_size": 0, "message": "Good", "oss_url": "", "progress": 0,
               "sequence_id": "0903", "speed": 0, "status": "idle", "task_id": "", "time_remaining": 0,
               "trouble_id": ""},
    "vt_tray": {**_tray(254, "", "00000000"), "id": "254"},
    "wifi_signal": "-45dBm",
    "xcam": {"allow_skip_parts": False, "buildplate_marker_detector": True, "first_layer_inspector": True,
             "halt_print_sensitivity": "medium", "print_halt": True, "printing_monitor": True,
             "spaghetti_detector": True},
    "xcam_status": "0",
}


def envelope(print_fields: dict, sequence: int, partial: bool) -> dict:
    """A report as published: ``msg`` 1 marks a partial (P1/A1) report, as captured."""
    return {"print": {**print_fields, "command": "push_status", "msg": 1 if partial else 0,
                      "sequence_id": str(sequence)}}


def changed(before: dict, after: dict) -> dict:
    """The top-level fields that differ: what a P1 or A1 sends."""
    return {key: value for key, value in after.items() if before.get(key) != value}

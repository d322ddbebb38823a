"""A Klipper job's material and the printer's capabilities from Moonraker's answers, garbage included."""

from agent.printers.moonraker_info import capabilities, estimate, queue_files, queue_info
from agent.printers.moonraker_material import material_of
from agent.printers.moonraker_view import MoonrakerView
from common.protocol import MaterialUse, Tool

META = {"filament_total": 2000.0, "filament_weight_total": 6.0, "filament_type": "PETG",
        "filament_colors": ["#FF8000"], "estimated_time": 3723.0}


def test_measured_mm_gets_the_slicers_type_colour_and_grams_per_mm():
    assert material_of(META, 500.0) == (MaterialUse(source="measured", type="PETG", colour="#FF8000", grams=1.5,
                                                    mm=500.0),)


def test_before_anything_is_measured_the_slicers_figures_are_sent_as_they_are():
    assert material_of(META, 0.0) == (MaterialUse(source="slicer", type="PETG", colour="#FF8000", grams=6.0,
                                                  mm=2000.0),)
    assert material_of({}, None) is None
    assert material_of(None, 12.5) == (MaterialUse(source="measured", mm=12.5),)  # no metadata: no grams


def test_several_filaments_used_are_the_slicers_per_tool_and_unused_ones_are_left_out():
    meta = {"filament_weights": [2.5, 0.0, 1.25], "filament_type": '["PLA", "PETG", "TPU"]',
            "filament_colors": ["#000000", "#FFFFFF", "blue"], "filament_total": 900.0}
    assert material_of(meta, 880.0) == (MaterialUse(source="slicer", tool=0, type="PLA", colour="#000000", grams=2.5),
                                        MaterialUse(source="slicer", tool=2, type="TPU", grams=1.25))


def test_one_used_filament_of_several_is_that_tools_measured_material():
    meta = {"filament_weights": [0.0, 3.0], "filament_type": '["PLA", "ASA"]', "filament_total": 1000.0,
            "filament_weight_total": 3.0}
    assert material_of(meta, 100.0) == (MaterialUse(source="measured", tool=1, type="ASA", grams=0.3, mm=100.0),)


def test_garbage_metadata_gives_what_is_sound():
    meta = {"filament_total": "lots", "filament_weight_total": -4, "filament_type": "[not json",
            "filament_colors": "red", "filament_weights": "x"}
    assert material_of(meta, float("nan")) is None
    assert material_of(meta, 10.0) == (MaterialUse(source="measured", mm=10.0),)


def test_capabilities_from_configfile_and_toolhead():
    status = {"toolhead": {"axis_minimum": [-5.0, 0.0, -2.0, 0.0], "axis_maximum": [250.0, 210.0, 218.0, 0.0]},
              "configfile": {"settings": {"extruder1": {"nozzle_diameter": 0.8}, "extruder": {"nozzle_diameter": 0.4},
                                          "heater_generic chamber_heater": {}, "extruder_stepper belt": {}}}}
    assert capabilities(status) == {"volume": [255.0, 210.0, 220.0],
                                    "tools": [Tool(nozzle_mm=0.4), Tool(nozzle_mm=0.8)], "enclosed": True}
    assert capabilities({"toolhead": {"axis_maximum": "x"}, "configfile": []}) == {
        "volume": None, "tools": [], "enclosed": None}


def test_the_queue_counts_its_jobs_and_their_time_only_when_every_file_has_an_estimate():
    files = queue_files({"queued_jobs": [{"filename": "a.gcode"}, {"filename": "b.gcode"}, "junk"]})
    assert files == ["a.gcode", "b.gcode"]
    assert queue_info(files, {"a.gcode": 60.0, "b.gcode": 30.5}) == {"queued_jobs": 2, "queued_s": 90.5}
    assert queue_info(files, {"a.gcode": 60.0, "b.gcode": None}) == {"queued_jobs": 2, "queued_s": None}
    assert queue_info([], {}) == {"queued_jobs": 0, "queued_s": 0.0}
    assert queue_files(None) is None and estimate({"estimated_time": -1}) is None


def test_the_view_puts_the_history_entrys_material_on_the_job_and_its_past_entry():
    view = MoonrakerView()
    view.answered("ready")
    entry = {"job_id": "00000A", "filename": "cube.gcode", "status": "in_progress", "start_time": 1_790_000_000.0,
             "metadata": META}
    view.history_loaded([entry])
    view.subscribed({"webhooks": {"state": "ready"},
                     "print_stats": {"state": "printing", "filename": "cube.gcode", "filament_used": 500.0}})
    view.capabilities, view.queue = {"volume": [1.0, 2.0, 3.0]}, {"queued_jobs": 1, "queued_s": 5.0}
    snap = view.snapshot(1_790_000_010_000)
    assert snap.material == (MaterialUse(source="measured", type="PETG", colour="#FF8000", grams=1.5, mm=500.0),)
    assert snap.info == {"volume": [1.0, 2.0, 3.0], "queued_jobs": 1, "queued_s": 5.0}
    view.history_changed({"action": "finished", "job": {**entry, "status": "completed", "end_time": 1_790_000_020.0,
                                                        "filament_used": 1900.0}})
    (past,) = view.snapshot(1_790_000_030_000).history
    assert past.material == (MaterialUse(source="measured", type="PETG", colour="#FF8000", grams=5.7, mm=1900.0),)


def test_without_its_history_entry_yet_a_jobs_material_is_not_known():
    view = MoonrakerView()
    view.answered("ready")
    view.history_loaded([])
    view.subscribed({"webhooks": {"state": "ready"},
                     "print_stats": {"state": "printing", "filename": "new.gcode", "filament_used": 3.0}})
    assert view.snapshot(1_790_000_010_000).material is None


def test_spoolmans_active_spool_is_the_first_extruders_material_and_garbage_is_none():
    from agent.printers.moonraker_info import loaded_spool, with_spool

    answer = {"response": {"id": 3, "filament": {"material": "PETG-CF", "color_hex": "2B2B2B"}}, "error": None}
    spool = loaded_spool(answer)
    assert spool == {"material": "PETG-CF", "colour": "#2B2B2B"}
    caps = {"volume": [1.0, 2.0, 3.0], "tools": [Tool(nozzle_mm=0.6), Tool(nozzle_mm=0.4)]}
    assert with_spool(caps, spool)["tools"] == [Tool(nozzle_mm=0.6, material="PETG-CF", colour="#2B2B2B"),
                                                Tool(nozzle_mm=0.4)]
    assert with_spool({}, spool) == {"tools": [Tool(material="PETG-CF", colour="#2B2B2B")]}
    for garbage in (None, {"response": None, "error": {"status_code": 503}}, {"response": {"filament": {"material": 5}}},
                    {"response": {"filament": {"material": "PLA", "color_hex": "red"}}}):
        assert loaded_spool(garbage) in (None, {"material": "PLA", "colour": None})

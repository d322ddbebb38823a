"""Moonraker's frames -> snapshots, for what batch-mode Klipper cannot show.

The frames have the shape Moonraker 0.11 sends (``printer.objects.subscribe`` results and
``notify_status_update`` / ``notify_history_changed`` params, as recorded from the real server in
tests/integration/test_moonraker.py); the values are those of a real printer: temperatures,
slicer progress from M73, an MCU error, a board switched off, a config error.
"""

from agent.printers.moonraker_view import MoonrakerView, printer_state

SUBSCRIBED = {
    "print_stats": {"filename": "", "total_duration": 0.0, "print_duration": 0.0, "filament_used": 0.0,
                    "state": "standby", "message": "", "info": {"total_layer": None, "current_layer": None}},
    "virtual_sdcard": {"progress": 0.0, "is_active": False},
    "display_status": {"progress": 0.0},
    "extruder": {"temperature": 24.6, "target": 0.0},
    "heater_bed": {"temperature": 23.9, "target": 0.0},
    "webhooks": {"state": "ready", "state_message": "Printer is ready"},
}
PRINTING = {"print_stats": {"filename": "benchy.gcode", "state": "printing", "print_duration": 600.0,
                            "total_duration": 700.0, "filament_used": 812.4},
            "virtual_sdcard": {"progress": 0.31, "is_active": True}, "display_status": {"progress": 0.25},
            "extruder": {"temperature": 214.8, "target": 215.0}, "heater_bed": {"temperature": 59.7, "target": 60.0}}
ADDED = {"action": "added", "job": {"job_id": "00002A", "user": "anna", "filename": "benchy.gcode",
                                    "status": "in_progress", "start_time": 1_780_000_000.25, "end_time": None}}


def ready_view(history=()) -> MoonrakerView:
    view = MoonrakerView()
    view.answered("ready")
    view.history_loaded(list(history))
    view.subscribed(SUBSCRIBED)
    return view


def test_idle_printer_reads_idle_with_its_temperatures():
    snap = ready_view().snapshot(1_000)
    assert (snap.state, snap.state_text, snap.error) == ("idle", "standby", None)
    assert snap.temps == {"tool0": (24.6, 0.0), "bed": (23.9, 0.0)}
    assert snap.file is None and snap.progress is None and snap.history == ()


def test_printing_takes_the_slicers_m73_progress_and_estimates_the_time_left():
    view = ready_view()
    view.merge(PRINTING)
    view.history_changed(ADDED)
    snap = view.snapshot(2_000)
    assert (snap.state, snap.file, snap.job_id, snap.user) == (
        "printing", "benchy.gcode", "00002A@1780000000250", "anna")  # the id with its start: ids are reused
    assert snap.progress == 25.0  # display_status (M73), not the file position (31 %)
    assert snap.time_left == 1800.0 and snap.print_time == 600.0 and snap.filament_mm == 812.4
    assert snap.temps == {"tool0": (214.8, 215.0), "bed": (59.7, 60.0)}


def test_deltas_merge_field_by_field():
    view = ready_view()
    view.merge(PRINTING)
    view.merge({"print_stats": {"state": "paused"}, "extruder": {"temperature": 190.2}})
    snap = view.snapshot(3_000)
    assert (snap.state, snap.file, snap.temps["tool0"]) == ("paused", "benchy.gcode", (190.2, 215.0))


def test_an_mcu_shutdown_is_an_error_with_the_first_line_of_klippers_message():
    view = ready_view()
    view.klippy_changed("shutdown")
    view.merge({"webhooks": {"state": "shutdown", "state_message":
                             "MCU 'mcu' shutdown: Timer too close\nThis often indicates a host computer overload.\n"
                             "Once the underlying issue is corrected, use the\n\"FIRMWARE_RESTART\" command"}})
    snap = view.snapshot(4_000)
    assert (snap.state, snap.state_text, snap.error) == ("error", "shutdown", "MCU 'mcu' shutdown: Timer too close")


def test_a_board_switched_off_is_offline_and_a_config_error_is_an_error():
    off = printer_state("error", {"state": "error", "state_message": "mcu 'mcu': Unable to connect\nOnce the …"}, {})
    assert off == ("offline", "error", "mcu 'mcu': Unable to connect")
    bad = printer_state("error", {"state": "error", "state_message": "Option 'step_pin' in section 'stepper_x' must "
                                                                      "be specified"}, {})
    assert bad[0] == "error" and bad[2].startswith("Option 'step_pin'")
    assert printer_state("startup", {}, {})[:2] == ("offline", "startup")


def test_klipper_gone_is_offline_never_idle_and_drops_the_stale_objects():
    view = ready_view()
    view.merge(PRINTING)
    view.klippy_changed("disconnected")
    snap = view.snapshot(5_000)
    assert (snap.state, snap.error) == ("offline", "Klippy Disconnected")
    assert snap.temps == {} and snap.file is None


def test_a_print_error_leaves_the_printer_idle_with_klippers_message():
    view = ready_view()
    view.merge({"print_stats": {"filename": "bad.gcode", "state": "error",
                                "message": "Move out of range: 9999.000 20.000 0.300 [10.000]"}})
    snap = view.snapshot(6_000)
    assert (snap.state, snap.state_text, snap.error) == ("idle", "error", "Move out of range: 9999.000 20.000 0.300 "
                                                                            "[10.000]")


def test_history_entries_map_to_job_ends_without_moonrakers_stand_in_users():
    entries = [{"job_id": f"{i:06X}", "status": status, "filename": f"{status}.gcode", "user": user,
                "start_time": 1_780_000_000.0 + i * 100, "end_time": 1_780_000_050.5 + i * 100,
                "print_duration": 40.0, "filament_used": 120.5}
               for i, (status, user) in enumerate([
                   ("completed", "anna"), ("cancelled", "_TRUSTED_USER_"), ("error", "No User"),
                   ("klippy_shutdown", "_API_KEY_USER_"), ("klippy_disconnect", "erik"), ("interrupted", "erik"),
                   ("in_progress", "sara")])]
    view = ready_view(reversed(entries))  # Moonraker lists newest first
    history = view.snapshot(7_000).history
    assert [(p.job_id.split("@")[0], p.kind, p.user) for p in history] == [
        ("000000", "done", "anna"), ("000001", "cancelled", None), ("000002", "failed", None),
        ("000003", "failed", None), ("000004", "failed", "erik"), ("000005", "failed", "erik")]
    first = history[0]
    assert (first.started_ts, first.ended_ts, first.print_time, first.filament_mm, first.error) == (
        1_780_000_000_000, 1_780_000_050_500, 40.0, 120.5, None)
    assert history[4].error == "Klippy Disconnected during the print"
    assert history[5].error == "interrupted: Moonraker restarted during the print"
    assert view.latest["status"] == "in_progress"


def test_a_finished_error_job_carries_klippers_message_while_print_stats_shows_it():
    view = ready_view()
    view.merge({"print_stats": {"filename": "bad.gcode", "state": "error", "message": "Move out of range: 1 2 3 [4]"}})
    view.history_changed({"action": "finished", "job": {"job_id": "000009", "status": "error", "user": "anna",
                                                       "filename": "bad.gcode", "start_time": 1_780_000_000.0,
                                                       "end_time": 1_780_000_001.0}})
    (failed,) = view.snapshot(8_000).history
    assert (failed.kind, failed.error, failed.user) == ("failed", "Move out of range: 1 2 3 [4]", "anna")


def test_without_a_history_print_stats_says_how_the_job_ended():
    view = MoonrakerView()
    view.answered("ready")
    view.history_loaded(None)
    view.subscribed(SUBSCRIBED)
    view.merge({"print_stats": {"filename": "cube.gcode", "state": "cancelled"}})
    snap = view.snapshot(9_000)
    assert (snap.history, snap.ended, snap.state) == (None, "cancelled", "idle")


def test_a_lost_connection_is_unreachable_with_the_reason():
    view = ready_view()
    view.lost("connection refused")
    snap = view.snapshot(10_000)
    assert (snap.state, snap.error, snap.temps) == ("unreachable", "connection refused", {})


def _entry(job_id, status, start, file="long.gcode", end=None):
    return {"job_id": job_id, "status": status, "filename": file, "user": "anna", "start_time": start,
            "end_time": end or start + 5, "print_duration": 4.0, "filament_used": 10.0}


def test_an_entry_moonraker_closed_as_it_stopped_waits_for_klippers_own_end_of_the_job():
    for word in ("server_exit", "interrupted"):
        view = ready_view([_entry("000007", word, 1_780_000_000.0)])
        view.merge({"print_stats": {"filename": "long.gcode", "state": "printing", "total_duration": 9.0}})
        snap = view.snapshot(1_780_000_010_000)
        assert snap.history == () and snap.job_id == "000007@1780000000000"  # the job goes on
        view.merge({"print_stats": {"state": "complete", "total_duration": 30.5, "print_duration": 28.0,
                                    "filament_used": 500.0}})
        (done,) = view.snapshot(1_780_000_031_000).history
        assert (done.job_id, done.kind, done.ended_ts, done.print_time, done.filament_mm) == (
            "000007@1780000000000", "done", 1_780_000_030_500, 28.0, 500.0)
    # Klipper itself lost it (shut down): the entry's own word stands
    view = ready_view([_entry("000007", "server_exit", 1_780_000_000.0)])
    view.klippy_changed("shutdown")
    assert [p.kind for p in view.snapshot(1).history] == ["failed"]


def test_a_reused_job_id_is_another_job():
    view = ready_view([_entry("000001", "completed", 1_780_000_000.0)])
    view.history_changed({"action": "added", "job": _entry("000001", "in_progress", 1_780_000_100.0)})
    view.merge({"print_stats": {"filename": "long.gcode", "state": "printing"}})
    snap = view.snapshot(1_780_000_101_000)
    assert snap.job_id == "000001@1780000100000" != snap.history[-1].job_id


def test_a_klipper_shutdown_under_a_job_fails_it_at_once_and_its_history_entry_later_adds_nothing():
    from agent.jobs import JobTracker, Ledger

    view, tracker = ready_view(), JobTracker(ledger=Ledger())
    view.history_changed({"action": "added", "job": _entry("00000C", "in_progress", 1_780_000_000.0)})
    view.merge({"print_stats": {"filename": "long.gcode", "state": "printing"}})
    assert [e.kind for e in tracker.update(view.snapshot(1_780_000_001_000))] == ["started"]
    view.klippy_changed("shutdown")
    view.merge({"webhooks": {"state": "shutdown", "state_message": "Shutdown due to M112 command"}})
    events = tracker.update(view.snapshot(1_780_000_002_000))
    assert [(e.kind, e.error) for e in events] == [("disconnected", "Shutdown due to M112 command"),
                                                 ("failed", "Shutdown due to M112 command")]
    view.history_changed({"action": "finished", "job": _entry("00000C", "klippy_shutdown", 1_780_000_000.0)})
    assert tracker.update(view.snapshot(1_780_000_002_100)) == []


def test_history_times_are_read_on_the_agents_clock_when_moonrakers_is_off():
    from agent.jobs import JobTracker, Ledger

    # Moonraker's host is 90 s behind the agent's (a Pi without RTC before NTP): the frames it
    # stamps say so, each a few ms late; its history then reads 90 s later, on the agent's clock.
    view, tracker = ready_view(), JobTracker(ledger=Ledger())
    tracker.update(view.snapshot(1_780_000_090_000))
    for late_ms, sent in ((40, 1_780_000_000.0), (3, 1_780_000_001.0), (15, 1_780_000_002.0)):
        view.clock_sample(sent, int(sent * 1000) + 90_000 + late_ms)
    assert view.skew_ms == 90_003
    view.history_changed({"action": "added", "job": _entry("00000D", "in_progress", 1_780_000_000.0)})
    view.merge({"print_stats": {"filename": "long.gcode", "state": "printing"}})
    (started,) = tracker.update(view.snapshot(1_780_000_090_200))
    view.history_changed({"action": "finished", "job": _entry("00000D", "completed", 1_780_000_000.0,
                                                              end=1_780_000_030.0)})
    view.merge({"print_stats": {"state": "complete"}})
    (done,) = tracker.update(view.snapshot(1_780_000_120_100))
    assert (done.kind, done.ts, done.duration) == ("done", 1_780_000_120_003, 30.0)  # one clock: its own
    same_host = ready_view()
    same_host.clock_sample(1_780_000_000.0, 1_780_000_000_400)  # a slow trip, not a skew
    assert same_host.skew_ms == 0

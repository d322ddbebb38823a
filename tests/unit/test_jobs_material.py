"""A job's material and progress on its events, and the printer's info on its own channel."""

from __future__ import annotations

import json

import pytest

from agent.jobs import JobTracker, Ledger
from agent.printers.base import PastJob, Snapshot
from agent.service import JsonFile, PrinterWorker
from agent.sharing import Sharing
from common import protocol
from common.pseudonyms import Pseudonyms
from common.protocol import MaterialUse
from tests.unit.scripted_printer import ScriptedPrinter as Printer

PLA = MaterialUse(source="slicer", tool=0, type="PLA", mm=1200.0)
PETG = MaterialUse(source="slicer", tool=1, type="PETG", colour="#FF8800", grams=3.5, mm=1100.0)
T0 = 1_790_000_000  # seconds


def snap(ts, state, progress=None, material=None, ended=None, file="cube.gcode", **kw):
    return Snapshot(ts=(T0 + ts) * 1000, state=state, state_text=state, progress=progress, file=file,
                    material=material, ended=ended, **kw)


def events(tracker, *snaps):
    return [e for s in snaps for e in tracker.update(s)]


def test_started_and_done_carry_the_jobs_material_and_done_is_at_100_percent():
    started, done = events(JobTracker(), snap(0, "idle"), snap(1, "printing", 5, (PLA, PETG)),
                           snap(2, "printing", 80), snap(3, "idle", 0, ended="done"))
    assert (started.kind, started.material, started.progress) == ("started", (PLA, PETG), None)
    assert (done.kind, done.material, done.progress) == ("done", (PLA, PETG), 100.0)


def test_a_cancelled_job_ends_at_the_last_progress_seen_with_the_latest_material():
    later = MaterialUse(source="measured", mm=480.0)
    started, cancelled = events(JobTracker(), snap(0, "printing", 2), snap(1, "printing", 30, (PLA,)),
                                snap(2, "printing", 42.5, (later,)),
                                snap(3, "idle", 0, (), ended="cancelled"))  # a printer that resets progress
    assert started.material == ()  # not known at the start: the start event says nothing
    assert (cancelled.kind, cancelled.progress, cancelled.material) == ("cancelled", 42.5, (later,))


def test_a_lost_job_also_ends_with_its_material_and_progress():
    _, failed = events(JobTracker(), snap(0, "printing", 10, (PLA,)), snap(1, "printing", 20),
                       snap(2, "idle", None))
    assert (failed.kind, failed.progress, failed.material) == ("failed", 20.0, (PLA,))


def test_an_agent_restart_keeps_the_open_jobs_material(tmp_path):
    file = JsonFile(tmp_path / "job-p1.json")
    first = JobTracker(file.load(), file.save)
    events(first, snap(0, "printing", 10, (PLA,)), snap(1, "printing", 20, (PLA, PETG)))
    second = JobTracker(file.load(), file.save)  # a new agent process reads the saved job
    (done,) = events(second, snap(5, "idle", ended="done"))
    assert done.material == (PLA, PETG)


def test_a_saved_job_with_unreadable_material_keeps_the_job():
    saved = {"file": "cube.gcode", "user": None, "started_ts": T0 * 1000, "material": [{"source": "guessed"}]}
    (done,) = events(JobTracker(saved), snap(5, "idle", ended="done"))
    assert (done.kind, done.material, done.job_started) == ("done", (), T0 * 1000)


def test_a_saved_job_of_an_older_agent_without_material_still_loads():
    saved = {"file": "cube.gcode", "user": None, "started_ts": T0 * 1000, "progress": 40.0, "print_time": None,
             "filament_mm": None, "job_id": None}
    (failed,) = events(JobTracker(saved), snap(5, "idle", ended="cancelled"))
    assert (failed.kind, failed.progress, failed.material) == ("cancelled", 40.0, ())


def test_history_entries_carry_their_material_and_a_done_entry_is_at_100_percent():
    measured = (MaterialUse(source="measured", mm=900.0, type="PLA"),)
    t = JobTracker(ledger=Ledger({"ids": []}))
    entry = PastJob("00000C", "done", (T0 - 60) * 1000, (T0 - 30) * 1000, "away.gcode", material=measured)
    started, done = t.update(snap(0, "idle", file=None, history=(entry,)))
    assert started.material == measured and (done.material, done.progress) == (measured, 100.0)


def test_an_open_jobs_history_end_prefers_the_entrys_material_else_keeps_the_jobs():
    t = JobTracker(ledger=Ledger({"ids": []}))
    events(t, snap(0, "printing", 10, (PLA,), job_id="00000D", history=()),
           snap(1, "printing", 60, job_id="00000D", history=()))
    entry = PastJob("00000D", "cancelled", (T0 + 0) * 1000, (T0 + 2) * 1000, "cube.gcode")
    (cancelled,) = t.update(snap(3, "idle", file=None, history=(entry,)))
    assert (cancelled.kind, cancelled.material, cancelled.progress) == ("cancelled", (PLA,), 60.0)


# --- the worker: material on the wire, info on its channel ------------------------------------


class Cfg:
    id, site, type, interval = "p1", "lab", "octoprint", 5.0


def worker_for(snaps, policy="full"):
    sent = []
    worker = PrinterWorker(Cfg(), Printer(snaps), lambda topic, body, retain: sent.append((topic, json.loads(body), retain)),
                           "pi-1", sharing=Sharing(policy, "lab", Pseudonyms("0123456789abcdef0123456789abcdef")))
    for _ in snaps:
        worker.run_once()
    return sent


def on(sent, channel):
    return [(body, retain) for topic, body, retain in sent if topic.endswith("/" + channel)]


INFO = {"model": "Prusa MK4", "volume": [250.0, 210.0, 220.0],
        "tools": [protocol.Tool(nozzle_mm=0.4, material="PLA")], "enclosed": False}


@pytest.mark.parametrize("policy", ["full", "masked", "status"])
def test_material_and_progress_go_out_under_every_sharing_policy(policy):
    sent = worker_for([snap(0, "printing", 10, (PLA, PETG)), snap(1, "printing", 55.5),
                       snap(2, "idle", ended="failed")], policy)
    started, failed = (body for body, _ in on(sent, "event"))
    expect = [{"source": "slicer", "type": "PLA", "mm": 1200.0},
              {"source": "slicer", "tool": 1, "type": "PETG", "colour": "#FF8800", "grams": 3.5, "mm": 1100.0}]
    assert started["material"] == expect and failed["material"] == expect
    assert failed["progress"] == 55.5 and "progress" not in started
    for body, _ in on(sent, "event"):  # sound on the collector's side
        protocol.decode(protocol.parse_topic("printfarm/v1/lab/p1/event"), json.dumps(body).encode(), body["ts"])


def test_info_is_sent_retained_when_it_changes_and_not_when_it_does_not():
    queued = {**INFO, "queued_jobs": 2, "queued_s": 3600.0}
    sent = worker_for([snap(0, "idle", info=INFO), snap(1, "idle", info=dict(INFO)), snap(2, "idle"),
                       snap(3, "idle", info=queued), snap(4, "idle", info=queued)])
    infos = on(sent, "info")
    assert [retain for _, retain in infos] == [True, True]
    first, second = (body for body, _ in infos)
    assert (first["model"], first["volume"], first["tools"], first["enclosed"]) == (
        "Prusa MK4", [250.0, 210.0, 220.0], [{"nozzle_mm": 0.4, "material": "PLA"}], False)
    assert (second["queued_jobs"], second["queued_s"]) == (2, 3600.0)
    for body, _ in infos:
        msg = protocol.decode(protocol.parse_topic("printfarm/v1/lab/p1/info"), json.dumps(body).encode(), body["ts"])
        assert isinstance(msg, protocol.Info)


def test_a_restarted_agent_sends_the_info_again_though_unchanged():
    assert len(on(worker_for([snap(0, "idle", info=INFO)]), "info")) == 1
    assert len(on(worker_for([snap(0, "idle", info=INFO)]), "info")) == 1  # a new run: sent again


def test_info_carries_no_file_name_or_user_whatever_the_printer_puts_in_snapshot_info():
    leaky = {**INFO, "file": "secret_part.gcode", "user": "annika"}
    (body, _), = on(worker_for([snap(0, "printing", file="secret_part.gcode", user="annika", info=leaky)],
                               "full"), "info")
    assert "secret_part" not in json.dumps(body) and "annika" not in json.dumps(body)


def test_values_the_contract_refuses_are_left_out_and_the_rest_is_sent(caplog):
    odd = {"model": "M" * 90, "volume": [250.0, 0.0, 220.0], "enclosed": True,
           "tools": [protocol.Tool(nozzle_mm=9.0, material="PLA"), {"nozzle_mm": 0.6, "colour": "orange"}]}
    bad_material = (MaterialUse(source="slicer", grams=-3.0, mm=500.0, colour="red"), PLA)
    sent = worker_for([snap(0, "printing", 10, bad_material, info=odd), snap(1, "idle", ended="done")])
    (info, _), = on(sent, "info")
    assert info["model"] == "M" * 40 and "volume" not in info and info["enclosed"] is True
    assert info["tools"] == [{"material": "PLA"}, {"nozzle_mm": 0.6}]
    done = on(sent, "event")[-1][0]
    assert done["material"] == [{"source": "slicer", "mm": 500.0}, {"source": "slicer", "type": "PLA", "mm": 1200.0}]
    for channel in ("info", "event"):
        for body, _ in on(sent, channel):
            protocol.decode(protocol.parse_topic(f"printfarm/v1/lab/p1/{channel}"), json.dumps(body).encode(),
                            body["ts"])
    assert "left out" in caplog.text


def test_a_growing_measured_amount_is_saved_at_most_once_a_minute_a_new_material_at_once():
    saved = []
    t = JobTracker(save=saved.append)
    measured = [MaterialUse(source="measured", type="PLA", mm=float(mm)) for mm in range(1, 6)]
    events(t, snap(0, "printing", 1, (measured[0],)))
    after_start = len(saved)
    events(t, *(snap(5 * i, "printing", 1 + i, (measured[i],)) for i in range(1, 5)))  # 20 s of growth
    assert len(saved) == after_start  # not saved on every poll
    events(t, snap(61, "printing", 30, (MaterialUse(source="measured", type="PLA", mm=9.0),)))
    assert saved[-1]["material"] == [{"source": "measured", "type": "PLA", "mm": 9.0}]  # a minute on: saved
    events(t, snap(62, "printing", 31, (PLA, PETG)))
    assert saved[-1]["material"][1]["type"] == "PETG"  # another material: saved at once


def test_info_messages_are_numbered_apart_so_the_streams_seq_counts_only_telemetry_status_and_events():
    sent = worker_for([snap(0, "idle", info=INFO), snap(1, "printing", 5, (PLA,), info={**INFO, "queued_jobs": 1}),
                       snap(2, "idle", ended="done")])
    stream = sorted(body["seq"] for topic, body, _ in sent if not topic.endswith("/info"))
    assert stream == list(range(1, len(stream) + 1))  # what "nothing lost" checks count
    assert [body["seq"] for body, _ in on(sent, "info")] == [1, 2]

"""OctoPrint's printer profile and file analysis read into capabilities and material, garbage included."""

import logging

from agent.printers.octoprint import OctoPrint
from agent.printers.octoprint_profile import info_from_profiles, material_of
from common.configkit import Secret
from common.protocol import MaterialUse, Tool

DEFAULT = {"id": "_default", "name": "Default", "model": "Generic RepRap Printer", "default": True,
           "current": False, "heatedChamber": False,
           "volume": {"width": 200.0, "depth": 200.0, "height": 200.0, "formFactor": "rectangular"},
           "extruder": {"count": 1, "nozzleDiameter": 0.4, "sharedNozzle": False}}
DELTA = {"id": "kossel", "name": "Kossel XL", "model": "", "current": True, "heatedChamber": True,
         "volume": {"width": 250, "depth": 250, "height": 300, "formFactor": "circular"},
         "extruder": {"count": 2, "nozzleDiameter": 0.5}}


def test_the_current_profile_wins_over_the_default_and_a_circular_beds_width_is_its_diameter():
    info = info_from_profiles({"profiles": {"_default": DEFAULT, "kossel": DELTA}})
    assert info == {"model": "Kossel XL", "volume": [250.0, 250.0, 300.0],
                    "tools": [Tool(nozzle_mm=0.5), Tool(nozzle_mm=0.5)], "enclosed": True}


def test_octoprints_placeholders_are_no_model_and_an_unheated_chamber_says_nothing_of_an_enclosure():
    info = info_from_profiles({"profiles": {"_default": DEFAULT}})
    assert (info["model"], info["enclosed"], info["volume"]) == (None, None, [200.0, 200.0, 200.0])


def test_garbage_profiles_give_no_values_not_a_crash():
    assert info_from_profiles("nonsense") is None
    assert info_from_profiles({"profiles": {"a": {"current": False}, "b": {}}}) is None  # none chosen
    bad = {"current": True, "volume": {"width": "wide", "depth": -1}, "extruder": {"count": 1e9, "nozzleDiameter": "x"}}
    info = info_from_profiles({"profiles": {"x": bad}})
    assert info["volume"] is None and len(info["tools"]) == 16 and info["tools"][0].nozzle_mm is None


def test_material_is_the_analysed_length_per_tool_and_none_before_the_analysis():
    job = {"filament": {"tool1": {"length": 20.004, "volume": 0.1}, "tool0": {"length": 1000.5}, "tool2": {"length": 0},
                        "w": {"length": 5}, "tool3": "x"}}
    assert material_of(job) == (MaterialUse(source="slicer", tool=0, mm=1000.5),
                                MaterialUse(source="slicer", tool=1, mm=20.0))
    assert material_of({"filament": None}) is None and material_of({}) is None


class Client:
    """/api/job answers; /api/printerprofiles fails like a key without the permission."""

    session = None

    def __init__(self):
        self.profile_reads = 0

    def job_info(self):
        return {"state": "Operational", "job": {"file": {}}, "progress": {}}

    def printer(self, exclude=None):
        return {}

    def printer_profiles(self):
        self.profile_reads += 1
        raise RuntimeError("Reply for http://x/api/printerprofiles was not OK: Forbidden (403)")


def test_an_unreadable_profile_leaves_the_printer_watched_and_is_tried_again_only_when_due(caplog):
    caplog.set_level(logging.INFO)
    now, client = [1_790_000_000.0], Client()
    printer = OctoPrint("http://127.0.0.1:1", Secret("k"), client_factory=lambda *a: client, clock=lambda: now[0])
    snaps = [printer.poll(), printer.poll()]
    assert [s.state for s in snaps] == ["idle", "idle"] and snaps[0].info is None
    assert client.profile_reads == 1
    now[0] += 301
    printer.poll()
    assert client.profile_reads == 2
    assert caplog.text.count("printer profile is not readable") == 1


class SwitchingClient(Client):
    """OctoPrint disconnected, then connected with another profile (the connection names it)."""

    def __init__(self):
        super().__init__()
        self.state, self.nozzle = "Offline", 0.4

    def job_info(self):
        return {"state": self.state, "job": {"file": {}}, "progress": {}}

    def printer_profiles(self):
        self.profile_reads += 1
        return {"profiles": {"p": {**DEFAULT, "current": True, "extruder": {"count": 1, "nozzleDiameter": self.nozzle}}}}


def test_the_profile_is_read_again_when_octoprint_connects_to_the_printer():
    now, client = [1_790_000_000.0], SwitchingClient()
    printer = OctoPrint("http://127.0.0.1:1", Secret("k"), client_factory=lambda *a: client, clock=lambda: now[0])
    assert printer.poll().info["tools"] == [Tool(nozzle_mm=0.4)]
    client.state, client.nozzle = "Operational", 0.6
    now[0] += 10  # well before the next periodic read
    assert printer.poll().info["tools"] == [Tool(nozzle_mm=0.6)]
    printer.poll()
    assert client.profile_reads == 2  # connected all along since: not read again

"""A Bambu printer's trays, nozzles and model (capabilities.py) and a 3MF's slice_info
(slice_info.py), from reports and files made by hand; the FTPS side: test_bambu_material.py."""

from __future__ import annotations

import io
import zipfile

import pytest

from agent.printers.bambu import capabilities, slice_info
from agent.printers.bambu.ftps import candidates
from common.protocol import MaterialUse, Tool
from devkit.sim.faces.bambu_3mf import three_mf

# Shaped as ha-bambulab's MOCK-X1CMULTIAMS capture: two AMS, an empty tray, an AMS HT (id 128).
AMS = {"ams": [{"id": "0", "tray": [{"id": "0", "tray_type": "PLA", "tray_color": "000000FF"},
                                    {"id": "1"},
                                    {"id": "2", "tray_type": "PETG", "tray_color": "F95959FF"}]},
               {"id": "128", "tray": [{"id": "0", "tray_type": "PA-CF", "tray_color": "000000FF"}]}],
       "tray_now": "2"}
VALUES = {"ams": AMS, "vt_tray": {"id": "254", "tray_type": "TPU", "tray_color": "FFFFFF80"},
          "nozzle_diameter": "0.6", "nozzle_type": "hardened_steel"}


def test_trays_become_slots_and_the_nozzle_a_tool():
    fields = capabilities.info(VALUES, capabilities.model_of(None, "01P00A000000001"))
    assert fields["model"] == "P1S" and fields["enclosed"] is True and fields["volume"] == [256.0, 256.0, 256.0]
    assert fields["tools"] == [Tool(nozzle_mm=0.6, nozzle_type="hardened_steel")]
    assert fields["slots"] == [Tool(material="PLA", colour="#000000"), Tool(), Tool(material="PETG", colour="#F95959"),
                               Tool(material="PA-CF", colour="#000000"), Tool(material="TPU", colour="#FFFFFF")]


@pytest.mark.parametrize("tray_now, expected", [
    ("2", MaterialUse(source="slicer", type="PETG", colour="#F95959")),
    ("128", MaterialUse(source="slicer", type="PA-CF", colour="#000000")),
    ("254", MaterialUse(source="slicer", type="TPU", colour="#FFFFFF")),
    ("255", None), ("1", None), ("junk", None),
])
def test_the_tray_in_use_gives_the_jobs_type_and_colour(tray_now, expected):
    assert capabilities.in_use({**VALUES, "ams": {**AMS, "tray_now": tray_now}}) == expected


def test_a_printer_without_an_ams_prints_from_its_external_spool():
    assert capabilities.in_use({"vt_tray": VALUES["vt_tray"]}) == MaterialUse(source="slicer", type="TPU", colour="#FFFFFF")
    assert capabilities.in_use({"vt_tray": {"id": "254", "tray_type": ""}}) is None


def test_newer_firmware_lists_every_nozzle():
    values = {"device": {"nozzle": {"info": [{"diameter": 0.4, "id": 0, "type": "HS01"},
                                             {"diameter": 0.6, "id": 1, "type": "HH01"}]}}}
    assert capabilities.nozzles(values) == [Tool(nozzle_mm=0.4, nozzle_type="HS01"), Tool(nozzle_mm=0.6, nozzle_type="HH01")]


@pytest.mark.parametrize("values", [{}, {"ams": "x"}, {"ams": {"ams": [{"id": None, "tray": 5}]}},
                                    {"ams": {"ams": [{"id": "0", "tray": [{"id": "0", "tray_color": "zz"}]}]}},
                                    {"nozzle_diameter": "wide", "vt_tray": []}])
def test_garbage_in_the_report_gives_no_slots_and_no_crash(values):
    fields = capabilities.info(values, None)
    assert all(slot.material is None for slot in fields["slots"]) and capabilities.in_use(values) is None


FILAMENTS = [{"id": 1, "tray_info_idx": "GFA00", "type": "PLA", "color": "#000000", "used_m": "5.45", "used_g": "17.32"}]


def test_the_plate_of_gcode_file_is_the_one_read():
    archive = three_mf({1: [{**FILAMENTS[0], "used_g": "1.0"}], 3: FILAMENTS})
    assert slice_info.plate_of("/data/Metadata/plate_3.gcode") == 3
    assert slice_info.material(archive, 3) == (MaterialUse(source="slicer", tool=0, type="PLA", colour="#000000",
                                                           grams=17.32, mm=5450.0),)
    with pytest.raises(slice_info.Unreadable):
        slice_info.material(archive, None)  # two plates and no plate named: none is guessed


def _zip(config: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(slice_info.SLICE_INFO, config)
    return buffer.getvalue()


@pytest.mark.parametrize("archive", [b"not a zip", _zip("<config><plate>"), three_mf({}),
                                     _zip("<config/>")])
def test_a_broken_3mf_is_unreadable_not_a_crash(archive):
    with pytest.raises(slice_info.Unreadable):
        slice_info.material(archive, 1)


def test_garbage_amounts_are_left_out():
    archive = three_mf({1: [{**FILAMENTS[0], "used_g": "nan", "used_m": "-1"}, {**FILAMENTS[0], "id": "x"}]})
    assert slice_info.material(archive, 1) == (MaterialUse(source="slicer", tool=0, type="PLA", colour="#000000"),)


def test_where_the_3mf_is_looked_for():
    assert candidates("widget", "/data/Metadata/plate_1.gcode") == [
        "/widget.gcode.3mf", "/cache/widget.gcode.3mf", "/widget.3mf", "/cache/widget.3mf"]
    assert candidates("", "36mm.gcode.3mf") == ["/36mm.gcode.3mf", "/cache/36mm.gcode.3mf"]  # P1: in gcode_file
    assert candidates("bad\r\nDELE x", "") == []  # no command injection through a job's name

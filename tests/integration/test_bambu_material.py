"""A Bambu job's material: the AMS tray feeding the nozzle (type, colour) from the report
stream, and grams per filament from the job's 3MF, fetched over real implicit-TLS FTPS from the
stand-in (devkit.servers.bambu_ftps: the printer's certificate from the test CA, user bblp and
the access code) — and what goes wrong there never stops the printer's monitoring."""

from __future__ import annotations

import json
import logging
import socket

import msgspec
import pytest

from agent import config as agent_config
from agent.service import Agent
from common.protocol import MaterialUse, Tool
from devkit.pipeline import wait_for
from devkit.pki import issue, make_ca
from devkit.servers.bambu import BambuBroker
from devkit.servers.bambu_ftps import BambuFTPS
from devkit.servers import make_gcode
from devkit.sim import SimClock, Simulator
from devkit.sim.faces.bambu import BambuSetup
from devkit.sim.faces.bambu_3mf import three_mf
from devkit.sim.faces.bambu_printer import BambuLink
from devkit.sim.server import PrinterSpec
from tests.integration.test_bambu import Watcher, settings
from tests.integration.test_prusalink_material import Heard

pytestmark = pytest.mark.integration

X1 = "00M09A350100123"
FILAMENTS = [{"id": 1, "tray_info_idx": "GFA00", "type": "PLA", "color": "#000000", "used_m": "5.45", "used_g": "17.32"},
             {"id": 3, "tray_info_idx": "GFG00", "type": "PETG", "color": "#F95959", "used_m": "2.10", "used_g": "6.71"}]
EXPECTED = (MaterialUse(source="slicer", tool=0, type="PLA", colour="#000000", grams=17.32, mm=5450.0),
            MaterialUse(source="slicer", tool=2, type="PETG", colour="#F95959", grams=6.71, mm=2100.0))
OTHER_PLATE = [{"id": 1, "tray_info_idx": "GFA00", "type": "PLA", "color": "#FFFFFF", "used_m": "1.0", "used_g": "3.0"}]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with BambuBroker(tmp_path_factory.mktemp("bambu"), [X1]) as broker:
        link = BambuLink(broker.host, broker.port, client_id="devkit-material")
        link.add(X1, "X1")
        link.heartbeats(0.2)
        yield broker, link
        link.close()


@pytest.fixture
def printer(lab):
    broker, link = lab
    fake = link.printers[X1]
    fake.idle()
    fake.feed_from(255)
    return broker, fake


def ftps_server(broker: BambuBroker, access_code: str | None = None, ca=None) -> BambuFTPS:
    """The printer's FTPS with its own certificate, or one from ``ca`` (an impostor)."""
    d = broker.dir
    cert, key = d / f"{X1}.crt", d / f"{X1}.key"
    if ca is not None:
        cert, key = d / "impostor.crt", d / "impostor.key"
        issue(ca, X1).write(cert, key)
    return BambuFTPS(cert, key, access_code or broker.endpoints[X1].access_code)


def watch(tmp_path, broker, ftps, printer_id="x1-material"):
    w = Watcher(settings(tmp_path, broker, X1, printer_id=printer_id, model="X1C", ftps_port=ftps.port))
    w.client.fetcher.retry_after = 0.2
    w.until(lambda s: s.state == "idle", "idle")
    return w


def test_grams_per_filament_come_from_the_jobs_3mf_over_tls_ftps(tmp_path, printer):
    broker, fake = printer
    with ftps_server(broker) as ftps:
        ftps.files["/widget.gcode.3mf"] = three_mf({1: FILAMENTS})
        w = watch(tmp_path, broker, ftps)
        try:
            fake.feed_from(2)  # AMS 0 tray 2: PETG F95959
            fake.start("widget")
            snap = w.until(lambda s: s.material and s.material[0].grams is not None, "grams from the 3MF")
            assert snap.material == EXPECTED
            assert ftps.retrieved == ["/widget.gcode.3mf"]
            assert ["USER", "PASS ****", "PBSZ", "PROT"] == ftps.commands[:4]  # the data channel in TLS too
            fake.finish()
            done = w.until(lambda s: s.state == "idle", "done")
            assert done.material == EXPECTED and w.kinds() == ["started", "done"]
            assert ftps.retrieved == ["/widget.gcode.3mf"]  # once per job
        finally:
            w.close()


def test_the_same_file_printed_again_is_read_again(tmp_path, printer):
    broker, fake = printer
    with ftps_server(broker) as ftps:
        ftps.files["/widget.gcode.3mf"] = three_mf({1: FILAMENTS[:1]})
        w = watch(tmp_path, broker, ftps, "x1-again")
        try:
            fake.start("widget")
            w.until(lambda s: s.material and s.material[0].grams == 17.32, "the first slicing's grams")
            fake.finish()
            w.until(lambda s: s.state == "idle", "done")
            ftps.files["/widget.gcode.3mf"] = three_mf({1: [{**FILAMENTS[0], "used_g": "20.00"}]})  # sliced anew
            fake.start("widget")
            w.until(lambda s: s.material and s.material[0].grams == 20.0, "the new slicing's grams")
            assert ftps.retrieved == ["/widget.gcode.3mf"] * 2
        finally:
            w.close()


def test_the_plate_printed_is_the_one_counted(tmp_path, printer):
    broker, fake = printer
    with ftps_server(broker) as ftps:
        ftps.files["/cache/two plates.3mf"] = three_mf({1: OTHER_PLATE, 2: FILAMENTS})
        w = watch(tmp_path, broker, ftps, "x1-plates")
        try:
            fake.start("two plates")
            fake.update(gcode_file="/data/Metadata/plate_2.gcode")
            snap = w.until(lambda s: s.material and s.material[0].grams is not None, "grams of plate 2")
            assert snap.material == EXPECTED
        finally:
            w.close()


def test_the_tray_in_use_gives_type_and_colour_and_the_trays_are_info_slots(tmp_path, printer):
    broker, fake = printer
    with ftps_server(broker) as ftps:  # no 3MF there: the job has no grams, only its tray
        w = watch(tmp_path, broker, ftps, "x1-trays")
        try:
            fake.feed_from(2)
            fake.start("unsliced")
            snap = w.until(lambda s: s.material is not None, "the tray's material")
            assert snap.material == (MaterialUse(source="slicer", tool=0, type="PETG", colour="#F95959"),)
            assert snap.info["model"] == "X1C" and snap.info["enclosed"] is True
            assert snap.info["volume"] == [256.0, 256.0, 256.0]
            assert snap.info["tools"] == [Tool(nozzle_mm=0.4)]
            assert snap.info["slots"] == [Tool(material="PLA", colour="#000000"), Tool(material="PLA", colour="#DFE2E3"),
                                          Tool(material="PETG", colour="#F95959"), Tool(material="PLA", colour="#2850E0")]
        finally:
            w.close()


@pytest.mark.parametrize("fault, words", [
    ("access code", "the printer refused the access code over FTPS (530) — check access_code_file"),
    ("certificate", "FTPS: TLS refused: the printer's certificate is not signed by the CA in ca_file"),
    ("no file", "the job's 3MF is not on the printer's storage (looked in / and /cache/)"),
    ("too large", ", over 100 bytes: not fetched"),
])
def test_an_ftps_failure_is_one_clear_line_and_the_printer_stays_monitored(tmp_path, printer, caplog, fault, words):
    broker, fake = printer
    server = ftps_server(broker, access_code="not-the-code" if fault == "access code" else None,
                         ca=make_ca("Impostor CA") if fault == "certificate" else None)
    with server as ftps, caplog.at_level(logging.INFO):
        if fault != "no file":
            ftps.files["/widget.gcode.3mf"] = three_mf({1: FILAMENTS})
        w = watch(tmp_path, broker, ftps, f"x1-{fault.replace(' ', '-')}")
        if fault == "too large":
            w.client.fetcher.max_bytes = 100
        try:
            fake.feed_from(0)
            fake.start("widget")
            wait_for(lambda: w.client.fetcher.fetches == 1, 15, "the fetch to give up")
            assert w.client.fetcher.attempts == (3 if fault == "no file" else 1)  # tried again only where it helps
            fake.progress(50, 10, 5, nozzle=220.0, bed=65.0)  # the printer's state still arrives
            w.until(lambda s: s.progress == 50.0, "50 %")
            fake.finish()
            snap = w.until(lambda s: s.state == "idle", "the end of the job")
            assert w.kinds() == ["started", "done"]
            assert snap.material == (MaterialUse(source="slicer", tool=0, type="PLA", colour="#000000"),)  # no grams
        finally:
            w.close()
    lines = [r.getMessage() for r in caplog.records if "3MF over FTPS" in r.getMessage()]
    assert len(lines) == 1 and words in lines[0], lines
    code = broker.endpoints[X1].access_code
    assert code not in caplog.text and "widget" not in caplog.text
    if fault == "certificate":
        assert "PASS ****" not in ftps.commands  # refused before the access code left


def test_through_the_agent_the_done_event_carries_the_3mf_grams(tmp_path, printer):
    """Agent -> broker: the uplink here is the stand-in Mosquitto's plain listener (any broker does)."""
    broker, fake = printer
    ftps = broker.ftps(X1)  # the broker's own FTPS for the printer, as a pipeline test would use it
    ftps.files["/cache/widget.3mf"] = three_mf({1: FILAMENTS})
    table = {"id": "x1-e2e", "type": "bambu", "host": broker.host, "port": broker.endpoints[X1].port,
             "serial": X1, "access_code_file": str(broker.access_code_file(X1)), "ca_file": str(broker.ca_path),
             "ftps_port": ftps.port, "interval": 0.5, "timeout": 0.5}
    agent = Agent(agent_config.from_dict({
        "agent": {"id": "pi-bambu-e2e", "site": "lab", "state_dir": str(tmp_path / "state")},
        "broker": {"host": broker.host, "port": broker.port}, "printers": [table]}))
    heard = Heard(broker, "x1-e2e")
    agent.start()
    try:
        wait_for(lambda: heard.of("info"), 10, "the info message")
        fake.feed_from(2)
        fake.start("widget")
        wait_for(lambda: agent.workers[0].printer.fetcher.fetches == 1, 10, "the 3MF fetched and read")
        fake.finish()
        done = wait_for(lambda: [e for e in heard.of("event") if e["kind"] == "done"], 20, "the done event")[0]
        assert done["material"] == [msgspec.to_builtins(m) for m in EXPECTED] and done["progress"] == 100
        info = heard.of("info")[-1]
        assert info["model"] == "X1C" and len(info["slots"]) == 4 and "widget" not in json.dumps(heard.of("info"))
    finally:
        agent.stop()
        heard.close()


def test_a_simulated_bambu_printers_job_has_its_tray_and_its_3mf_on_the_printers_storage(tmp_path, printer):
    """The simulator's Bambu face: the job's material on an AMS tray, its 3MF in the storage
    directory the broker's FTPS serves (the demo runs them in two processes, as here in two threads)."""
    broker, _ = printer
    serial = "00M0SIMULATED01"
    with BambuBroker(tmp_path / "sim-bambu", [serial]) as sim_broker:
        storage = sim_broker.ftps(serial)
        setup = BambuSetup(sim_broker.host, sim_broker.port, {"sim-x1": serial}, period=0.25,
                           storage={serial: str(storage.root)})
        sim = Simulator([PrinterSpec("sim-x1", "lab", "Bambu Lab X1C", api="bambu")], "unused", SimClock(speed=1.0),
                        auto=False, bambu=setup).start()
        table = {"id": "sim-x1", "type": "bambu", "host": sim_broker.host, "port": sim_broker.endpoints[serial].port,
                 "serial": serial, "access_code_file": str(sim_broker.access_code_file(serial)),
                 "ca_file": str(sim_broker.ca_path), "ftps_port": storage.port, "interval": 0.5, "timeout": 0.5}
        w = Watcher(agent_config.from_dict({"agent": {"id": "pi-sim", "site": "lab", "state_dir": str(tmp_path)},
                                            "printers": [table]}).printers[0])
        try:
            w.until(lambda s: s.state == "idle", "idle")
            sim.bambu.act("sim-x1", lambda p, now: p.print_file(now, "hook_PETG_.gcode", make_gcode(3000).encode(),
                                                                  user=None))
            snap = w.until(lambda s: s.material and s.material[0].grams, "grams from the simulated job's 3MF")
            job = sim.printers["sim-x1"].job
            grams = round(job.filament_mm * 3.14159265 * 0.875 ** 2 / 1000 * 1.27, 2)
            assert snap.material == (MaterialUse(source="slicer", tool=0, type="PETG", colour="#F95959",
                                                 grams=grams, mm=round(job.filament_mm, -1)),)
            assert storage.retrieved == ["/hook_PETG_.gcode.3mf"]
        finally:
            w.close()
            sim.stop()


def test_a_printer_whose_ftps_hangs_is_monitored_meanwhile_and_it_is_one_line(tmp_path, printer, caplog):
    """TCP accepted, then not a byte (the TLS handshake never comes): the report stream goes on."""
    broker, fake = printer
    silent = socket.create_server(("127.0.0.1", 0))  # listens; the kernel completes connects; never answers
    try:
        class Hung:
            port = silent.getsockname()[1]
        with caplog.at_level(logging.INFO):
            w = watch(tmp_path, broker, Hung, "x1-hung")
            try:
                fake.feed_from(0)
                fake.start("widget")
                wait_for(lambda: w.client.fetcher.busy, 5, "a fetch under way")
                fake.progress(30, 6, 20, nozzle=220.0, bed=65.0)
                w.until(lambda s: s.progress == 30.0, "30 % while the fetch hangs")
                assert w.client.fetcher.fetches == 0  # still hanging: the state did not wait for it
                wait_for(lambda: w.client.fetcher.fetches == 1, 20, "the fetch to give up")
            finally:
                w.close()
        lines = [r.getMessage() for r in caplog.records if "3MF over FTPS" in r.getMessage()]
        assert len(lines) == 1 and "no answer from 127.0.0.1" in lines[0], lines
    finally:
        silent.close()

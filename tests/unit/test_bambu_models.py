"""Each Bambu model's report shape through the adapter (the client's state and snapshot).

The shapes are ours, written from the structure of reports captured from real printers
(tools/devkit/sim/faces/bambu_models/README.md): where a model puts its temperatures, what a
cancel leaves behind, what a LAN job lacks. Each is read with the model configured and without.
"""

import json
from types import SimpleNamespace

import pytest

from agent import config as agent_config
from agent.printers.bambu.client import Bambu
from agent.printers.bambu.report import PrintState
from devkit.sim.faces.bambu_reports import model_report

# model -> (state, state_text, ended, file, job_id, temps)
EXPECTED = {
    "A1": ("idle", "IDLE", None, None, None, {"tool0": (26.25, 0.0), "bed": (27.5, 0.0)}),
    "P1P": ("idle", "FAILED", "cancelled", "fidget_set", None, {"tool0": (180.5, 0.0), "bed": (54.8125, 0.0)}),
    "X1C": ("idle", "FAILED", "cancelled", "Cable chain link", "task:731204518/731204519",
            {"tool0": (41.0, 0.0), "bed": (52.0, 0.0), "chamber": (29.0, None)}),
    "H2D": ("printing", "RUNNING", None, "dual_colour_sign", None,
            {"tool0": (38.0, 0.0), "tool1": (225.0, 225.0), "bed": (65.0, 65.0), "chamber": (36.0, None)}),
    "H2S": ("printing", "RUNNING", None, "pc_bracket", "task:508812336/508812336",
            {"tool0": (270.0, 270.0), "bed": (100.0, 100.0), "chamber": (57.0, 60.0)}),
    "P2S": ("printing", "RUNNING", None, "hinge_pin_x20", None,
            {"tool0": (219.0, 220.0), "bed": (55.0, 55.0), "chamber": (38.0, None)}),
}


def watching(tmp_path, model: str | None) -> Bambu:
    (tmp_path / "code").write_text("12345678")
    table = {"id": "bbl-01", "type": "bambu", "host": "127.0.0.1", "serial": "01P00A000000001",
             "access_code_file": str(tmp_path / "code"), "fingerprint": "00" * 32}
    if model:
        table["model"] = model
    cfg = agent_config.from_dict({"agent": {"id": "pi-1", "site": "lab", "state_dir": str(tmp_path)},
                                  "printers": [table]}).printers[0]
    return Bambu(cfg, clock=lambda: 1_790_000_000.0)


def feed(printer: Bambu, report: dict) -> None:
    message = SimpleNamespace(topic="device/01P00A000000001/report", payload=json.dumps(report).encode())
    printer._on_message(None, None, message)


@pytest.mark.parametrize("configured", [True, False], ids=["model-set", "model-unset"])
@pytest.mark.parametrize("model", sorted(EXPECTED))
def test_each_models_report_shape_reads_as_the_printer_means_it(tmp_path, model, configured):
    printer = watching(tmp_path, model if configured else None)
    feed(printer, {"print": model_report(model)})
    snap = printer.poll()
    assert (snap.state, snap.state_text, snap.ended, snap.file, snap.job_id, snap.temps) == EXPECTED[model]
    assert snap.error is None


def test_the_h2d_says_which_nozzle_prints():
    state = PrintState()
    state.merge({"device": model_report("H2D")["device"]})
    assert state.active_nozzle() == 1

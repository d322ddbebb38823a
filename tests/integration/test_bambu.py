"""The Bambu client against a real Mosquitto with TLS standing in for the printers' brokers.

devkit.servers.bambu.BambuBroker: one TLS listener per printer, a certificate from a test CA
named by the printer's serial, user bblp with the access code. Fake printers (X1: whole
reports; P1: only what changed) publish scripted report sequences and answer pushall.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from agent import config as agent_config
from agent.jobs import JobTracker
from agent.printers.bambu.client import Bambu
from devkit.pipeline import wait_for
from devkit.servers.bambu import BambuBroker
from devkit.pki import make_ca
from devkit.sim.faces.bambu_printer import BambuLink

pytestmark = pytest.mark.integration

X1, P1, A1, H2D = "00M09A350100123", "01P09C470200456", "03909D480300789", "09409E490400111"
SILENT = "no report for 1 s on an open connection, nor after asking for one; reconnecting"


@pytest.fixture
def lab(tmp_path):
    """Four printers' brokers in one Mosquitto, and their fake firmware (X1, P1, A1, H2D)."""
    with BambuBroker(tmp_path / "bambu", [X1, P1, A1, H2D]) as broker:
        link = BambuLink(broker.host, broker.port)
        link.add(X1, "X1", cancel_code_for=0.3)
        link.add(P1, "P1")
        link.add(A1, "A1")
        link.add(H2D, "H2D")
        link.heartbeats(0.2)
        yield broker, link
        link.close()


def settings(tmp_path: Path, broker: BambuBroker, at: str, printer_id: str = "bbl-1", **over):
    """The table for the printer ``at`` (a serial); ``over`` replaces keys, e.g. a wrong serial."""
    table = {"id": printer_id, "type": "bambu", "host": broker.host, "port": broker.endpoints[at].port,
             "serial": at, "access_code_file": str(broker.access_code_file(at)),
             "ca_file": str(broker.ca_path), "interval": 0.5, "timeout": 0.5}
    table.update(over)
    table = {k: v for k, v in table.items() if v is not None}
    return agent_config.from_dict({"agent": {"id": "pi-1", "site": "lab", "state_dir": str(tmp_path)},
                                   "printers": [table]}).printers[0]


class Watcher:
    """The client as the agent drives it: every change goes through a JobTracker."""

    def __init__(self, cfg, tracker: JobTracker | None = None, **kwargs):
        self.client = Bambu(cfg, **kwargs)
        self.tracker, self.events, self.seen = tracker or JobTracker(), [], []
        self._lock = threading.Lock()
        self.client.start(self.changed)

    def changed(self):
        snap = self.client.poll()
        with self._lock:
            self.seen.append(snap)
            self.events += self.tracker.update(snap)

    def until(self, predicate, what: str, timeout: float = 10.0):
        return wait_for(lambda: (lambda s: s if predicate(s) else None)(self.client.poll()), timeout, what,
                        interval=0.02)

    def states(self) -> list[str]:
        """The states it went through (a change of text or file alone repeats a state)."""
        with self._lock:
            states = [s.state for s in self.seen]
        return [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s]

    def kinds(self) -> list[str]:
        with self._lock:
            return [e.kind for e in self.events]

    def more_reports(self, n: int = 3) -> None:
        """Wait until the client has read n more reports: its loop has turned since."""
        start = self.client.reports
        wait_for(lambda: self.client.reports >= start + n, 10, f"{n} more reports", interval=0.02)

    def close(self):
        self.client.close()


@pytest.fixture
def watch():
    watchers = []

    def make(cfg, **kwargs) -> Watcher:
        watchers.append(Watcher(cfg, **kwargs))
        return watchers[-1]

    yield make
    for watcher in watchers:
        watcher.close()


def test_x1_full_reports_give_state_temperatures_layers_and_file(tmp_path, lab, watch):
    broker, link = lab
    w = watch(settings(tmp_path, broker, X1, model="X1C"))
    assert w.until(lambda s: s.state == "idle", "idle").state_text == "IDLE"
    link.printers[X1].start("gear_housing", layers=120, minutes=95, task_id="0", started=1_790_000_000)
    link.printers[X1].progress(25, 30, 70, nozzle=219.5, bed=64.75)
    snap = w.until(lambda s: s.progress == 25.0, "25 %")
    assert (snap.state, snap.state_text, snap.file, snap.layer, snap.layers) == (
        "printing", "RUNNING", "gear_housing", 30, 120)
    assert snap.temps == {"tool0": (219.5, 220.0), "bed": (64.75, 65.0), "chamber": (24.0, None)}
    assert snap.time_left == 70 * 60 and snap.job_id == "start:1790000000" and snap.user is None


def test_an_h2d_reports_the_nozzle_that_prints_and_its_chamber(tmp_path, lab, watch):
    broker, link = lab
    h2d = link.printers[H2D]
    w = watch(settings(tmp_path, broker, H2D, model="H2D"))
    w.until(lambda s: s.state == "idle", "idle")
    h2d.start("dual_colour_sign", nozzle=225.0)  # on the left nozzle (id 1); the right one idles
    h2d.progress(12, 20, 80, nozzle=224.0, bed=65.0)
    snap = w.until(lambda s: s.progress == 12.0, "printing")
    assert snap.temps["tool1"] == (224.0, 225.0) and snap.temps["tool0"] == (38.0, 0.0)
    assert snap.temps["chamber"] == (36.0, None)  # device.ctc, not a placeholder


def test_p1_partial_reports_merge_into_the_state_the_pushall_answer_gave(tmp_path, lab, watch):
    broker, link = lab
    p1 = link.printers[P1]
    p1.start("cable_clip", layers=40, minutes=20)  # before we listen: only a pushall can tell us
    p1.progress(50, 20, 10, nozzle=220.0, bed=65.0)
    w = watch(settings(tmp_path, broker, P1, model="P1S"))
    snap = w.until(lambda s: s.state == "printing", "printing, from the pushall answer")
    assert (snap.progress, snap.layer, snap.file, p1.pushalls) == (50.0, 20, "cable_clip", 1)
    p1.update(mc_percent=51)  # partial reports from here on
    p1.update(layer_num=21)
    snap = w.until(lambda s: s.layer == 21, "layer 21")
    assert snap.progress == 51.0 and snap.temps == {"tool0": (220.0, 220.0), "bed": (65.0, 65.0)}
    assert snap.file == "cable_clip" and snap.time_left == 600


def test_a_print_to_its_end_gives_one_started_and_one_done(tmp_path, lab, watch):
    broker, link = lab
    w = watch(settings(tmp_path, broker, X1))
    w.until(lambda s: s.state == "idle", "idle")
    x1 = link.printers[X1]
    x1.start("cube", layers=10)
    for layer in range(1, 11):
        x1.progress(layer * 10 - 5, layer, 10 - layer, nozzle=220.0, bed=65.0)
    x1.finish()
    w.until(lambda s: s.state_text == "FINISH", "FINISH")
    w.more_reports()  # heartbeats keep FINISH coming: none of them may end the job again
    assert w.kinds() == ["started", "done"]
    assert w.states() == ["unreachable", "idle", "printing", "idle"]  # connected, then its first report


def printing(tmp_path, lab, watch) -> Watcher:
    """A watched X1, idle first, then printing a long part."""
    broker, link = lab
    w = watch(settings(tmp_path, broker, X1))
    w.until(lambda s: s.state == "idle", "idle")
    link.printers[X1].start("long_part", layers=300)
    link.printers[X1].progress(3, 9, 280, nozzle=220.0, bed=65.0)
    w.until(lambda s: s.state == "printing", "printing")
    return w


def test_the_cancel_code_ends_the_job_as_cancelled_and_the_printer_stays_idle_after_it_clears(tmp_path, lab, watch):
    w = printing(tmp_path, lab, watch)
    x1 = lab[1].printers[X1]
    x1.cancel()
    snap = w.until(lambda s: s.state_text == "FAILED", "FAILED")
    assert (snap.state, snap.ended, snap.error) == ("idle", "cancelled", None)
    # The code lasts a moment; then print_error is 0 while gcode_state stays FAILED (pybambu).
    wait_for(lambda: x1.state["print_error"] == 0, 5, "the cancel code to clear")
    w.more_reports(5)
    assert x1.state["gcode_state"] == "FAILED"
    snap = w.client.poll()
    assert (snap.state, snap.ended, snap.error) == ("idle", "cancelled", None)
    assert w.kinds() == ["started", "cancelled"]  # no disconnect, no failure
    assert w.states() == ["unreachable", "idle", "printing", "idle"]


def test_an_idle_a1_that_stops_reporting_is_asked_on_the_same_connection_not_reconnected(tmp_path, lab, watch):
    broker, link = lab
    a1 = link.printers[A1]
    w = watch(settings(tmp_path, broker, A1, model="A1", silent_after=1.0))
    w.until(lambda s: s.state == "idle", "idle")
    a1.doze()  # idle A1s fall silent (ha-bambulab #493) until someone asks
    wait_for(lambda: a1.starts == 1, 5, "a pushing.start request")
    w.more_reports(3)  # it answered, and reports flow again
    assert w.states() == ["unreachable", "idle"] and w.client.poll().state == "idle"
    assert w.client.connects == 1 and a1.pushalls == 1  # the connect's pushall only
    a1.stall()  # positive control: a printer that does not answer the request either
    snap = w.until(lambda s: s.state == "unreachable", "unreachable", timeout=8)
    assert snap.error == SILENT and a1.starts == 2
    wait_for(lambda: w.client.connects >= 2, 8, "a reconnect after asking brought nothing")


def test_a_lan_job_that_ends_while_the_agent_is_away_ends_once_by_its_name(tmp_path, lab, watch):
    broker, link = lab
    p1 = link.printers[P1]
    saved = []
    first = watch(settings(tmp_path, broker, P1, model="P1S"), tracker=JobTracker(save=saved.append))
    first.until(lambda s: s.state == "idle", "idle")
    p1.start("bracket", layers=50)  # from the printer's screen or SD card: task_id "0", no start time
    p1.progress(40, 20, 12, nozzle=220.0, bed=65.0)
    snap = first.until(lambda s: s.progress == 40.0, "printing")
    assert snap.job_id is None and saved[-1]["file"] == "bracket" and saved[-1]["job_id"] is None
    first.close()  # the agent goes away; the job ends unseen
    p1.progress(100, 50, 0, nozzle=220.0, bed=65.0)
    p1.finish()
    second = watch(settings(tmp_path, broker, P1, model="P1S"), tracker=JobTracker(job=saved[-1], save=saved.append))
    second.until(lambda s: s.state_text == "FINISH", "FINISH, from the pushall answer")
    second.more_reports()
    assert second.kinds() == ["done"] and second.events[0].file == "bracket" and saved[-1] is None
    p1.start("bracket", layers=50)  # the same file again, watched: a job of its own
    p1.finish()
    second.until(lambda s: len(second.kinds()) == 3, "the second job's end")
    assert second.kinds() == ["done", "started", "done"]


def test_a_failure_with_hms_codes_fails_the_job_with_readable_text(tmp_path, lab, watch):
    w = printing(tmp_path, lab, watch)
    lab[1].printers[X1].fail(0x03008009, [(0x03000100, 0x00010007), (0x0C000300, 0x00030001)])
    snap = w.until(lambda s: s.state == "error", "error")
    w.more_reports()
    assert snap.error == ("heatbed temperature malfunction [0300_8009]; "
                          "HMS_0300_0100_0001_0007: heatbed temperature abnormal: the sensor may be open-circuited; "
                          "HMS_0C00_0300_0003_0001: camera/LiDAR notice, not in printfarm's table; "
                          "look the code up on wiki.bambulab.com")
    assert w.kinds() == ["started", "disconnected", "failed"]
    assert w.events[-1].error == snap.error


def test_a_broker_restart_is_unreachable_then_reconnected(tmp_path, lab, watch):
    broker, link = lab
    w = watch(settings(tmp_path, broker, X1))
    w.until(lambda s: s.state == "idle", "idle")
    broker.restart()
    w.until(lambda s: s.state == "idle" and any(x.state == "unreachable" for x in w.seen[1:]), "idle again")
    lost = next(x for x in w.seen[1:] if x.state == "unreachable")
    assert lost.error.startswith(f"connection to 127.0.0.1:{broker.endpoints[X1].port} lost")


def test_a_printer_back_after_a_long_outage_is_seen_within_two_intervals(tmp_path, lab, watch):
    broker, link = lab
    w = watch(settings(tmp_path, broker, X1, interval=1.0))
    w.until(lambda s: s.state == "idle", "idle")
    broker.stop()  # switched off for a while: attempt after attempt fails
    w.until(lambda s: s.state == "unreachable", "unreachable")
    tries = w.client.retries
    wait_for(lambda: w.client.retries >= tries + 5, 30, "five failed attempts")  # 0.5+1+2+4 s unbounded
    broker.start()
    back = time.monotonic()
    w.until(lambda s: s.state == "idle", "idle again", timeout=30)
    assert time.monotonic() - back <= 2 * 1.0


def test_a_printer_that_never_reports_says_so_then_is_silent(tmp_path, lab, watch):
    broker, link = lab
    link.printers[X1].stall()  # switched on, broker up, firmware not reporting
    w = watch(settings(tmp_path, broker, X1, silent_after=1.0))
    port = broker.endpoints[X1].port
    w.until(lambda s: s.error == f"connected to 127.0.0.1:{port}; no report from the printer yet", "connected")
    w.until(lambda s: s.error == SILENT, "silent", timeout=8)


def test_a_silent_printer_is_unreachable_after_the_window_and_recovers(tmp_path, lab, watch):
    broker, link = lab
    w = watch(settings(tmp_path, broker, X1, silent_after=1.0))
    w.until(lambda s: s.state == "idle", "idle")
    link.printers[X1].stall()  # its broker still answers; its reports stop
    snap = w.until(lambda s: s.state == "unreachable", "unreachable", timeout=8)
    assert snap.error == SILENT
    link.printers[X1].resume()
    w.until(lambda s: s.state == "idle", "idle again")
    assert w.states() == ["unreachable", "idle", "unreachable", "idle"]
    log = (broker.dir / "mosquitto.log").read_text()
    assert log.count("as printfarm-bbl-1 (") >= 2  # it did reconnect, to a broker that never went away


def _connected_as(broker: BambuBroker, printer_id: str) -> bool:
    log = (broker.dir / "mosquitto.log").read_text()
    return f"as printfarm-{printer_id} (" in log and "u'bblp'" in log.split(f"as printfarm-{printer_id} (")[1][:40]


@pytest.mark.parametrize("trust,words", [
    ({"serial": P1}, f"the printer's certificate is not issued to serial {P1}"),
    ({"ca": "other"}, "the printer's certificate is not signed by the CA in ca_file"),
    ({"fingerprint": "AB" * 32}, "not the pinned AB:AB:AB"),
])
def test_a_certificate_we_cannot_trust_is_refused_before_the_access_code_is_sent(tmp_path, lab, watch, trust,
                                                                                    words):
    broker, _ = lab
    over = dict(trust)
    if over.pop("ca", None):
        over["ca_file"] = str(make_ca("Some other CA").write(tmp_path / "other-ca.crt"))
    if "fingerprint" in over:
        over["ca_file"] = None
    bad = settings(tmp_path, broker, X1, printer_id="impostor-check", **over)
    w = watch(bad)
    snap = w.until(lambda s: words in (s.error or ""), "the refusal", timeout=5)
    assert snap.state == "unreachable" and snap.error.startswith("TLS refused: ")
    good = watch(settings(tmp_path, broker, X1, printer_id="good"))  # the positive control
    good.until(lambda s: s.state == "idle", "the good client idle")
    assert _connected_as(broker, "good") and not _connected_as(broker, "impostor-check")


def test_the_pinned_fingerprint_of_the_printers_own_certificate_is_accepted(tmp_path, lab, watch):
    broker, _ = lab
    pin = broker.endpoints[X1].certificate.sha256().hex()
    w = watch(settings(tmp_path, broker, X1, ca_file=None, fingerprint=pin))
    assert w.until(lambda s: s.state == "idle", "idle").state_text == "IDLE"


def test_verification_turned_off_connects_and_says_so_loudly(tmp_path, lab, watch, caplog):
    broker, _ = lab
    with caplog.at_level(logging.WARNING, logger="agent.printers.bambu.client"):
        w = watch(settings(tmp_path, broker, X1, ca_file=None, insecure_skip_verify=True))
        w.until(lambda s: s.state == "idle", "idle")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("NOT checked" in m for m in warnings) and any("WITHOUT checking its certificate" in m for m in warnings)


def test_a_wrong_access_code_is_refused_with_a_clear_error(tmp_path, lab, watch):
    broker, _ = lab
    (tmp_path / "wrong").write_text("00000000")
    w = watch(settings(tmp_path, broker, X1, access_code_file=str(tmp_path / "wrong")))
    snap = w.until(lambda s: "refused the access code" in (s.error or ""), "the refusal", timeout=5)
    assert "check access_code_file" in snap.error and "00000000" not in snap.error


def test_pushall_goes_out_on_connect_and_never_twice_within_five_minutes(tmp_path, lab, watch):
    broker, link = lab
    now = [1000.0]
    w = watch(settings(tmp_path, broker, X1), monotonic=lambda: now[0])
    x1 = link.printers[X1]
    w.until(lambda s: s.state == "idle" and x1.pushalls == 1, "connected with one pushall")
    broker.restart()  # a reconnect at the same (fake) minute: its pushall must wait
    w.until(lambda s: s.state == "idle" and len(w.seen) >= 3, "reconnected")
    w.more_reports()
    assert x1.pushalls == 1
    now[0] += 299.0
    w.more_reports()
    assert x1.pushalls == 1
    now[0] += 1.0  # five minutes after the first: the deferred request goes out
    wait_for(lambda: x1.pushalls == 2, 5, "the deferred pushall")
    now[0] += 3600.0
    w.more_reports()
    assert x1.pushalls == 2  # nothing asked it again

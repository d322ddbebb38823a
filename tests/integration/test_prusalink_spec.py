"""The simulator's PrusaLink answers exactly as Prusa's published OpenAPI specs say.

No PrusaLink server can run here: the real one is printer firmware (Buddy on the MK4, MK3.9,
Core One, XL and MINI; the Pi add-on needs a serial printer). The simulator's PrusaLink face is
the stand-in every PrusaLink test runs against, so this test keeps it honest: every answer it
sends while a v1 printer and a legacy-firmware printer go through every printer state — every
endpoint, 200, 201, 204, 401, 404 and 409, read by the agent's own client and by a second
digest client — is validated with openapi-core against the specs in tests/fixtures/prusalink/
(corrections: see prusalink_openapi.py).
"""

from __future__ import annotations

from collections import defaultdict

import pytest
import requests
from openapi_core.testing import MockRequest, MockResponse

from agent.printers.digest import DigestAuth
from agent.printers.prusalink import PrusaLink
from agent.printers.prusalink_http import PrusaLinkHTTP
from devkit.pipeline import wait_for
from devkit.servers import make_gcode
from devkit.sim import SimClock, Simulator
from devkit.sim.faces.prusalink_json import legacy_job, link_state
from devkit.sim.prusalink_remote import PrusaLinkRemote, sliced
from devkit.sim.server import PrinterSpec
from tests.integration.prusalink_openapi import corrected, load, openapi

pytestmark = pytest.mark.integration

PASSWORD = "spec-test-password"
V1_READS = ("/api/version", "/api/v1/info", "/api/v1/status", "/api/v1/job", "/api/printer", "/api/job")
LEGACY_READS = ("/api/version", "/api/printer", "/api/job")
FILE_PATH = "/api/v1/files/usb/LONG02~1.GCO"  # the file of the long print (its 8.3 name)
V1_STATES = {"IDLE", "BUSY", "PRINTING", "PAUSED", "FINISHED", "STOPPED", "ERROR", "ATTENTION", "READY"}


class Recorder:
    """Every answer the simulator sends, with the printer's state when it was sent."""

    def __init__(self, sim: Simulator):
        self.sim, self.seen = sim, []
        sim.observe = self.record

    def record(self, printer_id, request, response) -> None:
        p = self.sim.printers[printer_id]
        state = link_state(p) if self.sim.specs[printer_id].firmware != "legacy" else legacy_job(p, p.now)["state"]
        self.seen.append((printer_id, state, request.method, request.path, dict(request.query), response.status,
                          response.content_type if response.body else None, bytes(response.body or b""),
                          dict(response.headers)))


@pytest.fixture(scope="module")
def recorded():
    """Drive both printers through every state once; the tests below judge what was sent."""
    sim = Simulator([PrinterSpec("mk4", api="prusalink"), PrinterSpec("mini", api="prusalink", firmware="legacy")],
                    PASSWORD, SimClock(speed=1.0), auto=False).start()
    recorder = Recorder(sim)
    try:
        _walk_v1(sim.url("mk4"))
        _walk_legacy(sim.url("mini"))
    finally:
        sim.stop()
    return recorder.seen


def _reads(url: str, paths, agent: PrusaLink) -> None:
    """One read of every endpoint: by the agent's client, by requests' digest, and without auth."""
    agent.poll()
    reader = PrusaLinkRemote(url, PASSWORD)
    for path in paths:
        reader.api("GET", path)
        requests.get(url + path, timeout=5)  # 401, text/plain
        requests.get(url + path, headers={"Accept": "application/json"}, timeout=5)  # 401, JSON


def _agent(url: str) -> PrusaLink:
    return PrusaLink(PrusaLinkHTTP(url, 3.0, digest=DigestAuth("maker", PASSWORD)), interval=0.2)


def _walk_v1(url: str) -> None:
    remote, agent = PrusaLinkRemote(url, PASSWORD), _agent(url)
    state = lambda: remote.status()["printer"]["state"]  # noqa: E731
    _reads(url, V1_READS, agent)  # IDLE
    remote.print_file("long_0.2mm_PLA.gcode", sliced(make_gcode(3000), [3.1, 0.0, 7.25], [1040.1, 0.0, 2390.5],
                                                     ["PLA", "PLA", "PETG"]))
    _reads(url, V1_READS + (FILE_PATH,), agent)  # PRINTING (the agent reads the file's meta, once)
    assert remote.api("PUT", "/api/v1/files/usb/x.gcode", data=b"G1 X1\n",
                      headers={"Print-After-Upload": "?1"}).status_code == 409
    assert remote.api("DELETE", "/api/v1/job/999999").status_code == 404
    remote.pause()
    _reads(url, V1_READS, agent)  # PAUSED
    remote.pause("resume")
    remote.at_printer("attention")
    _reads(url, V1_READS, agent)  # ATTENTION
    remote.pause("resume")
    remote.cancel()
    _reads(url, V1_READS, agent)  # STOPPED
    remote.at_printer("ready")
    _reads(url, V1_READS, agent)  # READY
    remote.at_printer("busy", on=True)
    _reads(url, V1_READS, agent)  # BUSY
    remote.at_printer("busy", on=False)
    remote.print_file("short.gcode", make_gcode(20))
    wait_for(lambda: state() == "FINISHED", 10, "the short print to finish")
    _reads(url, V1_READS, agent)  # FINISHED
    remote.at_printer("fault", text="Heater decoupled")
    _reads(url, V1_READS, agent)  # ERROR


def _walk_legacy(url: str) -> None:
    remote, agent = PrusaLinkRemote(url, PASSWORD, legacy=True), _agent(url)
    _reads(url, LEGACY_READS, agent)  # Operational
    remote.print_file("long.gcode", make_gcode(3000))
    _reads(url, LEGACY_READS, agent)  # Printing
    remote.pause()
    _reads(url, LEGACY_READS, agent)  # Paused
    remote.pause("resume")
    remote.api("POST", "/sim/attention")
    _reads(url, LEGACY_READS, agent)  # Error (a question on the screen)
    remote.cancel()
    assert remote.api("POST", "/api/job", json={"command": "cancel"}).status_code == 409
    requests.get(url + "/api/job", headers={"X-Api-Key": PASSWORD}, timeout=5)  # the API key of old firmware
    requests.get(url + "/api/job", headers={"X-Api-Key": "wrong"}, timeout=5)
    remote.at_printer("fault", text="Heater decoupled")
    _reads(url, LEGACY_READS, agent)  # Error (fault)


def _spec_for(printer: str, path: str) -> str:
    return "openapi.yaml" if printer == "mk4" and (path.startswith("/api/v1/") or path == "/api/version") \
        else "openapi-legacy.yaml"


def _mock(seen_entry):
    _, _, method, path, query, status, ctype, body, headers = seen_entry
    request = MockRequest("http://127.0.0.1", method.lower(), path, args=query)
    return request, MockResponse(body, status_code=status, headers=headers, content_type=ctype)


def _prusalink_answers(recorded):
    # /sim/ calls are the simulator's own; a legacy printer's 404 for v1 paths is in neither spec.
    return [e for e in recorded if not e[3].startswith("/sim/")
            and not (e[0] == "mini" and e[3].startswith("/api/v1/"))]


def test_every_answer_of_the_stand_in_is_valid_under_prusas_specs(recorded):
    apis = {name: openapi(corrected(name)[0]) for name in ("openapi.yaml", "openapi-legacy.yaml")}
    answers = _prusalink_answers(recorded)
    failures = []
    for entry in answers:
        try:
            apis[_spec_for(entry[0], entry[3])].validate_response(*_mock(entry))
        except Exception as exc:  # collect them all: one message with every mismatch
            failures.append(f"{entry[0]} {entry[1]} {entry[2]} {entry[3]} -> {entry[5]}: {exc}")
    assert not failures, "\n".join(failures[:20])
    assert len(answers) > 250


def test_every_endpoint_state_and_status_code_was_exercised(recorded):
    codes, states = defaultdict(set), defaultdict(set)
    for printer, state, method, path, _, status, *_ in _prusalink_answers(recorded):
        codes[(printer, method, path.split("/api/v1/files/")[0] or "files")].add(status)
        if status == 200 and path in ("/api/v1/status", "/api/job"):
            states[(printer, path)].add(state)
    assert states[("mk4", "/api/v1/status")] == V1_STATES
    assert states[("mini", "/api/job")] == {"Operational", "Printing", "Paused", "Error"}
    for path in V1_READS:
        assert {200, 401} <= codes[("mk4", "GET", path)], path
    for path in LEGACY_READS:
        assert {200, 401} <= codes[("mini", "GET", path)], path
    assert 204 in codes[("mk4", "GET", "/api/v1/job")]
    assert {200, 401} <= codes[("mk4", "GET", "files")]
    assert {201, 409} <= codes[("mk4", "PUT", "files")]
    assert {204, 404} <= codes[("mk4", "DELETE", "/api/v1/job/999999")] | codes[("mk4", "DELETE", "/api/v1/job/1")]
    assert {204, 409} <= codes[("mini", "POST", "/api/job")]


def test_the_corrections_are_each_still_needed(recorded):
    """Against the specs as published, answers of each corrected kind fail; when Prusa fixes the
    spec this fails, and the correction can go."""
    published = {name: openapi(load(name)) for name in ("openapi.yaml", "openapi-legacy.yaml")}
    answers = _prusalink_answers(recorded)

    def rejected(printer, method, path, status):
        entry = next(e for e in answers if e[0] == printer and e[2] == method and e[3] == path and e[5] == status)
        with pytest.raises(Exception):
            published[_spec_for(printer, path)].validate_response(*_mock(entry))

    rejected("mk4", "GET", "/api/v1/status", 401)  # 401 undeclared
    rejected("mk4", "GET", "/api/v1/job", 200)  # oneOf of never-exclusive objects
    rejected("mk4", "GET", FILE_PATH, 200)  # oneOf of file kinds that all share one base
    rejected("mini", "GET", "/api/job", 401)
    rejected("mini", "GET", "/api/job", 200)
    assert [c for c in corrected("openapi.yaml")[1] if "Job" in c] == ["oneOf->anyOf at #/components/schemas/Job/allOf/0"]


def test_challenges_are_digest_without_qop_or_apikey_for_a_wrong_key(recorded):
    challenges = [(e[0], e[8]["WWW-Authenticate"]) for e in recorded if e[5] == 401]
    digest = [c for _, c in challenges if c.startswith("Digest ")]
    assert len(digest) > 20 and all("qop" not in c and c.startswith('Digest realm="Printer API", nonce="') for c in digest)
    assert [c for _, c in challenges if not c.startswith("Digest ")] == ['ApiKey realm="Printer API"']

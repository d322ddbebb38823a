"""The status page in headless Chromium with per-organisation tokens: no token, 401 and a login
form; organisation A's token, A's file names and none of B's (server/access.py)."""

from __future__ import annotations

import os
import time

import pytest

from common import protocol
from devkit.pipeline import RunningCollector, collector_config, wait_for, write_inventory
from devkit.servers import InfluxDB, Mosquitto
from server import tokens
from tests.integration.scripted_fleet import publish
from tests.integration.test_status_page import CHROMIUM, FLAGS

pytestmark = pytest.mark.integration

A_FILE, B_FILE = "thesis_rig_v2.gcode", "bracket_volvo_rev_C.3mf"
A, B = "orebro-universitet", "kilsbergens-verktyg-ab"


def printing(site: str, printer: str, file: str) -> tuple[str, bytes]:
    msg = protocol.Telemetry(v=1, ts=int(time.time() * 1000), printer=printer, site=site, seq=1, state="printing",
                             state_text=f"Printing {file}", progress=42.0, file=file, user="u-0123456789ab")
    return protocol.printer_topic(site, printer, "telemetry"), protocol.encode(msg)


@pytest.fixture(scope="module")
def fleet_of_two(tmp_path_factory):
    """A collector (public = "off") with one printing printer of A and one of B; A's token."""
    tmp = tmp_path_factory.mktemp("tokens")
    with Mosquitto(tmp / "mosquitto") as broker, InfluxDB(tmp / "influx") as influx:
        inventory = write_inventory(tmp / "fleet.toml", {"a-1": "uni", "b-1": "works"},
                                    {"uni": ("Örebro universitet", "Örebro"), "works": ("Kilsbergens Verktyg AB", "Örebro")})
        cfg = collector_config(tmp, broker, influx, inventory)
        cfg.http.public = "off"
        running = RunningCollector(cfg)
        try:
            running.wait_connected()
            publish(broker, [printing("uni", "a-1", A_FILE), printing("works", "b-1", B_FILE)])
            wait_for(lambda: all(p["state"] == "printing" for p in running.collector.fleet.snapshot()["printers"]),
                     20, "both printers printing")
            token, _ = tokens.issue(tokens.path_for(cfg), A)
            yield f"http://127.0.0.1:{running.collector.api.port}", token
        finally:
            running.stop()


@pytest.fixture
def page(tmp_path):
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError("chromium not found: apt-get install -y chromium")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = context.new_page()
        page.console_lines = []
        page.on("console", lambda msg: page.console_lines.append(msg.text))
        yield page
        context.close()


def test_without_a_token_the_page_is_401_and_with_as_token_shows_as_files_and_none_of_bs(fleet_of_two, page):
    url, token = fleet_of_two
    reply = page.goto(url + "/")
    assert reply.status == 401
    assert A_FILE not in page.content() and page.locator("input[name='token']").count() == 1

    page.fill("input[name='token']", token)
    page.click("button[type='submit']")
    page.wait_for_selector("body[data-loaded='1']", timeout=15_000)
    text = page.content()
    assert A_FILE in text  # A's own printer in full
    assert "volvo" not in text and "bracket" not in text  # B's file name nowhere, not even in its state text
    states = {page.locator(".printer").nth(i).get_attribute("data-printer"):
              page.locator(".printer").nth(i).get_attribute("data-state") for i in range(page.locator(".printer").count())}
    assert states == {"a-1": "printing", "b-1": "printing"}  # B's printer is there, as state only
    assert not [line for line in page.console_lines if "Content Security Policy" in line], page.console_lines


def test_a_wrong_token_in_the_form_is_401_again(fleet_of_two, page):
    url, _ = fleet_of_two
    page.goto(url + "/login")
    page.fill("input[name='token']", "pft_not-a-token")
    with page.expect_response(lambda r: r.url.endswith("/login") and r.request.method == "POST") as posted:
        page.click("button[type='submit']")
    assert posted.value.status == 401 and A_FILE not in page.content()

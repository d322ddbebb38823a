"""The fleet status page in headless Chromium (Debian's ``chromium``) during a demo-like run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from devkit.demo.roster import DEMO_OUTAGE_SITE, demo_fleet
from devkit.demo.stack import Stack, StackOptions
from devkit.pipeline import wait_for

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
STATES = {"printing", "paused", "finishing", "cancelling", "idle", "offline", "error", "unreachable"}


@pytest.fixture
def demo_stack(tmp_path, demo_stack_turn):
    # The demo's fleet, with the outage site down from the start so "unreachable" shows too.
    options = StackOptions(speed=10, seed=7, start="09:00", interval=1.0, outages=[f"{DEMO_OUTAGE_SITE}:0:60"])
    stack = Stack(tmp_path / "stack", demo_fleet(), options)
    try:
        yield stack.up()
    finally:
        stack.down()


@pytest.fixture
def browser(tmp_path):
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError("chromium not found: apt-get install -y chromium")
    with sync_playwright() as pw:
        # A persistent context is the way to hand Chromium a fresh --user-data-dir of our own.
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1400, "height": 1000})
        yield context
        context.close()


def test_status_page_shows_every_printer_with_its_state_grouped_by_site(demo_stack, browser, tmp_path):
    fleet = wait_for(lambda: (lambda f: f if f and all(p["state"] != "unknown" for p in f["printers"]) else None)(
        demo_stack.fleet_state()), 30, "every printer to report")
    page = browser.new_page()
    console = []
    page.on("console", lambda msg: console.append(msg.text))
    reply = page.goto(demo_stack.api_url + "/")
    assert "script-src 'sha256-" in reply.headers["content-security-policy"]
    page.wait_for_selector("body[data-loaded='1']", timeout=15_000)

    cards = page.locator(".printer")
    shown = {cards.nth(i).get_attribute("data-printer"): cards.nth(i).get_attribute("data-state")
             for i in range(cards.count())}
    roster = sum(len(printers) for *_, printers in demo_fleet().values())
    assert set(shown) == {p["printer"] for p in fleet["printers"]} and len(shown) == roster == 33
    assert set(shown.values()) <= STATES and "printing" in shown.values()
    for site, (_, _, _, printers) in demo_fleet().items():
        section = page.locator(f"section.site[data-site='{site}']")
        assert section.locator(".printer").count() == len(printers)
        for printer_id, _, _ in printers:
            text = section.locator(f".printer[data-printer='{printer_id}'] .state").inner_text().lower()
            assert text == shown[printer_id]
    assert {shown[p] for p, _, _ in demo_fleet()[DEMO_OUTAGE_SITE][3]} == {"unreachable"}
    # Under the page's Content-Security-Policy: nothing refused, colours and progress bars drawn.
    assert not [line for line in console if "Content Security Policy" in line], console
    printing = page.locator(".printer[data-state='printing'] .state").first
    assert printing.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(46, 160, 67)"  # --printing
    widths = page.locator(".bar > div").evaluate_all("els => els.map(e => e.getBoundingClientRect().width)")
    assert widths and any(w > 0 for w in widths)

    shot = tmp_path / "status-page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    if os.environ.get("PRINTFARM_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(os.environ["PRINTFARM_SCREENSHOT_DIR"]) / shot.name)

"""The fleet simulator's printers: seeded, lazily advanced, with nights, faults and outages."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime

from common.configkit import Secret
from agent.printers.octoprint import OctoPrint
from devkit.sim import SimClock, Simulator
from devkit.sim.model import Heater, SimPrinter
from devkit.sim.server import PrinterSpec, plan_sites
from devkit.sim.site import LOCAL, SiteSchedule

MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=LOCAL).timestamp()
HOUR = 3600.0


def fleet(n: int, seed: int = 1, site: SiteSchedule | None = None) -> list[SimPrinter]:
    site = site or SiteSchedule("s", 7, 21)
    return [SimPrinter(f"p{i}", random.Random(f"{seed}:{i}"), MONDAY_10, site) for i in range(n)]


def observe(printer: SimPrinter) -> tuple:
    job = printer.job
    return printer.phase, job.name if job else None, job.ended if job else None, printer.error


def test_same_seed_gives_the_same_history_however_often_it_is_polled():
    often, seldom = fleet(20), fleet(20)
    for step in range(1, 2 * 24 * 12):  # two days, every 5 minutes
        t = MONDAY_10 + step * 300
        for p in often:
            p.advance(t - 200)
            p.advance(t - 17)
            p.advance(t)
        if step % 12 == 0:  # hourly
            for fast, slow in zip(often, seldom):
                slow.advance(t)
                assert observe(fast) == observe(slow)


def test_printers_are_switched_off_at_night_and_come_back_in_the_morning():
    printers = fleet(60, site=SiteSchedule("s", 7, 21))
    at = lambda hours: Counter((p.advance(MONDAY_10 + hours * HOUR), p.phase)[1] for p in printers)  # noqa: E731
    day, night, morning = at(2), at(17), at(26)  # Mon 12:00, Tue 03:00, Tue 12:00
    assert day["off"] < 15 and night["off"] > 40 and morning["off"] < 15
    assert night["idle"] < 5  # idle printers are switched off, overnight prints may go on


def test_a_day_of_printing_has_finished_cancelled_failed_and_paused_jobs():
    printers = fleet(80, site=SiteSchedule("farm", 0, 24))
    ended, paused = Counter(), 0
    seen = {p.id: (None, p.phase) for p in printers}
    for step in range(1, 24 * 60):  # every simulated minute for a day
        for p in printers:
            p.advance(MONDAY_10 + step * 60)
            job = p.job.name if p.job else None
            if (job, p.phase) != seen[p.id]:
                if p.phase == "paused":
                    paused += 1
                if p.job and p.job.ended and seen[p.id][1] == "printing":
                    ended[p.job.ended] += 1
                if p.phase == "error" and seen[p.id][1] in ("printing", "paused"):
                    ended["error"] += 1
                seen[p.id] = (job, p.phase)
    assert ended["done"] > 4 * (ended["cancelled"] + ended["error"])  # most jobs finish
    assert ended["cancelled"] > 0 and ended["error"] > 0 and paused > 0, (ended, paused)


def test_heater_approaches_its_target_like_a_first_order_system():
    heater = Heater(tau=30, wobble=0)
    heater.set(215, 0)
    readings = [heater.actual(t) for t in (0, 5, 30, 90, 300)]
    assert readings[0] < 25 and readings == sorted(readings) and 210 < readings[-1] < 216
    heater.set(0, 300)
    assert heater.actual(330) < 215 and heater.actual(3000) < 25


def test_manual_printer_waits_for_calls():
    printer = SimPrinter("p", random.Random(1), MONDAY_10, auto=False)
    printer.advance(MONDAY_10 + 10 * 24 * HOUR)
    assert observe(printer) == ("idle", None, None, "")


def test_sites_are_planned_from_the_seed():
    assert plan_sites(["a", "b", "c"], 5, MONDAY_10) == plan_sites(["a", "b", "c"], 5, MONDAY_10)
    assert plan_sites(["a", "b", "c"], 5, MONDAY_10) != plan_sites(["a", "b", "c"], 6, MONDAY_10)


def test_site_outage_makes_the_printer_unreachable_until_it_ends():
    now = [1000.0]
    clock = SimClock(speed=1.0, start=MONDAY_10, real=lambda: now[0])
    site = SiteSchedule("s", 0, 24, outages=[(MONDAY_10, MONDAY_10 + 60)])
    with Simulator([PrinterSpec("p", "s")], "KEY", clock, sites={"s": site}, outage_hold=1.0) as sim:
        client = OctoPrint(sim.url("p"), Secret("KEY"), timeout=0.3)
        down = client.poll()
        assert down.state == "unreachable" and down.error == "no answer within the timeout"
        now[0] += 61  # the simulated network is back
        assert client.poll().state != "unreachable"

"""Prices, densities and rates from the inventory (server/costs.py), a job's counted material and
cost (server/reports/cost.py) and its failure cause (server/reports/causes.py). Expected figures
are worked out by hand from the contract's rules, not from the code."""

import math

import msgspec
import pytest

from common.configkit import ConfigError
from common.protocol import MaterialUse
from server import inventory
from server.costs import Prices
from server.reports import causes, cost
from server.reports.customer_view import Span
from server.reports.query import JobEvent

BASE = {"sites": {"a": {"organisation": "Alfa", "county": "Örebro"}},
        "printers": {"p1": {"site": "a", "model": "MK4"}, "p2": {"site": "a", "model": "X1C"}, "p3": {"site": "a"}}}


def inv(**extra):
    return inventory.from_dict({**BASE, **extra})


@pytest.mark.parametrize("extra, key", [
    ({"materials": {"PLA": {"price_per_kg": -1}}}, "materials.PLA.price_per_kg"),
    ({"materials": {"PLA": {"density": 12}}}, "materials.PLA.density"),
    ({"materials": {"PLA": {"diameter": 0.4}}}, "materials.PLA.diameter"),
    ({"materials": {"PLA": {"prize_per_kg": 1}}}, "materials.PLA.prize_per_kg"),
    ({"materials": {"--": {}}}, "materials.--"),
    ({"rates": {"currency": "kr"}}, "rates.currency"),
    ({"rates": {"hour_rate": -5}}, "rates.hour_rate"),
    ({"rates": {"printers": {"zz": {"hour_rate": 1}}}}, "rates.printers.zz"),
    ({"rates": {"printers": {"p1": {"hour_rate": "x"}}}}, "rates.printers.p1.hour_rate"),
    ({"rates": {"models": {"MK5": {"hour_rate": 1}}}}, "rates.models.MK5"),
])
def test_a_wrong_price_or_rate_is_refused_naming_the_key_and_the_fix(extra, key):
    with pytest.raises(ConfigError) as found:
        inv(**extra)
    assert found.value.key == key and found.value.fix


def test_rates_go_printer_then_model_then_default_and_an_organisations_part_keeps_its_own():
    i = inv(rates={"hour_rate": 100, "start_fee": 5, "models": {"X1C": {"hour_rate": 150}},
                   "printers": {"p1": {"hour_rate": 80, "start_fee": 20}}})
    prices = Prices(i)
    assert (prices.rate("p1").hour_rate, prices.rate("p1").start_fee) == (80, 20)
    assert (prices.rate("p2").hour_rate, prices.rate("p2").start_fee) == (150, 5)
    assert (prices.rate("p3").hour_rate, prices.rate("p3").start_fee) == (100, 5)
    assert i.of_organisation(next(iter(i.orgs))).rates.printers == i.rates.printers


def test_reported_names_find_their_type_and_length_becomes_grams_by_density():
    prices = Prices(inv(materials={"PETG-CF": {"density": 1.3, "price_per_kg": 600}, "PLA": {"price_per_kg": 250}}))
    assert prices.kind("Bambu PLA Basic") == "PLA" and prices.kind("pla") == "PLA"
    assert prices.kind("petg-cf") == "PETG-CF" and prices.kind("PETG HF") == "PETG" and prices.kind("Nylon") is None
    # 1000 mm of 1.75 mm PLA: pi * 0.875^2 mm2 * 1000 mm = 2405.28 mm3 = 2.40528 cm3 * 1.24 g/cm3
    assert math.isclose(prices.grams_of_mm("PLA", 1000), 2.405281875 * 1.24, rel_tol=1e-6)
    assert math.isclose(prices.grams_of_mm("PETG-CF", 1000), 2.405281875 * 1.3, rel_tol=1e-6)
    assert prices.grams_of_mm(None, 1000) is None


def _span(kind, material, progress=None, error=None, hours=2.0):
    start, end = 1_000_000, 1_000_000 + int(hours * 3_600_000)
    text = msgspec.json.encode(material).decode() if material else None
    ended = JobEvent(end, "a", "p1", kind, duration=hours * 3600, error=error, job_started=start, progress=progress,
                     material_use=text)
    return {("a", "p1"): [Span("a", "p1", start, end, None, None, [JobEvent(start, "a", "p1", "started"), ended])]}


def test_a_failed_jobs_slicer_estimate_counts_pro_rata_and_a_measured_amount_as_it_is():
    i = inv(materials={"PLA": {"price_per_kg": 250}}, rates={"hour_rate": 100})
    view = cost.compute(_span("failed", [MaterialUse("slicer", type="PLA", grams=50.0, mm=16_000.0),
                                         MaterialUse("measured", tool=1, type="PLA", mm=1000.0)], progress=40.0), i)
    job = view.jobs[0]
    measured = 2.405281875 * 1.24
    assert math.isclose(job.grams, 20.0 + measured) and math.isclose(job.metres, 6.4 + 1.0)
    assert math.isclose(job.cost, 2 * 100 + (20.0 + measured) / 1000 * 250) and job.source == "mixed"


def test_unknown_progress_unknown_price_and_no_material_are_said_not_guessed():
    i = inv(rates={"hour_rate": 100})
    view = cost.compute(_span("cancelled", [MaterialUse("slicer", type="PLA", grams=50.0)]), i)
    assert view.jobs[0].grams is None and view.no_progress == 1
    view = cost.compute(_span("done", [MaterialUse("slicer", type="Nylon", mm=100.0),
                                       MaterialUse("slicer", tool=1, type="TPU", grams=10.0)]), i)
    assert view.no_density == {"Nylon"} and view.no_price == {"TPU"} and view.jobs[0].grams == 10.0
    view = cost.compute(_span("done", []), i)
    assert view.jobs[0].grams is None and view.jobs[0].metres is None and view.jobs[0].cost == 200.0
    assert [code for code, _ in cost.notes(cost.compute(_span("done", []), inv()))] == ["cost_no_rate"]


@pytest.mark.parametrize("kind, error, expected", [
    ("failed", "Heater extruder not heating at expected rate", "heater_not_heating"),
    ("failed", "MCU 'mcu' shutdown: Timer too close", "mcu_shutdown"),
    ("failed", "Lost communication with MCU 'ebb'", "mcu_shutdown"),
    ("failed", "THERMAL RUNAWAY", "thermal_runaway"),
    ("failed", "Err: MINTEMP BED", "mintemp"),
    ("failed", "MAXTEMP triggered", "maxtemp"),
    ("failed", "Filament runout detected", "filament_runout"),
    ("cancelled", None, "cancelled"),
    ("cancelled", "Job cancelled by user", "cancelled"),
    ("failed", "Klippy Disconnected during the print", "connection_lost"),
    ("failed", "interrupted: Moonraker restarted during the print", "host_restart"),
    ("failed", "HMS_0700_2000_0002_0001: AMS assist motor overloaded", "bambu_ams"),
    ("failed", "the nozzle is clogged [0300_4006]", "bambu_motion"),
    ("cancelled", "the print was cancelled [0300_400C]", "cancelled"),
    ("failed", "something odd", "other"),
    ("failed", None, "unknown"),
    ("done", None, ""),
])
def test_failure_texts_of_every_api_are_grouped(kind, error, expected):
    assert causes.cause(kind, error) == expected
    assert expected == "" or expected in causes.CAUSES


def test_every_cause_has_words_in_both_languages():
    from server.reports import cost_labels
    for lang in ("en", "sv"):
        assert set(causes.CAUSES) <= set(cost_labels.CAUSES[lang])


def test_a_length_without_a_type_is_weighed_and_priced_as_the_printers_assumed_material():
    use = [MaterialUse("slicer", mm=1000.0)]  # what OctoPrint's analysis gives: a length, no type
    view = cost.compute(_span("done", use), inv(materials={"PLA": {"price_per_kg": 250}},
                                                rates={"hour_rate": 10, "printers": {"p1": {"assumed_material": "PLA"}}}))
    grams = 2.405281875 * 1.24
    assert math.isclose(view.jobs[0].grams, grams) and view.jobs[0].material == "PLA"
    assert math.isclose(view.jobs[0].cost, 2 * 10 + grams / 1000 * 250) and view.assumed == 1
    view = cost.compute(_span("done", use), inv())
    assert view.jobs[0].grams is None and view.no_density == {"(no type)"}
    with pytest.raises(ConfigError) as found:
        inv(rates={"models": {"MK4": {"assumed_material": "Unobtainium"}}})
    assert found.value.key == "rates.models.MK4.assumed_material"

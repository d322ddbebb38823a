"""Prices and densities from Spoolman (server/spoolman.py), against a stand-in on loopback that
answers ``GET /api/v1/spool`` with spools shaped after Spoolman's API models (spoolman/api/v1/
models.py: Spool, Filament, Vendor; the fields it marks required are all there)."""

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from common.configkit import ConfigError
from server import inventory
from server.costs import Prices
from server.reports import cost
from tests.unit.test_material_cost import BASE, _span

SPOOL_REQUIRED = {"id", "registered", "filament", "used_weight", "used_length", "archived", "extra"}
FILAMENT_REQUIRED = {"id", "registered", "density", "diameter", "extra"}


def spool(i, material, density, price=None, initial_weight=None, filament_price=None, weight=None):
    return {"id": i, "registered": "2026-01-02T10:00:00Z", "first_used": None, "last_used": None,
            "filament": {"id": 100 + i, "registered": "2026-01-01T10:00:00Z", "name": f"{material} black",
                         "vendor": {"id": 1, "registered": "2026-01-01T09:00:00Z", "name": "Polymaker", "extra": {}},
                         "material": material, "price": filament_price, "density": density, "diameter": 1.75,
                         "weight": weight, "spool_weight": 140, "extra": {}, "tags": []},
            "price": price, "remaining_weight": 600.0, "initial_weight": initial_weight, "spool_weight": 140,
            "used_weight": 400.0, "remaining_length": 200_000.0, "used_length": 134_000.0, "location": "Shelf A",
            "archived": False, "extra": {}, "tags": []}


SPOOLS = [spool(1, "PLA", 1.24, price=20.0, initial_weight=1000.0),   # the inventory's PLA price wins
          spool(2, "PETG", 1.27, price=270.0, initial_weight=1000.0),  # PETG: (270 + 150) SEK over 1.5 kg
          spool(3, "PETG", 1.27, filament_price=150.0, weight=500.0),
          spool(4, "PA-CF", 1.15)]                                     # a density, no price


class Standin:
    def __init__(self, body: bytes, status: int = 200):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.paths.append(self.path)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass
        self.paths: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def standin():
    made = []

    def make(body, status=200):
        made.append(Standin(body if isinstance(body, bytes) else json.dumps(body).encode(), status))
        return made[-1]
    yield make
    for s in made:
        s.close()


def inv(url, **extra):
    return inventory.from_dict({**BASE, "spoolman": {"url": url, "timeout": 5}, **extra})


def test_the_standins_spools_have_every_field_spoolmans_model_requires():
    for s in SPOOLS:
        assert SPOOL_REQUIRED <= set(s) and FILAMENT_REQUIRED <= set(s["filament"])


def test_spoolman_fills_prices_and_densities_the_inventory_leaves_out(standin):
    server = standin(SPOOLS)
    prices = Prices(inv(server.url, materials={"PLA": {"price_per_kg": 300}}))
    assert server.paths == ["/api/v1/spool"] and prices.spoolman_problem is None
    assert prices.price_per_kg("PLA") == 300  # the inventory's
    assert math.isclose(prices.price_per_kg(prices.kind("Generic PETG")), 280.0)
    assert prices.kind("PA-CF") == "PACF" and prices.price_per_kg("PACF") is None
    assert math.isclose(prices.grams_of_mm("PACF", 1000), 2.405281875 * 1.15, rel_tol=1e-6)


def test_spoolman_is_read_once_per_run(standin):
    server = standin(SPOOLS)
    i = inv(server.url)
    Prices(i), Prices(i), Prices(i.of_organisation(next(iter(i.orgs))))
    assert len(server.paths) == 1


@pytest.mark.parametrize("body, status", [(b"<html>oops</html>", 200), ({"detail": "x"}, 200), (b"[]", 500)])
def test_a_spoolman_that_answers_garbage_leaves_the_inventorys_prices_and_a_note(standin, body, status):
    server = standin(body, status)
    i = inv(server.url, materials={"PLA": {"price_per_kg": 300}}, rates={"hour_rate": 10})
    view = cost.compute(_span("done", []), i)
    assert view.spoolman and server.url in view.spoolman
    assert "cost_spoolman" in [code for code, _ in cost.notes(view)]
    assert Prices(i).price_per_kg("PLA") == 300


def test_a_spoolman_that_is_down_is_a_note_not_a_crash(standin):
    server = standin(SPOOLS)
    url = server.url
    server.close()
    view = cost.compute(_span("done", []), inv(url, rates={"hour_rate": 10}))
    assert view.spoolman and view.jobs[0].cost == 20.0


@pytest.mark.parametrize("table, key", [({"url": "spoolman.local"}, "spoolman.url"),
                                        ({"url": "http://x", "timeout": 0}, "spoolman.timeout"),
                                        ({"url": "http://x", "token": "a"}, "spoolman.token")])
def test_a_wrong_spoolman_table_is_refused_naming_the_key(table, key):
    with pytest.raises(ConfigError) as found:
        inventory.from_dict({**BASE, "spoolman": table})
    assert found.value.key == key

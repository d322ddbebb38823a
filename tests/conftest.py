"""Shared pytest fixtures.

The server processes come from tools/devkit/servers/, which has no pytest in it so that benchmarks and
the demo can use it too. A missing binary makes these fixtures error, never skip.
Application-specific fixtures go at the end of this file.
"""

import fcntl
import os

import pytest

from devkit.servers import InfluxDB, Klipper, Moonraker, Mosquitto, OctoPrint


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "integration: starts real mosquitto/influxd/OctoPrint processes")


# -- real servers on free loopback ports, fresh per test ----------------------------------------

@pytest.fixture
def mosquitto(tmp_path):
    """A broker with unlimited queues and persistence in tmp_path (starts in ~25 ms)."""
    with Mosquitto(tmp_path / "mosquitto") as broker:
        yield broker


@pytest.fixture
def influxdb(tmp_path):
    """An influxd 1.6 with its data in tmp_path. It answers /ping ~25 ms after exec, so a
    session-scoped server would save nothing and would share state between tests."""
    with InfluxDB(tmp_path / "influxdb") as server:
        yield server


@pytest.fixture
def octoprint_factory(tmp_path):
    """Call it (keyword arguments go to OctoPrint()) to start one more OctoPrint with a
    connected virtual printer (~0.8 s each); all of them are stopped at teardown."""
    started = []

    def start(**kwargs) -> OctoPrint:
        server = OctoPrint(tmp_path / f"octoprint{len(started)}", **kwargs)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def moonraker_factory(tmp_path):
    """Call it (keyword arguments go to Moonraker()) to start Klipper's host in batch mode and a
    Moonraker in front of it, answering with Klipper ready (~1 s + ~3 s); all are stopped at
    teardown. The Moonraker has ``.klipper``."""
    started = []

    def start(**kwargs) -> Moonraker:
        base = tmp_path / f"moonraker{len(started)}"
        klipper = Klipper(base / "klipper").start()
        server = Moonraker(base / "moonraker", klipper, **kwargs)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
        server.klipper.remove()


@pytest.fixture
def octoprint(octoprint_factory):
    """One OctoPrint, Operational, API key of user `operator` in `.api_key`."""
    return octoprint_factory()


# -- one at a time across parallel workers ------------------------------------------------------

@pytest.fixture
def demo_stack_turn(tmp_path_factory):
    """Tests that run a whole demo stack (simulator, collector, a handful of agents) take turns
    across the parallel workers: several at once on 2 cores starve each other's start-up."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, shared by its workers
    with open(root / "demo-stack.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield

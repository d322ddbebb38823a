"""One agent flooding the alerts: 10,000 rising drop counts through the started engine, with a
real local webhook that is down meanwhile. The incident file is written off the ingest thread and
a bounded number of times; the critical alert raised in the middle of the flood is delivered."""

from __future__ import annotations

import os
import threading

import pytest

from devkit.pipeline import wait_for
from devkit.receivers import WebhookReceiver
from server import inventory as inventory_mod
from server.alerts import config as alerts_config
from server.alerts.engine import Engine
from tests.unit.alert_helpers import INVENTORY, Clock, agent_status, event, tags, telemetry

pytestmark = pytest.mark.integration

FLOOD = 10_000


@pytest.fixture
def hook():
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


def test_a_drop_count_flood_costs_bounded_io_and_the_critical_alert_among_it_is_delivered(tmp_path, hook,
                                                                                         monkeypatch):
    cfg = alerts_config.load({"receivers": {"hook": {"type": "webhook", "url": hook.url, "queue_size": 100,
                                                     "retry_min": 0.05, "retry_max": 0.2}},
                              "cooldown": 300, "tick_interval": 0.05}, str(tmp_path))
    writes = []  # (thread) of every replacement of the incident file
    real_replace = os.replace

    def counting_replace(src, dst, *args, **kwargs):
        if str(dst) == cfg.state_file:
            writes.append(threading.current_thread())
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", counting_replace)
    clock = Clock()
    engine = Engine(cfg, clock=clock, inventory=inventory_mod.from_dict(INVENTORY))
    engine.start()
    try:
        hook.go_down()
        engine.on_message(telemetry("printing", file="cube.gcode"), tags())
        engine.on_message(agent_status("online", dropped=0), None)
        for dropped in range(1, FLOOD + 1):
            engine.on_message(agent_status("online", dropped=dropped), None)
            if dropped == FLOOD // 2:
                engine.on_message(event("failed", error="Error: nozzle fell off"), tags())
        hook.come_back()
        wait_for(lambda: hook.of("print_failed"), 15, "the critical alert at the webhook")
        assert [n["rule"] for n in hook.notes] == ["agent_dropping", "print_failed"]
        clock.advance(301)  # the cooldown is over: the waiting drop notice goes, with the newest count
        wait_for(lambda: len(hook.of("agent_dropping")) == 2, 15, "the gathered drop notice")
        wait_for(lambda: writes, 5, "the store to write the incidents")
        running = list(writes)
    finally:
        engine.stop()
    assert f"{FLOOD} since its first start" in hook.of("agent_dropping")[1]["text"]
    assert threading.main_thread() not in running  # never on the ingest (here: the main) thread
    assert len(running) <= 20, len(running)  # at most one write per second, however many changes
    assert os.path.getsize(cfg.state_file) < 200_000

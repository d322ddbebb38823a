"""The demo stack's own start-up: a port taken between pick and bind costs a retry, not the run."""

from __future__ import annotations

import socket

import pytest

from devkit.demo import stack as stack_mod
from devkit.demo.stack import Stack, StackOptions
from devkit.servers.ports import HOST, free_port

pytestmark = pytest.mark.integration

FLEET = {"lab": ("Lab", "Org", "Örebro län", [("orebro-mk4-01", "Prusa MK4", "octoprint")])}


def test_the_collector_starts_again_on_another_port_when_its_port_was_taken(tmp_path, monkeypatch):
    taken = free_port()
    picks = iter([taken])
    monkeypatch.setattr(stack_mod, "free_port", lambda: next(picks, None) or free_port())
    stack = Stack(tmp_path, FLEET, StackOptions())
    # No broker or database: the collector answers on HTTP before it reaches either.
    stack.broker_port, stack.influx_port = free_port(), free_port()
    with socket.socket() as squatter:
        squatter.bind((HOST, taken))
        squatter.listen()
        try:
            stack.start_collector()
            assert stack.http_port != taken and stack.fleet_state() is not None
        finally:
            stack.children.stop_all()
    assert "cannot listen on 127.0.0.1:%d" % taken in (tmp_path / "logs" / "collector.log").read_text()

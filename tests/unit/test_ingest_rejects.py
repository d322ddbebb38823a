"""Ingest's handling of bad input: a counter per reason, one log line per reason, never an exception."""

import logging

from common import protocol as p
from server.live import LiveFleet
from server.ingest import Ingest, RejectLog
from server.inventory import Inventory, PrinterEntry, Site

NOW_S = 1_790_000_000.0


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def make_ingest():
    inventory = Inventory(sites={}, printers={})
    lines = []
    ingest = Ingest(inventory, LiveFleet(inventory), lines.append, clock=lambda: NOW_S)
    return ingest, lines


def good(seq):
    return p.encode(p.Telemetry(v=1, ts=int(NOW_S * 1000), printer="mk4-01", site="umu", seq=seq, state="idle"))


def test_rejects_are_counted_by_reason_and_good_messages_still_pass():
    ingest, lines = make_ingest()
    topic = p.printer_topic("umu", "mk4-01", "telemetry")
    ingest.handle(topic, good(1))
    ingest.handle(topic, b"{not json")
    ingest.handle(topic, b'{"v": 9, "ts": 1}')
    ingest.handle("printfarm/v1/UPPER/x/telemetry", good(2))
    ingest.handle(topic, good(3))
    ingest.end_burst()
    assert ingest.metrics.rejected == {"malformed_json": 1, "unknown_version": 1, "bad_topic": 1}
    assert ingest.metrics.counters["messages_received"] == 5 and ingest.metrics.counters["messages_accepted"] == 2
    assert len(lines) == 2


def test_a_repeated_rejection_is_logged_once_then_summarised(caplog):
    clock = Clock()
    rejects = RejectLog(every=60, clock=clock)
    with caplog.at_level(logging.WARNING, logger="server.ingest"):
        for _ in range(100):
            rejects.note("malformed_json", "printfarm/v1/umu/mk4-01/telemetry", "bad")
        rejects.note("too_large", "printfarm/v1/umu/mk4-01/telemetry", "big")
        assert len(caplog.records) == 2
        clock.now = 61
        rejects.note("malformed_json", "printfarm/v1/umu/mk4-01/telemetry", "bad")
    assert len(caplog.records) == 3
    assert "and 99 more since the last report" in caplog.records[-1].getMessage()


def test_message_counts_are_exact_at_each_bursts_end_and_not_counted_twice():
    inventory = Inventory(sites={"umu": Site("UmU", "AC")}, printers={"mk4-01": PrinterEntry("umu")})
    ingest = Ingest(inventory, LiveFleet(inventory), [].append, clock=lambda: NOW_S)
    topic = p.printer_topic("umu", "mk4-01", "telemetry")
    counters = ingest.metrics.counters
    for ts in (1, 2, 3):  # the first takes the slow path, the rest the topic's route
        ingest.handle(topic, good(ts))
    ingest.handle(topic, b"{not json")
    assert counters["messages_received"] == 0  # counted once per burst, not per message
    ingest.end_burst()
    assert (counters["messages_received"], counters["messages_accepted"]) == (4, 3)
    ingest.end_burst()  # an empty burst adds nothing
    ingest.handle(topic, good(4))
    ingest.end_burst()
    assert (counters["messages_received"], counters["messages_accepted"]) == (5, 4)

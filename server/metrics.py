"""The collector's self-monitoring counters, exposed in Prometheus format.

One ``Metrics`` object per collector, handed to the parts that count (ingest, the writer, the
MQTT reader, alerts). Counting happens on the hot path, so counters are plain dict increments
(the GIL makes them safe enough for monitoring); ``prometheus_client`` renders them through a
custom collector only when /metrics is scraped.
"""

from __future__ import annotations

import collections
import threading
from typing import Callable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import CollectorRegistry

HELP = {
    "messages_received": "MQTT messages received",
    "messages_accepted": "messages that passed validation",
    "points_written": "points written to InfluxDB",
    "influx_write_errors": "failed InfluxDB write attempts",
    "influx_points_rejected_batches": "batches InfluxDB refused as bad data",
    "influx_write_too_large": "bodies InfluxDB refused as too large (413); each is split and written in halves",
    "influx_points_rejected_too_large": "single lines InfluxDB refused as over its body limit (dropped)",
    "temperatures_dropped": "temperatures left out of telemetry for an unknown sensor name (the rest is kept)",
    "unlisted_messages": "messages from printers missing from the inventory (stored, flagged)",
    "points_spooled": "points put in the on-disk spool because InfluxDB could not take them",
    "handler_errors": "messages whose handling raised (a bug; the message is still acknowledged)",
    "rollup_runs": "completed runs of the utilisation rollups",
    "rollup_points_written": "rollup points written (hours of printers, extents, zeroed points)",
}

# Every reason common.protocol.decode (and ingest) can reject with, so each series exists from 0.
REJECT_REASONS = ("bad_topic", "too_large", "malformed_json", "invalid_schema", "unknown_version",
                  "not_finite", "out_of_range", "bad_timestamp", "future_timestamp", "topic_mismatch",
                  "unlisted", "too_many_unlisted")

WRITE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.counters: collections.Counter = collections.Counter()
        self.rejected: collections.Counter = collections.Counter()
        self.gauges: dict[str, Callable[[], float]] = {}
        self._write_hist = [0] * (len(WRITE_BUCKETS) + 1)
        self._write_sum = 0.0
        self._lock = threading.Lock()
        self.registry = CollectorRegistry()
        self.registry.register(_Exposition(self))

    def inc(self, name: str, amount: int = 1) -> None:
        self.counters[name] += amount

    def reject(self, reason: str) -> None:
        self.rejected[reason] += 1

    def gauge(self, name: str, read: Callable[[], float]) -> None:
        self.gauges[name] = read

    def observe_write(self, seconds: float, points: int) -> None:
        self.counters["points_written"] += points
        with self._lock:
            self._write_sum += seconds
            for i, bound in enumerate(WRITE_BUCKETS):
                if seconds <= bound:
                    self._write_hist[i] += 1
                    break
            else:
                self._write_hist[-1] += 1

    def write_histogram(self) -> tuple[list[tuple[str, int]], float]:
        """Cumulative (bound, count) buckets and the sum of seconds."""
        with self._lock:
            cumulative, buckets = 0, []
            for bound, count in zip((*map(str, WRITE_BUCKETS), "+Inf"), self._write_hist):
                cumulative += count
                buckets.append((bound, cumulative))
            return buckets, self._write_sum


class _Exposition:
    """Renders one Metrics object for prometheus_client, only when scraped."""

    def __init__(self, metrics: Metrics):
        self.m = metrics

    def collect(self):
        m = self.m
        for name in sorted(set(HELP) | set(m.counters)):
            yield CounterMetricFamily(f"printfarm_{name}", HELP.get(name, name), value=m.counters.get(name, 0))
        family = CounterMetricFamily("printfarm_messages_rejected", "messages rejected, by reason", labels=["reason"])
        for reason in sorted(set(REJECT_REASONS) | set(m.rejected)):
            family.add_metric([reason], m.rejected.get(reason, 0))
        yield family
        for name, read in sorted(m.gauges.items()):
            yield GaugeMetricFamily(f"printfarm_{name}", name.replace("_", " "), value=read())
        buckets, total = m.write_histogram()
        yield HistogramMetricFamily("printfarm_influx_write_seconds", "InfluxDB batch write latency",
                                    buckets=buckets, sum_value=total)

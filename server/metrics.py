"""The collector's self-monitoring counters, exposed in Prometheus format.

Counting happens on the hot path, so counters are plain dict increments (the GIL
makes them safe enough for monitoring); ``prometheus_client`` renders them through
a custom collector only when /metrics is scraped.
"""

from __future__ import annotations

import collections
import threading
from typing import Callable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import CollectorRegistry

counters: collections.Counter = collections.Counter()
rejected: collections.Counter = collections.Counter()
gauges: dict[str, Callable[[], float]] = {}

_WRITE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_write_hist = [0] * (len(_WRITE_BUCKETS) + 1)
_write_sum = [0.0]
_lock = threading.Lock()

HELP = {
    "messages_received": "MQTT messages received",
    "messages_accepted": "messages that passed validation",
    "points_written": "points written to InfluxDB",
    "influx_write_errors": "failed InfluxDB write attempts",
    "influx_points_rejected_batches": "batches InfluxDB refused as bad data",
    "unlisted_messages": "messages from printers missing from the inventory (stored, flagged)",
    "points_spooled": "points put in the on-disk spool because InfluxDB could not take them",
    "handler_errors": "messages whose handling raised (a bug; the message is still acknowledged)",
}

# Every reason common.protocol.decode (and ingest) can reject with, so each series exists from 0.
REJECT_REASONS = ("bad_topic", "too_large", "malformed_json", "invalid_schema", "unknown_version",
                  "not_finite", "out_of_range", "bad_timestamp", "future_timestamp", "topic_mismatch")


def counter_inc(name: str, amount: int = 1) -> None:
    counters[name] += amount


def reject(reason: str) -> None:
    rejected[reason] += 1


def gauge(name: str, read: Callable[[], float]) -> None:
    gauges[name] = read


def observe_write(seconds: float, points: int) -> None:
    counters["points_written"] += points
    with _lock:
        _write_sum[0] += seconds
        for i, bound in enumerate(_WRITE_BUCKETS):
            if seconds <= bound:
                _write_hist[i] += 1
                break
        else:
            _write_hist[-1] += 1


def reset() -> None:
    """For tests: start from zero."""
    counters.clear()
    rejected.clear()
    gauges.clear()
    with _lock:
        _write_hist[:] = [0] * len(_write_hist)
        _write_sum[0] = 0.0


class _Collector:
    def collect(self):
        for name in sorted(set(HELP) | set(counters)):
            yield CounterMetricFamily(f"printfarm_{name}", HELP.get(name, name), value=counters.get(name, 0))
        family = CounterMetricFamily("printfarm_messages_rejected", "messages rejected, by reason", labels=["reason"])
        for reason in sorted(set(REJECT_REASONS) | set(rejected)):
            family.add_metric([reason], rejected.get(reason, 0))
        yield family
        for name, read in sorted(gauges.items()):
            yield GaugeMetricFamily(f"printfarm_{name}", name.replace("_", " "), value=read())
        yield self._histogram()

    def _histogram(self):
        with _lock:
            cumulative, buckets = 0, []
            for bound, count in zip((*map(str, _WRITE_BUCKETS), "+Inf"), _write_hist):
                cumulative += count
                buckets.append((bound, cumulative))
            total = _write_sum[0]
        return HistogramMetricFamily("printfarm_influx_write_seconds", "InfluxDB batch write latency",
                                     buckets=buckets, sum_value=total)


registry = CollectorRegistry()
registry.register(_Collector())

#!/usr/bin/env bash
# Every benchmark, one after the other (they measure CPU, so never in parallel), each
# printing its own figures. Run from the repository root with the dev extras installed.
set -euo pipefail
cd "$(dirname "$0")/.."
for bench in agent_footprint collector_throughput alert_latency report_speed fleet_scale; do
  echo "=== bench/$bench.py  (load: $(cut -d' ' -f1-3 /proc/loadavg)) ==="
  python "bench/$bench.py"
done

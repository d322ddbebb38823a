#!/usr/bin/env bash
# Every benchmark, one after the other (they measure CPU, so never in parallel), each
# printing its own figures. Run from the repository root with the dev extras installed.
# A benchmark that misses a target exits non-zero: the others still run, and this script
# then names the ones that missed and exits 1.
set -uo pipefail
cd "$(dirname "$0")/.."
missed=()
for bench in agent_footprint hostile_printers collector_throughput alert_latency report_speed rollup_cost organisations_cost fleet_scale bookings_load; do
  echo "=== bench/$bench.py  (load: $(cut -d' ' -f1-3 /proc/loadavg)) ==="
  python "bench/$bench.py" || missed+=("$bench")
done
if ((${#missed[@]})); then
  echo "missed a target (or failed): ${missed[*]}"
  exit 1
fi

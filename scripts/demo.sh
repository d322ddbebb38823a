#!/usr/bin/env bash
# The main job in one command: a live simulated regional fleet through the whole pipeline
# (simulated OctoPrint printers -> agents -> Mosquitto -> collector -> InfluxDB), with a
# local broker and database it starts itself in a temporary folder. Ctrl-C stops it all.
# Options go to printfarm-demo (try --help), e.g. `bash scripts/demo.sh --speed 60`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
apt_install mosquitto influxdb nats-server python3-venv
run_root systemctl disable --now mosquitto influxdb nats-server >/dev/null 2>&1 || true
project_venv ".[agent,server]"
exec printfarm-demo "$@"

#!/usr/bin/env bash
# Installs everything the test suite needs on Debian/Ubuntu: the real servers the
# integration tests start (Mosquitto, InfluxDB 1.x, OctoPrint in its own venv), the
# tools the report, page and deploy tests use, and this package with its dev extras
# in ./.venv (Debian's own Python refuses system-wide pip installs).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

apt_install mosquitto mosquitto-clients influxdb influxdb-client poppler-utils chromium \
  gcc python3-dev python3-venv openssl docker-compose
# The Debian packages enable their own services; the tests start private instances instead.
run_root systemctl disable --now mosquitto influxdb >/dev/null 2>&1 || true

# OctoPrint pins versions that clash with ours: it lives in its own virtual environment.
OCTOPRINT_VENV="${PRINTFARM_OCTOPRINT_VENV:-/opt/octoprint-venv}"
if [ ! -x "$OCTOPRINT_VENV/bin/octoprint" ]; then
  step "OctoPrint 1.11 into $OCTOPRINT_VENV"
  python3 -m venv "$OCTOPRINT_VENV"
  "$OCTOPRINT_VENV/bin/pip" install -q --upgrade pip
  "$OCTOPRINT_VENV/bin/pip" install -q "octoprint==1.11.*"
fi

project_venv ".[dev]"

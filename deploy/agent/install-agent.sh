#!/bin/sh
# Install the printfarm agent on Raspberry Pi OS (Debian 12 "bookworm" or later).
#
#   sudo ./deploy/agent/install-agent.sh [SOURCE]
#
# SOURCE is what pip installs: this checkout (default) or e.g. a wheel file.
# Safe to run again for upgrades: it never overwrites an existing /etc/printfarm/agent.toml.
#
# Result:
#   /opt/printfarm-agent/venv        virtual environment with `pip install SOURCE[agent]`
#   /etc/printfarm/agent.toml        config (from examples/agent.toml on the first install)
#   /etc/printfarm/keys/             one OctoPrint API key per file; mqtt-password beside it
#   /var/lib/printfarm-agent         outbox + open jobs (systemd StateDirectory)
#   printfarm-agent.service          enabled; started once the config checks out
set -eu

PREFIX=/opt/printfarm-agent
ETC=/etc/printfarm
SVC_USER=printfarm-agent
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SOURCE=${1:-$REPO}

say() { printf '%s\n' "install-agent: $*"; }
die() { printf '%s\n' "install-agent: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root: sudo $0 $*"
command -v systemctl >/dev/null || die "systemd is required"

if ! python3 -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    say "installing python3 and python3-venv (Python 3.11 or newer is needed)"
    apt-get update -q
    apt-get install -y -q --no-install-recommends python3 python3-venv
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "Python $(python3 -V) is too old: use Raspberry Pi OS bookworm (Python 3.11) or newer"
fi

if ! id -u "$SVC_USER" >/dev/null 2>&1; then
    say "creating system user $SVC_USER"
    useradd --system --no-create-home --home-dir /var/lib/printfarm-agent \
        --shell /usr/sbin/nologin "$SVC_USER"
fi

say "setting up $PREFIX/venv"
python3 -m venv "$PREFIX/venv"
# Only the agent's extra: no server dependencies on a Pi. On 32-bit Pi OS pip finds
# prebuilt wheels (msgspec) on piwheels.org, which Pi OS configures in /etc/pip.conf.
"$PREFIX/venv/bin/pip" install --quiet --disable-pip-version-check "${SOURCE}[agent]"

# Config and secrets: readable by the service's group, never by everyone.
install -d -m 0750 -o root -g "$SVC_USER" "$ETC" "$ETC/keys"
if [ ! -e "$ETC/agent.toml" ]; then
    install -m 0640 -o root -g "$SVC_USER" "$REPO/examples/agent.toml" "$ETC/agent.toml"
    say "wrote $ETC/agent.toml from the example: edit [agent], [broker] and [[printers]]"
fi

install -m 0644 "$HERE/printfarm-agent.service" /etc/systemd/system/printfarm-agent.service
systemctl daemon-reload
systemctl enable printfarm-agent.service >/dev/null

if runuser -u "$SVC_USER" -- "$PREFIX/venv/bin/printfarm-agent" check-config --config "$ETC/agent.toml"; then
    systemctl restart printfarm-agent.service
    say "running: journalctl -u printfarm-agent -f"
else
    cat <<MSG
install-agent: installed, but the config above is not ready, so the agent is not started.
  1. edit $ETC/agent.toml (state_dir must stay /var/lib/printfarm-agent)
  2. put each printer's OctoPrint API key in $ETC/keys/<printer-id> and the MQTT password in
     $ETC/mqtt-password, then: chgrp $SVC_USER <file> && chmod 0640 <file>
  3. sudo systemctl start printfarm-agent && journalctl -u printfarm-agent -f
MSG
fi

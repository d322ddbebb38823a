#!/usr/bin/env bash
# Add (or update) an agent: its broker account, its ACL entry and a config skeleton.
#
#   ./add-agent.sh AGENT_ID SITE PRINTER [PRINTER ...]     (a PRINTER may be SITE/PRINTER)
#   ./add-agent.sh --rotate AGENT_ID ...                    new password for an existing agent
#
# The agent may then publish only printfarm/v1/<site>/<printer>/<channel> of its printers and its own
# printfarm/v1/agent/<AGENT_ID>/status. Running it again with other printers replaces the
# agent's ACL entry. Writes agents/<AGENT_ID>/ (agent.toml, mqtt-password, ca.crt) to copy to
# the Pi. Then reload the broker: docker compose kill -s SIGHUP mosquitto
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CENTRAL_DIR"

rotate=no
if [ "${1:-}" = --rotate ]; then rotate=yes; shift; fi
[ $# -ge 3 ] || die "usage: $0 [--rotate] AGENT_ID SITE PRINTER [PRINTER ...]"
agent=$1 site=$2
shift 2
check_id "agent id" "$agent"
[ "$agent" != collector ] || die "'collector' is the collector's account"
check_id site "$site"
topics=()
for spec in "$@"; do
    if [[ "$spec" == */* ]]; then psite=${spec%%/*} printer=${spec#*/}; else psite=$site printer=$spec; fi
    check_id site "$psite"
    check_id printer "$printer"
    topics+=("printfarm/v1/$psite/$printer/+")
done

out="agents/$agent"
mkdir -p "$out"
chmod 0700 "$out"
if [ "$rotate" = yes ] || [ ! -s "$out/mqtt-password" ]; then
    (umask 077 && random_secret > "$out/mqtt-password")
fi
mqtt_passwd "$agent" "$(cat "$out/mqtt-password")"

# Replace this agent's block in the ACL (between its begin/end markers), then append it anew.
acl=mosquitto/acl
sed -i "/^# agent $agent begin\$/,/^# agent $agent end\$/d" "$acl"
{
    echo "# agent $agent begin"
    echo "user $agent"
    for topic in "${topics[@]}"; do echo "topic write $topic"; done
    echo "topic write printfarm/v1/agent/$agent/status"
    echo "# agent $agent end"
} >> "$acl"

[ -f certs/ca.crt ] && cp certs/ca.crt "$out/ca.crt"
host=$(env_value BROKER_HOSTNAME 2>/dev/null || true)
port=$(env_value MQTT_TLS_PORT 2>/dev/null || true)
{
    echo "# printfarm agent $agent, made by add-agent.sh. Copy this folder to the Pi's /etc/printfarm/"
    echo "# and fill in each printer's url and API key file."
    echo 'log_level = "INFO"'
    echo
    echo "[agent]"
    echo "id = \"$agent\""
    echo "site = \"$site\""
    echo 'state_dir = "/var/lib/printfarm-agent"'
    echo
    echo "[broker]"
    echo "host = \"${host:-mqtt.printfarm.example}\""
    echo "port = ${port:-8883}"
    echo "username = \"$agent\""
    echo 'password_file = "/etc/printfarm/mqtt-password"'
    echo
    echo "[broker.tls]"
    echo 'ca = "/etc/printfarm/ca.crt"'
    echo
    echo "[privacy]                          # what leaves the site: full | masked | status (docs/access.md)"
    echo 'sharing = "full"'
    echo "# a copy of the collector's secret: docker compose cp collector:/var/lib/printfarm-server/pseudonym-secret $out/"
    echo 'secret_file = "/etc/printfarm/pseudonym-secret"'
    for spec in "$@"; do
        if [[ "$spec" == */* ]]; then psite=${spec%%/*} printer=${spec#*/}; else psite=$site printer=$spec; fi
        echo
        echo "[[printers]]"
        echo "id = \"$printer\""
        [ "$psite" = "$site" ] || echo "site = \"$psite\""
        echo 'url = "http://127.0.0.1:5000"             # this printer'"'"'s OctoPrint'
        echo "api_key_file = \"/etc/printfarm/keys/$printer\""
    done
} > "$out/agent.toml"

echo "agent $agent may publish: ${topics[*]} printfarm/v1/agent/$agent/status"
echo "wrote $out/ (agent.toml, mqtt-password, ca.crt): copy it to the Pi's /etc/printfarm/"
echo "next: add the printers to collector/fleet.toml, then: docker compose kill -s SIGHUP mosquitto"

#!/usr/bin/env bash
# Prepare deploy/central for its first `docker compose up`; safe to run again (keeps what exists):
#   .env with random passwords (from .env.example), a CA and the broker's and Grafana's TLS
#   certificates in certs/, and the collector's account in mosquitto/passwd.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$CENTRAL_DIR"

if [ ! -f .env ]; then
    umask 077
    while IFS= read -r line; do
        if [[ "$line" =~ ^([A-Z_]+)=change-me ]]; then line="${BASH_REMATCH[1]}=$(random_secret)"; fi
        printf '%s\n' "$line"
    done < .env.example > .env
    umask 022
    echo "wrote .env with random passwords: set BROKER_HOSTNAME in it, then run me again"
    exit 0
fi

host=$(env_value BROKER_HOSTNAME)
[ -n "$host" ] || die "BROKER_HOSTNAME is empty in .env: set it to the name agents connect to"
grafana_host=$(env_value GRAFANA_HOSTNAME)
[ -n "$grafana_host" ] || die "GRAFANA_HOSTNAME is empty in .env: set it to the name people open Grafana by"
mkdir -p certs
if [ ! -f certs/ca.crt ]; then
    openssl req -x509 -newkey rsa:3072 -sha256 -days 3650 -nodes -subj "/CN=printfarm CA" \
        -keyout certs/ca.key -out certs/ca.crt 2>/dev/null
    echo "made a CA in certs/ca.crt: agents trust it (copy it to each Pi)"
fi
# issue NAME HOST: certs/NAME.crt and .key for HOST, signed by the CA (kept when it exists).
issue() {
    [ ! -f "certs/$1.crt" ] || return 0
    openssl req -newkey rsa:3072 -sha256 -nodes -subj "/CN=$2" \
        -keyout "certs/$1.key" -out "certs/$1.csr" 2>/dev/null
    openssl x509 -req -in "certs/$1.csr" -CA certs/ca.crt -CAkey certs/ca.key -CAcreateserial \
        -days 825 -sha256 -out "certs/$1.crt" \
        -extfile <(printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n' "$2") 2>/dev/null
    rm -f "certs/$1.csr"
    echo "made the certificate for $2 in certs/$1.crt"
}
issue server "$host"        # the broker's
issue grafana "$grafana_host"  # Grafana serves HTTPS only (compose.yaml)
chmod 0600 certs/ca.key certs/server.key certs/grafana.key
readable_by_broker certs/server.key
readable_by_grafana certs/grafana.key

mqtt_passwd collector "$(env_value COLLECTOR_MQTT_PASSWORD)"
echo "collector account in mosquitto/passwd; next: docker compose up -d --build"

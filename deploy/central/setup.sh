#!/usr/bin/env bash
# Prepare deploy/central for its first `docker compose up`; safe to run again (keeps what exists):
#   .env with random passwords (from .env.example), a CA and the broker's TLS certificate in
#   certs/, and the collector's account in mosquitto/passwd.
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
mkdir -p certs
if [ ! -f certs/ca.crt ]; then
    openssl req -x509 -newkey rsa:3072 -sha256 -days 3650 -nodes -subj "/CN=printfarm CA" \
        -keyout certs/ca.key -out certs/ca.crt 2>/dev/null
    echo "made a CA in certs/ca.crt: agents trust it (copy it to each Pi)"
fi
if [ ! -f certs/server.crt ]; then
    openssl req -newkey rsa:3072 -sha256 -nodes -subj "/CN=$host" \
        -keyout certs/server.key -out certs/server.csr 2>/dev/null
    openssl x509 -req -in certs/server.csr -CA certs/ca.crt -CAkey certs/ca.key -CAcreateserial \
        -days 825 -sha256 -out certs/server.crt \
        -extfile <(printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n' "$host") 2>/dev/null
    rm -f certs/server.csr
    echo "made the broker's certificate for $host in certs/server.crt"
fi
chmod 0600 certs/ca.key certs/server.key
readable_by_broker certs/server.key

mqtt_passwd collector "$(env_value COLLECTOR_MQTT_PASSWORD)"
echo "collector account in mosquitto/passwd; next: docker compose up -d --build"

# Shared by setup.sh and add-agent.sh; sourced, not run.
# CENTRAL_DIR: the deploy/central folder to work in (default: the scripts' own folder).

CENTRAL_DIR=${CENTRAL_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
MOSQUITTO_IMAGE=${MOSQUITTO_IMAGE:-eclipse-mosquitto:2.0}
MOSQUITTO_UID=1883   # the user mosquitto runs as inside its image: it must read passwd and the key
GRAFANA_UID=472      # the user Grafana runs as inside its image: it must read its key
ID_RE='^[a-z0-9][a-z0-9_-]{0,63}$'

die() { echo "error: $*" >&2; exit 1; }

env_value() {  # env_value NAME: its value in .env
    sed -n "s/^$1=//p" "$CENTRAL_DIR/.env" | tail -n 1
}

random_secret() { openssl rand -hex 24; }

# mqtt_passwd USER PASSWORD: add or replace USER's entry in mosquitto/passwd.
# Uses $MOSQUITTO_PASSWD, or mosquitto_passwd on the PATH, or the broker's own image. The
# password goes in on stdin (its prompt and the repeat), never on a command line, where any
# user on the host could read it (ps, /proc/<pid>/cmdline); printf is a shell builtin.
mqtt_passwd() {
    local file="$CENTRAL_DIR/mosquitto/passwd" create=()
    [ -s "$file" ] || create=(-c)
    if [ -n "${MOSQUITTO_PASSWD:-}" ] || command -v mosquitto_passwd >/dev/null; then
        printf '%s\n%s\n' "$2" "$2" | "${MOSQUITTO_PASSWD:-mosquitto_passwd}" "${create[@]}" "$file" "$1" >/dev/null
    else
        touch "$file"
        printf '%s\n%s\n' "$2" "$2" | docker run --rm -i -v "$CENTRAL_DIR/mosquitto:/m" "$MOSQUITTO_IMAGE" \
            mosquitto_passwd "${create[@]}" /m/passwd "$1" >/dev/null
    fi
    chmod 0600 "$file"
    readable_by_broker "$file"
}

readable_by_broker() {  # the broker drops to uid 1883 before it reads these files
    if [ "$(id -u)" = 0 ]; then chown "$MOSQUITTO_UID" "$@"; fi
}

readable_by_grafana() {
    if [ "$(id -u)" = 0 ]; then chown "$GRAFANA_UID" "$@"; fi
}

check_id() {  # check_id WHAT VALUE
    [[ "$2" =~ $ID_RE ]] || die "$1 '$2' must be lower-case letters, digits, '-' or '_', starting with a letter or digit"
    [ "$2" != agent ] || die "$1 'agent' is reserved for agent status topics"
}

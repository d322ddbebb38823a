# Shared by the set-up scripts. Source it; do not run it.

step() { printf '==> %s\n' "$*"; }

run_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# apt_install PKG...: installs the Debian packages that are missing, and only those.
apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  step "apt-get install ${missing[*]}"
  run_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive run_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

# project_venv EXTRAS: ./.venv with this package (editable, with EXTRAS) and the devkit in
# tools/ (simulator, demo, real-server harness: never in the production wheel), activated.
project_venv() {
  if [ ! -x .venv/bin/python ]; then
    step "python3 -m venv .venv"
    python3 -m venv .venv
  fi
  step "pip install -e '$1' -e ./tools into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e "$1" -e ./tools
  # shellcheck disable=SC1091
  source .venv/bin/activate
}

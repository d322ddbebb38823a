#!/usr/bin/env bash
# The whole test suite, on a fresh Debian/Ubuntu machine: installs what it needs, then runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-test-deps.sh
step "pytest $*"
set +e
python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: treating that as a failure" >&2
  exit 1
fi
exit "$rc"

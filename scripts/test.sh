#!/usr/bin/env bash
# `npm test`: installs what the tests need (as root, idempotently), then runs the unit and integration suites
# against real apptainer and a real registry. Under CI=true a missing component fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -eq 0 ]]; then
  bash scripts/provision.sh
else
  echo "[test] not root: skipping provisioning; the integration tests fail if apptainer or the registry is missing" >&2
fi
[[ -d node_modules ]] || npm ci --no-audit --no-fund

results=$(mktemp)
trap 'rm -f "$results"' EXIT
status=0
node --experimental-vm-modules --no-warnings=ExperimentalWarning node_modules/jest/bin/jest.js \
  --json --outputFile="$results" "$@" || status=$?
# A closing line that any CI log reader understands.
node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`)' "$results" || true
exit $status

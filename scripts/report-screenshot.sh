#!/usr/bin/env bash
# Makes docs/report-html.png, the README's picture of `acl-ipc-guard report --html`: runs the
# demo's job (demo_misuse, step 2 of scripts/demo.sh) under the shim, writes the page from
# its logs and photographs it in headless Chromium (playwright-core, installed into
# build/node when missing). Needs a build (scripts/setup.sh), chromium, node and npm.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/report-html.png}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
mkdir -p "$logs/emu" "$(dirname "$out")"
guard=build/bin/acl-ipc-guard
ASCEND_EMU_DIR="$logs/emu" ACL_IPC_GUARD_LEDGER="$logs/ledger" \
  "$guard" run --log "$logs/demo.%p.json" -- build/tests-bin/demo_misuse >/dev/null 2>&1 || true
"$guard" report --html "$logs/report.html" "$logs"/demo.*.json >/dev/null || true
# The key picked (its events listed under the chart), as a user would after a click.
python3 tests-c/browser/browser.py build "$logs/report.html" "$out" 1100 600 \
  "window.aclIpcGuardReport.selectKey(0, false)"
echo "$out: $(stat -c %s "$out") bytes"

#!/usr/bin/env bash
# Runs every test with the race detector and ends with a one-line summary
# ("tests: N passed, N failed, N skipped") that CI reads.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
go test -race -count=1 -v -timeout 15m ./... 2>&1 | tee "$log" | grep -E '^(ok|FAIL|panic:|\?)|--- (FAIL|SKIP)|_test\.go:[0-9]+:' || true
status=${PIPESTATUS[0]}
passed=$(grep -cE '^\s*--- PASS' "$log")
failed=$(grep -cE '^\s*--- FAIL' "$log")
skipped=$(grep -cE '^\s*--- SKIP' "$log")
echo
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit "$status"

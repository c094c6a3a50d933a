#!/usr/bin/env bash
# Runs every test with the race detector and ends with a one-line summary
# ("tests: N passed, N failed, N skipped") that CI reads. It exits with go
# test's own status, so a failing, panicking or timed-out test, or a package
# that does not build, fails the run.
#
# Environment (defaults in brackets):
#   TEST_PKGS     packages to test [./...]
#   TEST_TIMEOUT  go test -timeout [15m]
#   TEST_FLAGS    extra go test flags [-race]
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# shellcheck disable=SC2086 # the package list and flags are word lists
go test ${TEST_FLAGS--race} -count=1 -v -timeout "${TEST_TIMEOUT:-15m}" ${TEST_PKGS:-./...} 2>&1 |
  tee "$log" |
  grep -E '^(ok|FAIL|panic:|\?)|--- (FAIL|SKIP)|_test\.go:[0-9]+:'
status=${PIPESTATUS[0]}
passed=$(grep -cE '^\s*--- PASS' "$log")
failed=$(grep -cE '^\s*--- FAIL' "$log")
skipped=$(grep -cE '^\s*--- SKIP' "$log")
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  # A panic outside a test, a timeout or a build failure names no test:
  # count each failed package instead, and at least one.
  failed=$(grep -cE '^FAIL\s+\S' "$log")
  [ "$failed" -gt 0 ] || failed=1
fi
echo
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit "$status"

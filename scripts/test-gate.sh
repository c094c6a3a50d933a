#!/usr/bin/env bash
# Checks the gate itself: scripts/test.sh must exit non-zero, and say so in
# its summary line, for a failing test, a panic, a timeout and a package
# that does not build, and exit 0 for a passing one. The packages with those
# outcomes live in scripts/testdata/gate (testdata is outside ./...).
set -uo pipefail
cd "$(dirname "$0")/.."
gate=./scripts/testdata/gate
bad=0
# expect PKG WANT_STATUS(zero|nonzero) SUMMARY_REGEX
expect() {
  local pkg=$1 want=$2 summary=$3 out status
  out=$(TEST_PKGS="$gate/$pkg" TEST_FLAGS= TEST_TIMEOUT=5s ./scripts/test.sh 2>&1)
  status=$?
  local ok=1
  case $want in
    zero) [ "$status" -eq 0 ] || ok=0 ;;
    nonzero) [ "$status" -ne 0 ] || ok=0 ;;
  esac
  echo "$out" | tail -n 1 | grep -qE "^tests: $summary\$" || ok=0
  if [ "$ok" = 1 ]; then
    echo "gate: $pkg: exit $status, $(echo "$out" | tail -n 1) (as expected)"
  else
    echo "gate: $pkg: exit $status, want $want exit and a summary matching '$summary'; output:"
    echo "$out" | sed 's/^/    /'
    bad=1
  fi
}
expect pass zero '1 passed, 0 failed, 0 skipped'
expect fail nonzero '0 passed, 1 failed, 0 skipped'
expect panic nonzero '0 passed, [1-9][0-9]* failed, 0 skipped'
expect hang nonzero '0 passed, [1-9][0-9]* failed, 0 skipped'
expect nobuild nonzero '0 passed, [1-9][0-9]* failed, 0 skipped'
# scripts/fuzz.sh must fail on a package whose tests do not build (it used
# to find no fuzz target there and pass).
if FUZZPKGS="$gate/nobuild" FUZZTIME=1s ./scripts/fuzz.sh >/dev/null 2>&1; then
  echo "gate: fuzz.sh on a package that does not build: exited 0"
  bad=1
else
  echo "gate: fuzz.sh on a package that does not build: non-zero exit (as expected)"
fi
# A stand-in go that reports a failure, as a reviewer's hook would try it.
shim=$(mktemp -d)
trap 'rm -rf "$shim"' EXIT
printf '#!/bin/sh\necho "--- FAIL: TestStandIn (0.00s)"\necho FAIL\nexit 1\n' >"$shim/go"
chmod +x "$shim/go"
if PATH="$shim:$PATH" ./scripts/test.sh >/dev/null 2>&1; then
  echo "gate: a stand-in go that fails: scripts/test.sh exited 0"
  bad=1
else
  echo "gate: a stand-in go that fails: non-zero exit (as expected)"
fi
if [ "$bad" != 0 ]; then
  echo "gate: scripts/test.sh does not fail as it must"
  exit 1
fi
echo "gate: scripts/test.sh and scripts/fuzz.sh fail on every kind of failure"

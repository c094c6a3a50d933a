#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME (default 10s) and ends with a one-line
# summary ("fuzz: N passed, N failed, N engine flakes").
#
# A failing run prints its whole output. Go's fuzzing engine sometimes fails
# a run that found nothing: "context deadline exceeded" at the -fuzztime
# boundary (golang/go#51484) or a worker reported hung while the machine was
# busy (golang/go#56238). So a failure is judged by its reproducer: the input
# the engine wrote under testdata/fuzz is replayed on its own with plain
# `go test -run`. A reproducer that fails again is a bug and fails the run
# (the file stays, so the next `go test` fails on it too); so does a failure
# that wrote none when the target's seed corpus fails on its own. A
# reproducer that passes, or a failure that wrote none while the seeds pass,
# is counted as an engine flake, reported and not fatal.
set -uo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-10s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
passed=0 failed=0 flaked=0
# shellcheck disable=SC2086 # FUZZPKGS is a word list
pkgs=$(go list ${FUZZPKGS:-./...}) || { echo "fuzz: go list failed"; exit 1; }
for pkg in $pkgs; do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  if ! targets=$(go test -list '^Fuzz' "$pkg" 2>&1); then
    # A package whose tests do not build lists no target: that is a failure,
    # not a package without fuzz targets.
    echo "fuzz: cannot list the fuzz targets of $pkg:"
    echo "$targets"
    failed=$((failed + 1))
    continue
  fi
  for f in $(echo "$targets" | grep '^Fuzz' || true); do
    echo "fuzz $pkg $f ($fuzztime)"
    corpus="$dir/testdata/fuzz/$f"
    before=$(ls "$corpus" 2>/dev/null | sort)
    if go test -run '^$' -fuzz "^$f\$" -fuzztime "$fuzztime" "$pkg" >"$log" 2>&1; then
      passed=$((passed + 1))
      continue
    fi
    echo "--- output of the failed run:"
    cat "$log"
    new=$(comm -13 <(echo "$before") <(ls "$corpus" 2>/dev/null | sort) | grep -v '^$' || true)
    if [ -z "$new" ]; then
      # No new input: either the seed corpus fails (a bug, found without
      # fuzzing) or the engine failed a run that found nothing.
      if go test -count=1 -run "^$f\$" "$pkg"; then
        echo "--- no reproducer written and the seed corpus passes: an engine flake, not a finding"
        flaked=$((flaked + 1))
      else
        echo "--- the seed corpus fails on its own: a bug"
        failed=$((failed + 1))
      fi
      continue
    fi
    bug=0
    for id in $new; do
      echo "--- replaying $corpus/$id:"
      cat "$corpus/$id"
      if go test -count=1 -run "^$f/$id\$" "$pkg"; then
        rm -f "$corpus/$id"
      else
        bug=1
      fi
    done
    if [ "$bug" = 1 ]; then
      echo "--- the reproducer fails on replay: a bug"
      failed=$((failed + 1))
    else
      echo "--- the reproducer passes on replay: an engine flake, not a finding"
      flaked=$((flaked + 1))
    fi
  done
done
echo "fuzz: $passed passed, $failed failed, $flaked engine flakes"
[ "$failed" = 0 ]

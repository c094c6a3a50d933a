#!/usr/bin/env bash
# Runs the chaos suite's long statistics pass (issue 4) and writes
# e2e/results/*.json and e2e/results/README.md. Needs root for the
# namespace farm; without root only the loopback topology runs.
#
# Environment (defaults in brackets):
#   USHER_CHAOS_REPS        repetitions of each fault [30]
#   USHER_CHAOS_PROFILES    timing profiles [fast,rapid,lan]
#   USHER_CHAOS_TOPOLOGIES  netns and/or loop [netns]
#   USHER_CHAOS_QUIET       fault-free watch for spurious leader changes [10m]
#   USHER_CHAOS_LOADED      the same with the probe path at 90% load [10m]
#   USHER_CHAOS_BUSY        busy-host: watch of the VIP beside CPU hogs and
#                           fsync-heavy writers, before the host deaths, the
#                           agents at the packaged unit's nice -5; from
#                           1m on the strict figures are checked [10m]
#                           cpu-hog takes the same watch, with as many CPU
#                           hogs on every server as the machine has cores
#                           and the agents at the packaged unit's nice -5
#   USHER_CHAOS_BUSY_HOGS   busy-host: CPU hogs on the machine [4]
#   USHER_CHAOS_BUSY_WRITERS  busy-host: writers (16 MiB, fsync, again) [2]
#   USHER_CHAOS_FLOOD       flood: each attack's window, and the baseline's;
#                           from 1m on the acceptance is enforced [3s]
#   USHER_CHAOS_FLOOD_CAP   flood: cap on the saturation rate, datagrams/s
#                           [20000] (make flood runs 60s and 50000)
#   USHER_BIN               agent binary to test [built from ./cmd/usher]
#   CHAOS_RUN               go test -run pattern [TestChaos]
set -euo pipefail
cd "$(dirname "$0")/.."
export USHER_CHAOS_REPS=${USHER_CHAOS_REPS:-30}
export USHER_CHAOS_PROFILES=${USHER_CHAOS_PROFILES:-fast,rapid,lan}
export USHER_CHAOS_TOPOLOGIES=${USHER_CHAOS_TOPOLOGIES:-netns}
export USHER_CHAOS_QUIET=${USHER_CHAOS_QUIET:-10m}
export USHER_CHAOS_LOADED=${USHER_CHAOS_LOADED:-10m}
export USHER_CHAOS_BUSY=${USHER_CHAOS_BUSY:-10m}
export USHER_CHAOS_RESULTS=${USHER_CHAOS_RESULTS:-$PWD/e2e/results}
exec go test -count=1 -timeout 240m -v -run "${CHAOS_RUN:-TestChaos}" ./e2e/

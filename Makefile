# Usher's build, test and demo entry points. Every target works on a fresh
# machine with nothing but Go installed (root is only needed by the namespace
# tests, which skip themselves without it).

GO       ?= go
PKGS     ?= ./...
# VERSION comes from the release tags (vMAJOR.MINOR.PATCH, annotated, on
# main; never made by the build) as a Debian version: 0.3.0 at v0.3.0,
# 0.3.0+git5.gHASH after it, 0.0.0~gitN.gHASH before the first release
# (scripts/version.sh says how).
VERSION  ?= $(shell ./scripts/version.sh 2>/dev/null || echo 0.0.0~unknown)
LDFLAGS  := -X main.version=$(VERSION)
BIN      := bin/usher
BENCH    := bin/usher-bench
FUZZTIME ?= 10s
GOLANGCI_VERSION := v2.15.0
GOLANGCI := bin/tools/golangci-lint-$(GOLANGCI_VERSION)/golangci-lint
NFPM_VERSION := v2.48.0
NFPM     := bin/tools/nfpm-$(NFPM_VERSION)/nfpm
PKG_OUT  ?= bin/package

.PHONY: all build test gate unit fuzz mutate lint package demo bench chaos flood security dashboard-plot clean

all: lint build test

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/usher

# test is what CI runs: lint, a check that the test scripts fail when a
# test fails, a brief pass of every fuzz target, then the race-enabled unit
# and multi-node tests, ending with one summary line. Any failure stops it
# with a non-zero exit. The package test (packaging/) runs make package, so
# nfpm is built first.
test: lint build gate $(NFPM)
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME)
	./scripts/test.sh

# gate proves the gate: scripts/test.sh and scripts/fuzz.sh must exit
# non-zero on a failing, panicking, hanging or unbuildable test package.
gate:
	./scripts/test-gate.sh

unit:
	$(GO) test -race -count=1 $(PKGS)

# fuzz runs each fuzz target for FUZZTIME; scripts/fuzz.sh tells a finding
# (its reproducer fails on replay) from a flake of Go's fuzzing engine.
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

# mutate breaks each invariant on purpose, one listed mutation at a time
# (scripts/mutations/*.mut), in a copy of the tree, and fails if the test
# named for it still passes. MUTATE=REGEXP picks mutations by name. The
# whole list (61 mutations) took 9.5 minutes on 2 cores at its first full
# run (the chaos ones need root), which would double make test; run it
# before a change to the guarded code lands.
mutate:
	$(GO) run ./cmd/usher-mutate -run '$(MUTATE)'

# lint is gofmt, go vet, a go.mod that `go mod tidy` would not change, and
# golangci-lint with the checks of .golangci.yml (errcheck, staticcheck,
# unused, unparam, gosec), built once at a pinned version into bin/tools.
lint: $(GOLANGCI)
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) mod tidy -diff
	$(GOLANGCI) run $(PKGS)

$(GOLANGCI):
	GOBIN=$(CURDIR)/$(dir $(GOLANGCI)) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)

# package builds the Debian package PKG_OUT/usher_VERSION_ARCH.deb with
# nfpm (built once at a pinned version into bin/tools): the static binary,
# the systemd unit, the example /etc/usher/usher.hcl, the man page and the
# maintainer scripts of packaging/ (scripts/package.sh). The container
# image is packaging/Containerfile.
package: $(NFPM)
	VERSION='$(VERSION)' NFPM=$(CURDIR)/$(NFPM) OUT='$(PKG_OUT)' ./scripts/package.sh

$(NFPM):
	GOBIN=$(CURDIR)/$(dir $(NFPM)) $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

demo: build
	./$(BIN) demo

# bench measures the probe path, session setups, balance quality and scale
# against their baselines in one run and writes BENCHMARKS.md, the plots in
# docs/bench/ and docs/bench/results.json, the raw results the report is
# rendered from (`bin/usher-bench -render` renders it again). The harness is
# a command of its own (cmd/usher-bench), so the agent binary links none of
# it; its scale part starts agents of bin/usher. It takes about 25 minutes,
# most of it the 128-agent clusters; `bin/usher-bench -quick` is a short
# pass. It installs nginx's stream module from Debian's packages when
# missing.
bench: build
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BENCH) ./cmd/usher-bench
	./$(BENCH) -usher ./$(BIN)

# chaos runs the chaos suite's long statistics pass (30 repetitions of every
# fault for the fast, rapid and lan profiles, a 10-minute fault-free watch, a
# 10-minute watch with the probe path at 90% load, a 10-minute watch beside
# busy neighbours and one beside a CPU hog per core on every server, per
# profile) and writes e2e/results/*.json and e2e/results/README.md. It needs
# root for the namespace farm and takes about two and a half hours.
chaos: build
	USHER_BIN=$(CURDIR)/$(BIN) ./scripts/chaos.sh

# flood runs the chaos suite's flood scenario for the record (BENCHMARKS.md's
# "under attack" part reads it): legitimate clients open 200 sessions/s beside
# each spoofed flood from a raw socket for FLOOD (60s) an attack, after an
# unattacked baseline, with the saturating floods at FLOOD_CAP datagrams/s
# (about the probe path's capacity here, which the flood farm cannot measure
# itself: its per-source limit is on), and writes
# e2e/results/flood-fast-netns.json. A missed acceptance fails it. It needs
# root for the namespace farm and takes about 10 minutes; make test runs the
# same scenario for 3 seconds an attack, capped at 20000/s, and only records
# the acceptance.
FLOOD     ?= 60s
FLOOD_CAP ?= 40000
flood: build
	USHER_BIN=$(CURDIR)/$(BIN) USHER_CHAOS_FLOOD=$(FLOOD) USHER_CHAOS_FLOOD_CAP=$(FLOOD_CAP) \
		USHER_CHAOS_PROFILES=fast USHER_CHAOS_TOPOLOGIES=netns CHAOS_RUN='TestChaos/netns/fast/flood$$' \
		./scripts/chaos.sh

# security runs the hostile-peer suite (e2e TestHostile) with every attack
# held for 60 seconds while a prober counts the answered probes, and writes
# the figures to e2e/results/security.json (docs/security.md, "Measured
# under attack", shows them). It needs root for the namespace farm and
# takes about 12 minutes; make test runs the same suite for 10 seconds an
# attack.
security: build
	USHER_BIN=$(CURDIR)/$(BIN) USHER_ATTACK_SECONDS=60 USHER_ATTACK_RECORD=1 \
		$(GO) test -count=1 -timeout 60m -v -run 'TestHostile' ./e2e/

# dashboard-plot draws docs/dashboard.png: the series of the Grafana
# dashboard (contrib/grafana/usher.json), scraped from three agents' /metrics
# on loopback while the leader is killed and started again (e2e
# TestDashboardPlot; about 40 seconds).
dashboard-plot: build
	USHER_BIN=$(CURDIR)/$(BIN) USHER_DASHBOARD_PLOT=$(CURDIR)/docs/dashboard.png \
		$(GO) test -count=1 -v -run '^TestDashboardPlot$$' ./e2e/

clean:
	rm -rf bin

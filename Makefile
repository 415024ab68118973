# kojibot — `make test` passes the tests on a fresh Debian machine;
# `make demo` runs the bot on a local sandbox (IRC network, PostgreSQL, builders).
SHELL := /bin/bash
GO ?= go
# What the upstream Koji hub (under Apache mod_wsgi) and the koji CLI with
# Kerberos login need; Koji itself is unpacked from its release at test time.
KOJI_PACKAGES := libapache2-mod-wsgi-py3 python3-psycopg2 python3-rpm python3-dateutil python3-requests \
	python3-defusedxml python3-six python3-requests-kerberos
# Debian packages the tests and the sandbox start for real.
DEB_PACKAGES := rabbitmq-server python3-pika inspircd anope postgresql openssh-server sudo pdsh util-linux iproute2 procps rpm systemd krb5-kdc krb5-admin-server apache2-bin libapache2-mod-auth-gssapi chromium \
	$(KOJI_PACKAGES)
# What `make demo` installs besides: an IRC client to talk to the bot, and
# curl for its Matrix lines.
DEMO_PACKAGES := irssi curl
# What `make bench` installs besides (not `make test`): Limnoria, the peer
# of the reply-time benchmark.
BENCH_PACKAGES := limnoria
GOTESTFLAGS ?= -race -count=1 -timeout 40m
MODULE := github.com/fedora-infra/kojibot
# E2E_HALF is the half of tests/e2e that make test runs in a process (and a
# sandbox) of its own beside the other half: Matrix, crashes, the watcher.
E2E_HALF := ^(TestMatrix|TestCrash|TestExecSignal$$|TestRunClaimsOrphans|TestStoppedKojid|TestWatch|TestConnections|TestPredict|TestFailover|TestPartition)

.PHONY: failover all build test unit deps demo-deps bench-deps install-packages demo tour fuzz chaos bench bench-go bench-reply bench-disk bench-disk-peers bench-sweep clean dist

all: build

build:
	$(GO) build -o bin/kojibot ./cmd/kojibot

# deps installs whatever Debian package is missing (needs root; apt-get update once).
deps:
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(DEB_PACKAGES)"

# bench-deps is deps and the benchmarks' peers.
bench-deps:
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(DEB_PACKAGES) $(BENCH_PACKAGES)"

# demo-deps is deps and the demo's IRC client.
demo-deps:
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(DEB_PACKAGES) $(DEMO_PACKAGES)"

install-packages:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# test: everything, against real servers started by the tests themselves.
test: deps
	gofmt -l $$(git ls-files '*.go') | (! grep .)
	$(GO) vet ./...
	$(GO) -C tests/tools vet ./...
	@# Build every test binary first (run by /bin/true: nothing starts), then
	@# start tests/e2e, the long pole, at once beside all the other packages
	@# rather than after them in go test's package order, in two halves
	@# (E2E_HALF and the rest), each with a sandbox of its own.
	$(GO) test $(GOTESTFLAGS) -exec /bin/true ./... >/dev/null
	$(GO) test $(GOTESTFLAGS) -run '$(E2E_HALF)' ./tests/e2e/ & half=$$!; \
	$(GO) test $(GOTESTFLAGS) -skip '$(E2E_HALF)' ./tests/e2e/ & rest=$$!; \
	$(GO) test $(GOTESTFLAGS) $$($(GO) list ./... | grep -vx '$(MODULE)/tests/e2e'); rc=$$?; \
	wait $$half || rc=1; wait $$rest || rc=1; exit $$rc

# failover: TestFailover with KILLS SIGKILLs of the leader of two
# replicas on one PostgreSQL store (make test does 2), printing the
# failover times' median and p99. KILLS=20 by default.
KILLS ?= 20
failover: deps
	KOJIBOT_FAILOVER_KILLS=$(KILLS) $(GO) test $(GOTESTFLAGS) -run '^TestFailover$$' -v ./tests/e2e/ | grep -E '^(failover|---|ok|FAIL)|kill [0-9]+:'

# unit: the tests that need no server: go test -short, under which every
# test that starts a real server is skipped (CI never passes -short).
unit:
	$(GO) test -short -race -count=1 ./...

demo: demo-deps
	$(GO) build -o bin/kojibot-demo ./tests/demo
	bin/kojibot-demo

# tour: the sandbox, a scripted conversation with the bot (alice and bob on
# the real IRC server), its transcript; then everything stops.
tour: deps
	$(GO) build -o bin/kojibot-demo ./tests/demo
	bin/kojibot-demo tour

# screenshot: docs/status.png, the README's picture of /status: the tour
# on the sandbox, with headless Chromium on the bot's /status once
# /mnt/koji is full (a stale builder, full mounts, a mount filling, a draft).
.PHONY: screenshot
screenshot: deps
	$(GO) build -o bin/kojibot-demo ./tests/demo
	bin/kojibot-demo screenshot $(CURDIR)/docs/status.png

# chaos: the fault run on the sandbox farm (tests/chaos): the SOP's jobs
# through the bot while faults come at random, and the invariants checked
# on the machines after each. SEED (0: a random one, printed), FAULTS (the
# default takes about 15 minutes here), STORE (postgres or sqlite),
# REPLICAS, MATRIX (1: a homeserver beside IRC, with callers on it and
# its restarts among the faults; 0: IRC only). A violation prints the
# seed and the schedule and fails.
SEED ?= 0
FAULTS ?= 120
STORE ?= postgres
REPLICAS ?= 2
MATRIX ?= 1
chaos: deps
	$(GO) run ./tests/chaos/cmd/chaos -seed $(SEED) -faults $(FAULTS) -store $(STORE) -replicas $(REPLICAS) -matrix=$(MATRIX)

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDispatch -fuzztime 60s ./commands/

# bench: every benchmark, one after the other, each printing its figures
# beside its peers' and the ratios (README: Benchmarks). Needs root.
bench: bench-deps
	@$(MAKE) --no-print-directory bench-reply bench-disk-peers bench-disk bench-sweep bench-go

# bench-reply: `!koji host ppc3` through InspIRCd beside the floor (two
# clients echoing) and Limnoria's echo. REPLYFLAGS="-tries 2000"; with
# REPLYFLAGS="-koji hub" the bot answers through the upstream Koji hub,
# beside the same hub call made raw.
bench-reply: bench-deps
	$(GO) run ./tests/bench/reply $(REPLYFLAGS)

# bench-disk-peers: `disk all` over 50 builders, kojibot warm beside pdsh
# cold and pdsh warm (OpenSSH ControlMaster). PEERFLAGS="-rounds 20"
bench-disk-peers: bench-deps
	$(GO) run ./tests/bench/pdshwarm $(PEERFLAGS)

# bench-disk: `disk all` over 50 sshd builders, kojibot (cold and warm) vs pdsh (root). BENCHFLAGS="-rounds 20"
bench-disk: deps
	scripts/bench-disk-all.sh $(BENCHFLAGS)

# bench-sweep: a watcher sweep over 500 builders (or as many as memory
# allows), cold and warm, and the bot's memory. SWEEPFLAGS="-rounds 5"
bench-sweep: deps
	$(GO) run ./tests/bench/sweep -builders 500 -parallel 64 $(SWEEPFLAGS)

# bench-go: the Go benchmarks of every package.
bench-go: deps
	$(GO) test -run '^$$' -bench . -benchmem ./...

# dist: kojibot-$(VERSION).tar.gz in DISTDIR, the source tree as git sees it
# (tracked and new files, not ignored ones) with its Go modules vendored, so
# that rpmbuild builds it offline (contrib/kojibot.spec).
VERSION ?= 0.1.0
DISTDIR ?= .
dist:
	@set -eo pipefail; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	top="$$tmp/kojibot-$(VERSION)"; mkdir "$$top"; \
	git ls-files -z --cached --others --exclude-standard | \
	  while IFS= read -r -d '' f; do \
	    case "$$f" in kojibot-*.tar.gz) continue;; esac; \
	    if [ -f "$$f" ]; then printf '%s\0' "$$f"; fi; \
	  done | \
	  tar --null -T - -cf - | tar -xf - -C "$$top"; \
	(cd "$$top" && GOFLAGS=-mod=mod $(GO) mod vendor); \
	tar -C "$$tmp" --sort=name --owner=0 --group=0 --numeric-owner -czf "$(abspath $(DISTDIR))/kojibot-$(VERSION).tar.gz" "kojibot-$(VERSION)"; \
	echo "$(abspath $(DISTDIR))/kojibot-$(VERSION).tar.gz"

clean:
	rm -rf bin

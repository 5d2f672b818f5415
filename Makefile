# portlease: `make demo` shows the gateway at work in a throw-away network lab;
# `make test` runs every test, the lab tests included. Both need root on Linux
# (network namespaces, nftables) and install what they need with apt.

GO       ?= go
GOBIN    := $(shell $(GO) env GOPATH)/bin
PKGS     := ./...
FUZZTIME ?= 5
# BUILDDIR receives the programs `make build` makes.
BUILDDIR ?= bin

# Where `make install` puts things; DESTDIR is prepended to each (packagers
# set PREFIX=/usr and DESTDIR=their staging tree). The configuration and the
# state directory stay where portleased looks for them by default.
PREFIX             ?= /usr/local
BINDIR             ?= $(PREFIX)/bin
SBINDIR            ?= $(PREFIX)/sbin
SYSTEMDUNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSTEMDUSERUNITDIR ?= $(PREFIX)/lib/systemd/user
SYSUSERSDIR        ?= $(PREFIX)/lib/sysusers.d
DOCDIR             ?= $(PREFIX)/share/doc/portlease
SYSCONFDIR         ?= /etc
STATEDIR           ?= /var/lib/portleased

.PHONY: all build deps demo test check cross unit lab fuzz-short fuzz bench bench-go clean install uninstall

all: build

build:
	$(GO) build -o $(BUILDDIR)/ ./cmd/...

# install: the programs, the systemd units (their paths rewritten to where
# the programs go), the sysusers.d file, the example configuration (also as
# $(SYSCONFDIR)/portleased.conf when there is none yet) and the state
# directory. Without DESTDIR it also creates the system user portleased
# (scripts/add-user.sh) and hands it the state directory; with DESTDIR that
# is the package's job (systemd-sysusers with the sysusers.d file).
UNITPATHS = -e 's|/usr/sbin/portleased|$(SBINDIR)/portleased|g' \
	-e 's|/usr/bin/portlease |$(BINDIR)/portlease |g' \
	-e 's|/etc/|$(SYSCONFDIR)/|g'

install: build
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSTEMDUNITDIR) \
		$(DESTDIR)$(SYSTEMDUSERUNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(DOCDIR) \
		$(DESTDIR)$(SYSCONFDIR)/portlease
	install -d -m 0750 $(DESTDIR)$(STATEDIR)
	install -m 0755 $(BUILDDIR)/portleased $(DESTDIR)$(SBINDIR)/portleased
	install -m 0755 $(BUILDDIR)/portlease $(DESTDIR)$(BINDIR)/portlease
	sed $(UNITPATHS) dist/systemd/portleased.service >$(DESTDIR)$(SYSTEMDUNITDIR)/portleased.service
	sed $(UNITPATHS) dist/systemd/portlease-keep@.service >'$(DESTDIR)$(SYSTEMDUNITDIR)/portlease-keep@.service'
	sed $(UNITPATHS) dist/systemd/user/portlease-keep.service >$(DESTDIR)$(SYSTEMDUSERUNITDIR)/portlease-keep.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/portleased.service '$(DESTDIR)$(SYSTEMDUNITDIR)/portlease-keep@.service' \
		$(DESTDIR)$(SYSTEMDUSERUNITDIR)/portlease-keep.service
	install -m 0644 dist/sysusers.d/portleased.conf $(DESTDIR)$(SYSUSERSDIR)/portleased.conf
	install -m 0644 dist/portleased.conf.example $(DESTDIR)$(DOCDIR)/portleased.conf.example
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/portleased.conf ]; then \
		echo "install: $(DESTDIR)$(SYSCONFDIR)/portleased.conf exists; kept as it is"; \
	else \
		echo "install -m 0644 dist/portleased.conf.example $(DESTDIR)$(SYSCONFDIR)/portleased.conf"; \
		install -m 0644 dist/portleased.conf.example $(DESTDIR)$(SYSCONFDIR)/portleased.conf; \
	fi
	@if [ -z "$(DESTDIR)" ]; then \
		./scripts/add-user.sh && chown portleased:portleased $(STATEDIR) && \
		echo "install: now edit $(SYSCONFDIR)/portleased.conf, then: systemctl daemon-reload; systemctl enable --now portleased"; \
	fi

# uninstall removes what install put in place but the configuration, the
# state directory (the leases) and the user.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/portleased $(DESTDIR)$(BINDIR)/portlease \
		$(DESTDIR)$(SYSTEMDUNITDIR)/portleased.service '$(DESTDIR)$(SYSTEMDUNITDIR)/portlease-keep@.service' \
		$(DESTDIR)$(SYSTEMDUSERUNITDIR)/portlease-keep.service $(DESTDIR)$(SYSUSERSDIR)/portleased.conf \
		$(DESTDIR)$(DOCDIR)/portleased.conf.example

deps:
	@./scripts/install-deps.sh

demo: deps build
	$(GO) run ./internal/cmd/labdemo -portleased bin/portleased -portlease bin/portlease

# check: formatting, vet and staticcheck; the client side type-checked and
# vetted for linux, darwin, windows, freebsd and openbsd on amd64 and arm64
# (internal/cmd/crosscheck: from source, about 40 s; `make cross` compiles
# and links them all, 8 minutes with an empty build cache).
check: deps
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GOBIN)/staticcheck $(PKGS)
	$(GO) run ./internal/cmd/crosscheck

# cross: the client side compiled, linked and vetted with the go command for
# every system crosscheck checks.
cross:
	@./scripts/cross-check.sh

test: deps check
	$(GO) test -count=1 -timeout 8m $(PKGS)
	@./scripts/fuzz-short.sh $(FUZZTIME)

# fuzz: every fuzz target for a minute each (override FUZZTIME=seconds).
fuzz:
	@./scripts/fuzz-short.sh $(if $(filter 5,$(FUZZTIME)),60,$(FUZZTIME))

# bench: portleased and miniupnpd side by side in the lab, at 0, 1,000, 10,000
# and 100,000 mappings, portleased with a state file (in /var/tmp) against
# portleased without, then its restart with the leases kept, and portleased on
# iptables-nft and iptables-legacy up to 10,000 mappings; writes
# BENCHMARKS.md and bench/ (results.json, rate.png).
# BENCHFLAGS='-sizes 0,1000' for a quick run.
bench: deps
	@./scripts/bench.sh $(BENCHFLAGS)

# bench-go: the Go benchmarks of the request path (codec, core, servers,
# nftables backend).
bench-go: deps
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)

clean:
	rm -rf $(BUILDDIR)

# portlease: `make demo` shows the gateway at work in a throw-away network lab;
# `make test` runs every test, the lab tests included. Both need root on Linux
# (network namespaces, nftables) and install what they need with apt.

GO       ?= go
GOBIN    := $(shell $(GO) env GOPATH)/bin
PKGS     := ./...
FUZZTIME ?= 5

.PHONY: all build deps demo test check unit lab fuzz-short fuzz bench bench-go clean

all: build

build:
	$(GO) build -o bin/ ./cmd/...

deps:
	@./scripts/install-deps.sh

demo: deps build
	$(GO) run ./internal/cmd/labdemo -portleased bin/portleased -portlease bin/portlease

# check: formatting, vet and staticcheck.
check: deps
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GOBIN)/staticcheck $(PKGS)

test: deps check
	$(GO) test -count=1 -timeout 8m $(PKGS)
	@./scripts/fuzz-short.sh $(FUZZTIME)

# fuzz: every fuzz target for a minute each (override FUZZTIME=seconds).
fuzz:
	@./scripts/fuzz-short.sh $(if $(filter 5,$(FUZZTIME)),60,$(FUZZTIME))

# bench: portleased and miniupnpd side by side in the lab, at 0, 1,000, 10,000
# and 100,000 mappings, and portleased with a state file (in /var/tmp) against
# portleased without, then its restart with the leases kept; writes
# BENCHMARKS.md and bench/ (results.json, rate.png).
# BENCHFLAGS='-sizes 0,1000' for a quick run.
bench: deps
	@./scripts/bench.sh $(BENCHFLAGS)

# bench-go: the Go benchmarks of the request path (codec, core, servers,
# nftables backend).
bench-go: deps
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)

clean:
	rm -rf bin

# gunicorn-reflex: the two commands a newcomer needs are `make run` and `make test`.
GO      ?= go
BINARY  := gunicorn-reflex
PKG     := github.com/gunicorn-reflex/gunicorn-reflex
# Version stamps, read from git; a build without .git (the Docker build)
# passes them: make build VERSION=... REVISION=...
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION   ?= $(shell git rev-parse HEAD 2>/dev/null)
BRANCH     ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null)
BUILD_DATE ?= $(shell date -u +%Y%m%d-%H:%M:%S)
LDFLAGS := -s -w \
	-X github.com/prometheus/common/version.Version=$(VERSION) \
	-X github.com/prometheus/common/version.Revision=$(REVISION) \
	-X github.com/prometheus/common/version.Branch=$(BRANCH) \
	-X github.com/prometheus/common/version.BuildDate=$(BUILD_DATE)
LISTEN  ?= 127.0.0.1:9615
FUZZTIME ?= 20s

.PHONY: all build run demo test deps lint golangci-lint vet fmt-check check-unit check-polkit fuzz bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BINARY) ./cmd/gunicorn-reflex

## run: discover every Gunicorn master on this host and serve metrics on $(LISTEN)
run: build
	./$(BINARY) --web.listen-address=$(LISTEN)

## demo: the whole loop on loopback in two minutes (Gunicorn, PostgreSQL, gunicorn-reflex, Prometheus, Alertmanager)
demo: deps
	$(GO) build -o .demo/reflex-demo ./internal/demo/cmd/reflex-demo
	@# The harness builds gunicorn-reflex with -race; building it here first
	@# puts it in the build cache, so the two minutes are the loop's, not the compiler's.
	$(GO) build -race -o .demo/gunicorn-reflex ./cmd/gunicorn-reflex
	./.demo/reflex-demo

## deps: install the Debian packages the tests need (as root), or say which are missing
deps:
	./scripts/test-deps.sh

## test: formatting, vet, the systemd unit and polkit rule, then every test with the race detector against real Gunicorn/logrotate/promtool
test: deps fmt-check vet check-unit check-polkit
	$(GO) test -race -count=1 -timeout 15m ./...

## check-unit: systemd-analyze verify and security on deploy/gunicorn-reflex.service, with the built binary
check-unit: build
	./scripts/check-unit.sh ./$(BINARY)

## check-polkit: deploy/50-gunicorn-reflex.rules asked through a real polkitd (as root, in a private mount namespace)
check-polkit:
	./scripts/check-polkit.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# golangci-lint (config in .golangci.yml), installed from the Go module proxy
# into .tools/ at a pinned version.
GOLANGCI_LINT_VERSION ?= v2.15.0
GOLANGCI_LINT := $(CURDIR)/.tools/golangci-lint-$(GOLANGCI_LINT_VERSION)/golangci-lint

$(GOLANGCI_LINT):
	GOBIN=$(dir $@) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

## lint: fmt-check, vet and golangci-lint
lint: fmt-check vet golangci-lint

golangci-lint: $(GOLANGCI_LINT)
	$(GOLANGCI_LINT) run ./...

## fuzz: run every fuzz target for FUZZTIME each
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

BENCH_DIR    ?= .bench
BENCH_CORPUS := $(BENCH_DIR)/access-2M-seed1.log

$(BENCH_CORPUS):
	mkdir -p $(BENCH_DIR)
	$(GO) run ./internal/accesslog/corpus/cmd/gencorpus -n 2000000 -seed 1 -paths 10000 -o $@

## bench: Go benchmarks, then the real binary over the 2M-line corpus (figures in BENCHMARKS.md)
bench: build $(BENCH_CORPUS)
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) run ./internal/bench/oneshot -bin ./$(BINARY) -corpus $(BENCH_CORPUS) -runs 5

clean:
	rm -rf $(BINARY) $(BENCH_DIR) .tools .demo

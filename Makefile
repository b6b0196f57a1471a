# kip's routine commands. `make dev` and `make test` are all a fresh machine
# needs: the first run builds the pinned etcd, kube-apiserver and kubectl
# (10 to 15 minutes on 2 cores) into .cache/bin, later runs reuse them.

GO ?= go
TEST_TIMEOUT ?= 80m

.PHONY: generate all build dev test test-unit test-integration tools fmt vet check lint fuzz soak bench bench-smoke clean

all: build

build:
	$(GO) build -o bin/kip ./cmd/kip

## dev: kip in front of a local etcd + kube-apiserver, with a demo user; Ctrl-C stops it.
dev:
	$(GO) run ./cmd/kip dev

## test: every unit and integration test (builds the pinned binaries once).
test: tools
	$(GO) test -race -timeout $(TEST_TIMEOUT) ./...

test-unit:
	$(GO) test -race -short ./internal/... ./cmd/... ./bench/...

test-integration: tools
	$(GO) test -race -timeout $(TEST_TIMEOUT) ./test/...

## tools: build (or find cached) etcd, kube-apiserver and kubectl.
tools:
	$(GO) run ./hack/ensuretools

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

# golangci-lint is pinned by hack/tools/lint/go.mod and built once into .cache.
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := .cache/bin/golangci-lint-$(GOLANGCI_LINT_VERSION)/golangci-lint

$(GOLANGCI_LINT):
	@echo "building golangci-lint $(GOLANGCI_LINT_VERSION) (a first build takes about 5 minutes on 2 cores, module download included; cached afterwards)"
	cd hack/tools/lint && $(GO) build -o $(CURDIR)/$(GOLANGCI_LINT) github.com/golangci/golangci-lint/v2/cmd/golangci-lint

## lint: golangci-lint with .golangci.yml.
lint: $(GOLANGCI_LINT)
	$(GOLANGCI_LINT) run ./...

## check: formatting and vet, as CI expects them.
check:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

## fuzz: run the header-sanitation fuzzer for a minute.
fuzz:
	$(GO) test ./internal/proxy -run '^$$' -fuzz FuzzNoInboundCredentialReachesUpstream -fuzztime 60s

## bench: measure kip against direct access, kubectl proxy and a bare reverse
## proxy (about 5 minutes on 2 cores); writes bench/results/<date>/
## BENCH_ARGS passes flags, e.g. BENCH_ARGS='--watchers=10000'.
bench: tools
	$(GO) run ./bench $(BENCH_ARGS)

## bench-smoke: the same with tiny sizes, to check the harness (under a minute).
bench-smoke: tools
	$(GO) run ./bench --smoke --out=$${TMPDIR:-/tmp}/kip-bench-smoke $(BENCH_ARGS)

clean:
	rm -rf bin .cache

## soak: slow tests that leave long-running requests idle for minutes.
soak: tools
	KIP_SOAK=1 $(GO) test -timeout 40m -run Soak -v ./test/integration

## generate: regenerate the API types' deepcopy functions.
generate:
	$(GO) run k8s.io/code-generator/cmd/deepcopy-gen@v0.37.2 --output-file zz_generated.deepcopy.go --go-header-file hack/boilerplate.go.txt ./pkg/apis/login/v1alpha1

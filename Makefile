# kip's routine commands. `make dev` and `make test` are all a fresh machine
# needs: the first run builds the pinned etcd, kube-apiserver, kubectl,
# Ory Hydra and versitygw (15 to 25 minutes on 2 cores) into .cache/bin,
# later runs reuse them. `make test` also installs Debian's chromium for the
# sign-in tests.

GO ?= go
TEST_TIMEOUT ?= 80m

.PHONY: generate all build dev test test-unit test-integration test-gateway tools browser fmt vet check lint fuzz soak bench bench-smoke clean release cross

all: build

# The version and commit kip reports (`kip version`), stamped from git; a
# binary built without them says v0.0.0-dev.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/kip-proxy/kip/internal/version.gitVersion=$(VERSION) -X github.com/kip-proxy/kip/internal/version.gitCommit=$(COMMIT)

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/kip ./cmd/kip

## release: the release of VERSION, a tag such as v1.2.3, in RELEASE_DIR:
## for linux, darwin and windows on amd64 and arm64 an archive (kip, LICENSE,
## README.md) and its SBOM, the SHA-256 checksums, and krew's kip.yaml.
## E.g. make release VERSION=v0.2.0. A first run builds for six platforms
## (3 to 5 min each on 2 cores) and cyclonedx-gomod; later runs reuse them.
RELEASE_DIR ?= dist
release:
	$(GO) run ./hack/release --version $(VERSION) --commit $(COMMIT) --out $(RELEASE_DIR)

## cross: build kip for those six platforms and vet its packages for each,
## as CI does, so that the client keeps building on macOS and Windows.
cross:
	$(GO) run ./hack/release --cross-check --out .cache/cross

## dev: kip in front of a local etcd + kube-apiserver, with Hydra to sign in at
## and a demo user; Ctrl-C stops it. Over SSH: make dev DEV_ARGS=--skip-browser
dev:
	$(GO) run ./cmd/kip dev $(DEV_ARGS)

## test: every unit and integration test (builds the pinned binaries once).
test: tools browser
	$(GO) test -race -timeout $(TEST_TIMEOUT) ./...

test-unit:
	$(GO) test -race -short ./internal/... ./cmd/... ./bench/... ./hack/release/... ./docs/...

test-integration: tools browser
	$(GO) test -race -timeout $(TEST_TIMEOUT) ./test/...

## test-gateway: one kip in front of three real clusters (test/gateway):
## every verb per cluster, isolation, the live registry, one cluster down.
## `make test` runs it too; alone it takes about 3 minutes.
test-gateway: tools
	$(GO) test -race -timeout 15m ./test/gateway

## tools: build (or find cached) etcd, kube-apiserver, kubectl, Hydra and versitygw.
tools:
	$(GO) run ./hack/ensuretools

# Root installs directly; anyone else through sudo, which asks as it must.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

## browser: install Debian's chromium, the headless browser of the sign-in
## tests in test/identity, unless /usr/bin/chromium is already there.
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "installing Debian's chromium for the sign-in tests: apt-get update && apt-get install -y --no-install-recommends chromium (about a minute)"; \
		$(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; \
	fi

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

## check: formatting and vet, as CI expects them. Every package, tests and
## rig included, vets for macOS too, where many contributors work; the
## end-to-end rig itself runs on Linux.
check:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	GOOS=darwin $(GO) vet ./...

## fuzz: run each fuzzer for FUZZTIME, one after the other (one worker each:
## a failure stops the run and leaves its input under testdata/fuzz).
FUZZTIME ?= 60s
fuzz:
	$(GO) test ./internal/proxy -run '^$$' -fuzz '^FuzzNoInboundCredentialReachesUpstream$$' -fuzztime $(FUZZTIME) -parallel 1
	$(GO) test ./internal/proxy -run '^$$' -fuzz '^FuzzExtraKeyRoundTrip$$' -fuzztime $(FUZZTIME) -parallel 1
	$(GO) test ./internal/signer -run '^$$' -fuzz '^FuzzCertificateUserRoundTrip$$' -fuzztime $(FUZZTIME) -parallel 1
	$(GO) test ./internal/exchange -run '^$$' -fuzz '^FuzzTokenCredentialRequestDecode$$' -fuzztime $(FUZZTIME) -parallel 1

## bench: measure kip against direct access, kubectl proxy and a bare reverse
## proxy (about 5 minutes on 2 cores); writes bench/results/<date>/
## BENCH_ARGS passes flags, e.g. BENCH_ARGS='--watchers=10000'.
bench: tools
	$(GO) run ./bench $(BENCH_ARGS)

## bench-smoke: the same with tiny sizes, to check the harness (under a minute).
bench-smoke: tools
	$(GO) run ./bench --smoke --out=$${TMPDIR:-/tmp}/kip-bench-smoke $(BENCH_ARGS)

clean:
	rm -rf bin .cache dist

## soak: slow tests that leave long-running requests idle for minutes.
soak: tools
	KIP_SOAK=1 $(GO) test -timeout 40m -run Soak -v ./test/integration

.PHONY: soak-hour
## soak-hour: an hour of mixed traffic (GET, LIST, watch, exec, port-forward,
## credential exchange) through kip as a process of its own, kube-apiserver
## restarted every 10 minutes; writes bench/results/<date>/soak/ (summary.md,
## samples.csv, plot.svg). Not in CI. KIP_SOAK_DURATION, KIP_SOAK_RESTART_EVERY
## and KIP_SOAK_OUT change it; SOAK_HOUR_TIMEOUT must cover the duration + 15m.
SOAK_HOUR_TIMEOUT ?= 75m
soak-hour: tools
	KIP_SOAK=1 $(GO) test -count=1 -timeout $(SOAK_HOUR_TIMEOUT) -run '^TestSoakHour$$' -v ./test/soak

## generate: regenerate the API types' deepcopy and defaulting functions.
generate:
	$(GO) run k8s.io/code-generator/cmd/deepcopy-gen@v0.37.2 --output-file zz_generated.deepcopy.go --go-header-file hack/boilerplate.go.txt ./pkg/apis/login/v1alpha1 ./pkg/apis/sessions/v1alpha1 ./pkg/apis/config/v1alpha1
	$(GO) run k8s.io/code-generator/cmd/defaulter-gen@v0.37.2 --output-file zz_generated.defaults.go --go-header-file hack/boilerplate.go.txt ./pkg/apis/config/v1alpha1

# The chart renderer: Helm's Go library (hack/tools/helm, pinned), built once
# into .cache. The folder is the one the chart tests use
# (binaries.EnsureHelmRender): Helm's version and a hash of the renderer.
HELM_VERSION := v3.22.0
HELM_RENDER := .cache/bin/helm-render-$(HELM_VERSION)-$(shell sha256sum hack/tools/helm/render/main.go | cut -c1-12)/render

$(HELM_RENDER): hack/tools/helm/go.mod hack/tools/helm/go.sum hack/tools/helm/render/main.go
	@echo "building the chart renderer from hack/tools/helm (a first build takes 2 to 4 minutes on 2 cores; cached afterwards)"
	cd hack/tools/helm && GOWORK=off $(GO) build -trimpath -buildvcs=false -o $(CURDIR)/$(HELM_RENDER) ./render

.PHONY: manifests
## manifests: render deploy/manifests/kip.yaml from the Helm chart's default values.
manifests: $(HELM_RENDER)
	@mkdir -p deploy/manifests
	$(HELM_RENDER) --chart deploy/helm/kip --namespace kip-system > deploy/manifests/kip.yaml.partial
	mv deploy/manifests/kip.yaml.partial deploy/manifests/kip.yaml

# The test command CI runs (see README). As root the network-namespace tests
# run too; without root they skip with one line each, unless CI=true.
GO ?= go

.PHONY: build test vet staticcheck cross
build:
	$(GO) build -o bin/mtuscope ./cmd/mtuscope

vet:
	$(GO) vet ./...

# staticcheck at a pinned version, fetched and built through the module
# proxy on first use (cached after). 2026.2.2 supports Go 1.26 and 1.27;
# every check is on (no staticcheck.conf: none is wrong for this code yet).
STATICCHECK_VERSION ?= v0.8.2
staticcheck:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# One binary for every package's end-to-end tests. The namespace tests mostly
# wait on timeouts, hence more parallel tests than cores. Then the race
# detector over every package's unit tests (-short: the namespace tests,
# which ran in the full pass, skip; the race detector needs cgo, a C
# compiler).
test: vet staticcheck build
	MTUSCOPE_BIN=$(CURDIR)/bin/mtuscope MTUSCOPE_ARTIFACTS=$(CURDIR)/bin/artifacts $(GO) test -count=1 -parallel 16 -timeout 30m ./...
	$(MAKE) race

.PHONY: race
race: build
	MTUSCOPE_BIN=$(CURDIR)/bin/mtuscope MTUSCOPE_ARTIFACTS=$(CURDIR)/bin/artifacts CGO_ENABLED=1 $(GO) test -race -short -count=1 -parallel 16 -timeout 30m ./...

# A FROM-scratch container image (deploy/container/Containerfile) with podman.
IMAGE ?= localhost/mtuscope:dev
.PHONY: image
image:
	rm -rf bin/image && mkdir -p bin/image/data
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/image/mtuscope ./cmd/mtuscope
	cp /etc/ssl/certs/ca-certificates.crt bin/image/
	podman build -t $(IMAGE) -f deploy/container/Containerfile bin/image

# Static binaries for the systems people run probe from, with SHA-256
# checksums, in bin/cross (serve's binaries: can serve that directory).
# First the platform files: vet for macOS (every package) and for Windows
# (the packages with Windows code; others' tests need Linux to build).
CROSS_TARGETS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64
VERSION ?=
cross:
	GOOS=darwin $(GO) vet ./...
	GOOS=windows $(GO) vet ./probe/... ./sockopt/ ./api/... ./cmd/mtuscope
	rm -rf bin/cross && mkdir -p bin/cross
	set -e; for t in $(CROSS_TARGETS); do \
		os=$${t%/*}; arch=$${t#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath \
			-ldflags "-s -w$(if $(VERSION), -X github.com/mtuscope/mtuscope/internal/cli.Version=$(VERSION))" \
			-o bin/cross/mtuscope-$$os-$$arch$$ext ./cmd/mtuscope; \
	done
	cd bin/cross && sha256sum mtuscope-* > SHA256SUMS && ls -l mtuscope-* && cat SHA256SUMS

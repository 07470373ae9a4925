# The test command CI runs (see README). As root the network-namespace tests
# run too; without root they skip with one line each, unless CI=true.
GO ?= go

.PHONY: build test vet staticcheck
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

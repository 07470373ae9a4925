# The test command CI runs (see README). As root the network-namespace tests
# run too; without root they skip with one line each, unless CI=true.
GO ?= go

.PHONY: build test vet
build:
	$(GO) build -o bin/mtuscope ./cmd/mtuscope

vet:
	$(GO) vet ./...

test: vet
	$(GO) test -count=1 -timeout 30m ./...

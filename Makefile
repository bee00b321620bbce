# usage-event-service. Every target installs what it needs into .cache/
# (git-ignored): emulators from npm, tools from the Go module proxy.
SHELL := /bin/bash
export PATH := $(CURDIR)/.cache/bin:$(PATH)
STATICCHECK_VERSION := v0.8.2
GOARCH_LAMBDA ?= arm64
FUZZTIME ?= 15s
# The benchmark is a module of its own, so that the service module does not
# carry its chart's dependencies (gonum/plot, fonts, LaTeX, PDF); so are the
# Terraform module's Go checks, which parse HCL (hcl, cty).
BENCH_MODULE := internal/dev/bench
INFRA_MODULE := infra
TOOL_MODULES := $(BENCH_MODULE) $(INFRA_MODULE)

.PHONY: demo up test unit lint fuzz terraform-check package bench tools clean producer-ts

## demo: run the service end to end locally (DynamoDB Local, SQS emulator, worker, events)
demo:
	go run ./cmd/usage-demo

## up: the playground: emulators, tables, queues, seeded entitlements and the worker in the foreground
## until Ctrl-C; prints the export lines for usagectl in a second shell (README, "Try it yourself").
## Built, then run by make itself (not `go run`, which exits 1 on Ctrl-C even after a clean stop).
up:
	go build -o bin/usage-playground ./cmd/usage-playground
	bin/usage-playground

## test: everything CI runs: lint, the TypeScript producer's tests, all tests with -race against real emulators, fuzzing,
## Terraform checks
test: tools lint
	go run ./internal/dev/emulator/cmd/emulators install
	$(MAKE) producer-ts
	go test -race -count=1 -timeout 20m ./...
	for m in $(TOOL_MODULES); do (cd $$m && go test -race -count=1 -timeout 20m ./...) || exit 1; done
	$(MAKE) fuzz
	bash scripts/terraform-check.sh

## producer-ts: the TypeScript producer package: its locked dependencies (npm ci), its build, and its
## tests (the shared validation vectors, the publisher, end to end with the emulators and the real worker)
## (npm ci runs again only when package.json or package-lock.json changed, so later runs are offline)
producer-ts: producer-ts/node_modules/.package-lock.json
	cd producer-ts && npm test

producer-ts/node_modules/.package-lock.json: producer-ts/package.json producer-ts/package-lock.json
	cd producer-ts && npm ci --no-audit --no-fund

## unit: the fast tests that need no emulator
unit:
	go test -race -count=1 ./usage/... ./metering/... ./pipeline/... ./internal/config/...

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	go mod tidy -diff
	go vet ./...
	staticcheck ./...
	for m in $(TOOL_MODULES); do (cd $$m && go mod tidy -diff && go vet ./... && staticcheck ./...) || exit 1; done

## fuzz: short fuzz runs of the message parser and the decimal parser (seed corpus in usage/testdata/fuzz)
fuzz:
	go test -run '^$$' -fuzz '^FuzzParseEvent$$' -fuzztime $(FUZZTIME) ./usage
	go test -run '^$$' -fuzz '^FuzzParseDecimal$$' -fuzztime $(FUZZTIME) ./usage

terraform-check:
	bash scripts/terraform-check.sh

## package: dist/function.zip for the provided.al2023 runtime (GOARCH_LAMBDA=amd64 for x86_64)
## (the build flags are defined once, in internal/dev/emulator/build.go, and shared with the tests that run the bootstrap)
package:
	go run ./internal/dev/emulator/cmd/lambdabuild -goarch $(GOARCH_LAMBDA) -o dist/bootstrap
	go run ./internal/dev/packaging dist/bootstrap dist/function.zip
	@ls -l dist/bootstrap dist/function.zip; sha256sum dist/bootstrap

## bench: build everything, start the local stack, run the workload against ours and the naive baseline, print JSON
# (built in the benchmark's module, run from the repository root: relative paths in BENCH_FLAGS are the root's)
bench:
	go run ./internal/dev/emulator/cmd/emulators install
	go -C $(BENCH_MODULE) build -o $(CURDIR)/bin/usage-bench ./cmd/usage-bench
	bin/usage-bench $(BENCH_FLAGS)

tools: .cache/bin/staticcheck

.cache/bin/staticcheck:
	GOBIN=$(CURDIR)/.cache/bin go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

clean:
	rm -rf dist

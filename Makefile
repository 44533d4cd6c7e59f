# seedrepl — make targets a newcomer expects.
SHELL := /bin/bash
.DEFAULT_GOAL := help
GO ?= go
export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
LAMBDAS := $(notdir $(wildcard lambdas/*))

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

node_modules: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch node_modules

.PHONY: deps
deps: node_modules ## install Go modules and npm packages
	$(GO) mod download

.PHONY: build
build: ## cross-compile every Lambda to dist/<state>/bootstrap (linux/arm64) and print sizes
	@rm -rf dist && mkdir -p dist
	@for f in $(LAMBDAS); do \
	  GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -buildvcs=false \
	    -ldflags='-s -w' -o dist/$$f/bootstrap ./lambdas/$$f || exit 1; \
	done
	@if [ -n "$(LAMBDAS)" ]; then du -b dist/*/bootstrap | awk '{printf "%8.1f MiB  %s\n", $$1/1048576, $$2}'; fi

.PHONY: test
test: node_modules build ## unit, fuzz-corpus, real-PostgreSQL, engine, CDK and end-to-end tests
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...

.PHONY: fuzz
fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	$(GO) test ./internal/lsn -run '^$$' -fuzz FuzzParse -fuzztime $${FUZZTIME:-30s}

.PHONY: lint
lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

.PHONY: rehearse
rehearse: ## the main job: a full local rehearsal of the migration on real PostgreSQL
	$(GO) test -count=1 -v -run '^TestEngineProof$$' ./test/proof

.PHONY: bench
bench: ## benchmarks; results written to docs/
	@echo "no benchmarks yet"

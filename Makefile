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
	$(GO) test ./internal/lsn -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $${FUZZTIME:-30s}
	$(GO) test ./test/localcloud -run '^$$' -fuzz '^FuzzParseTestDecoding$$' -fuzztime $${FUZZTIME:-30s}

.PHONY: lint
lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

REHEARSE_BIN := .rehearsal/bin/rehearse

.PHONY: rehearse
rehearse: node_modules ## the main job: the whole workflow end to end on local PostgreSQL (MODE=subscription|dms, SOURCE_DSN=, KEEP=1)
	@mkdir -p .rehearsal/bin
	$(GO) build -o $(REHEARSE_BIN) ./test/rehearse
	$(REHEARSE_BIN) run

.PHONY: rehearse-down
rehearse-down: ## stop a kept (KEEP=1) or killed rehearsal and remove everything it made
	@mkdir -p .rehearsal/bin
	$(GO) build -o $(REHEARSE_BIN) ./test/rehearse
	$(REHEARSE_BIN) down

.PHONY: proof
proof: ## the engine proof alone: seeded replication on real PostgreSQL, with the negative proofs
	$(GO) test -count=1 -v -run '^TestEngineProof$$' ./test/proof

CDK := npx --no-install cdk
CDK_FLAGS := --no-notices

.PHONY: synth
synth: node_modules build ## print the CloudFormation template, offline (stubs stand in for Lambdas not built)
	$(CDK) synth $(CDK_FLAGS) -c stubMissingCode=true $(CDK_ARGS)

.PHONY: deploy
deploy: node_modules build ## build every Lambda, copy the RDS CA bundle into dist/*, cdk deploy (CDK_ARGS=-c key=value …)
	@bundle="$${CA_BUNDLE:-rds-ca-bundle.pem}"; \
	  test -f "$$bundle" || { echo "deploy: the RDS CA bundle $$bundle is missing: download it (see docs/deploy.md) or set CA_BUNDLE=path"; exit 1; }; \
	  for d in dist/*/; do cp "$$bundle" "$$d/rds-ca-bundle.pem"; done
	$(CDK) deploy $(CDK_FLAGS) $(CDK_ARGS)

.PHONY: bench
bench: node_modules ## benchmarks (polling schedule, Go benchmarks, Lambda sizes, rehearsal times); results in docs/
	scripts/bench.sh

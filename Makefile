# clawdeploy: `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# The stack the operator's verbs work on.
STACK ?= dev

BIN := $(CURDIR)/bin
# The Pulumi CLI version is pinned once, in tools/go.mod.
PULUMI_VERSION := $(shell awk '{ for (i = 1; i < NF; i++) if ($$i == "github.com/pulumi/pulumi/pkg/v3") print $$(i + 1) }' tools/go.mod)
ifeq ($(PULUMI_VERSION),)
$(error tools/go.mod does not require github.com/pulumi/pulumi/pkg/v3)
endif
GOLANGCI_LINT_VERSION := v2.11.4
ACTIONLINT_VERSION := v1.7.12
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO_TEST_FLAGS ?= -timeout 60m

# Everything below runs the CLI that `make tools` built, never whatever else is installed.
export PATH := $(BIN):$(PATH)
export PULUMI_SKIP_UPDATE_CHECK := true

.PHONY: help
help: ## list the targets
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z0-9_-]+:.*## / { printf "  %-16s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo
	@echo "  STACK=$(STACK) (override: make up STACK=prod)"

.PHONY: tools
tools: ## build the pinned Pulumi CLI into ./bin (seconds when it is already there)
	@if [ "$$($(BIN)/pulumi version 2>/dev/null)" = "$(PULUMI_VERSION)" ]; then \
		echo "bin/pulumi $(PULUMI_VERSION) is up to date"; \
	else \
		echo "building the Pulumi CLI $(PULUMI_VERSION) into bin/ (about 6 minutes the first time)"; \
		cd tools && go build -o $(BIN)/pulumi \
			-ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$(PULUMI_VERSION)" \
			github.com/pulumi/pulumi/pkg/v3/cmd/pulumi; \
		$(BIN)/pulumi version; \
	fi

.PHONY: build
build: ## build bin/clawdeploy, the driver
	go build -ldflags "-X github.com/clawdeploy/clawdeploy/cmd/clawdeploy/app.Version=$(VERSION)" \
		-o $(BIN)/clawdeploy ./cmd/clawdeploy

.PHONY: deps
deps: ## install what the tests call when it is missing (Debian packages, moto_server, the real OpenClaw and its Node into tools/openclaw): nothing when all is there
	scripts/install-test-deps.sh

.PHONY: test
test: tools deps ## run every test: unit, mocks and engine-level (builds the CLI and installs the tools when missing)
	go test $(GO_TEST_FLAGS) ./...

.PHONY: test-times
test-times: tools deps ## run every test, then print each package's wall time and the 20 slowest tests and subtests (events kept in tmp/test.json)
	@mkdir -p tmp
	@status=0; go test -json $(GO_TEST_FLAGS) ./... > tmp/test.json || status=$$?; \
		go run ./internal/testtimes/cmd/test-times -n 20 tmp/test.json; exit $$status

.PHONY: test-kill-matrix
test-kill-matrix: tools deps ## the kill matrices in full: every operation killed at every resource event and resumed (CI runs the first event of each kind and the last)
	CLAWDEPLOY_KILL_MATRIX=full go test $(GO_TEST_FLAGS) -run 'TestKillAtEveryEvent' -v ./automation

.PHONY: test-loaded
test-loaded: tools deps ## every test while a busy loop per core runs at a lower priority: no test may assume an idle machine
	@busy=(); for _ in $$(seq "$$(nproc)"); do nice -n 5 sh -c 'while :; do :; done' & busy+=($$!); done; \
		trap 'kill "$${busy[@]}"' EXIT; go test -count=1 $(GO_TEST_FLAGS) ./...

.PHONY: bench
bench: tools ## benchmarks: resume to first engine event (dead owner), resume of a READY deployment, heal to READY, the program, Spot notice to final backup (1 GB), several hosts (takeover in lease TTLs, claims/s, deployments/h with 1 and 3 workers)
	go test -run '^$$' -bench 'BenchmarkResumeDeadOwner' -benchtime 5x ./automation
	go test -run '^$$' -bench 'BenchmarkResumeReady' ./automation
	go test -run '^$$' -bench 'BenchmarkHeal' -benchtime 5x ./automation
	go test -run '^$$' -bench 'BenchmarkProgram' ./targets/ec2spot
	go test -run '^$$' -bench 'BenchmarkSpotNoticeToFinalBackup' -benchtime 1x -timeout 30m ./cloudinit
	go test -run '^$$' -bench 'BenchmarkTakeover|BenchmarkClaims|BenchmarkThroughput' -benchtime 1x -timeout 60m ./automation

$(BIN)/golangci-lint:
	GOBIN=$(BIN) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

$(BIN)/actionlint:
	GOBIN=$(BIN) go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

.PHONY: lint
lint: $(BIN)/golangci-lint $(BIN)/actionlint deps ## gofmt, go vet, golangci-lint, shellcheck and actionlint (the workflows)
	@unformatted=$$(gofmt -l .); \
		if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	go vet ./...
	$(BIN)/golangci-lint run ./...
	shellcheck -x .ci/run $$(git ls-files '*.sh')
	$(BIN)/actionlint .github/workflows/*.yml

INSTANCE_TYPES ?= t4g.small t4g.medium
.PHONY: ec2-spot-prices
ec2-spot-prices: build ## Spot prices of INSTANCE_TYPES in every zone of REGION, cheapest first, and the config lines for the best
	@if [ -z "$(REGION)" ]; then echo 'REGION is required: make ec2-spot-prices INSTANCE_TYPES="t4g.small t4g.medium" REGION=me-central-1' >&2; exit 2; fi
	$(BIN)/clawdeploy spot-prices --instance-types "$(INSTANCE_TYPES)" --region "$(REGION)"

.PHONY: preview
preview: tools build ## show what `up` would change in STACK, touching nothing
	$(BIN)/clawdeploy preview --stack $(STACK)

.PHONY: up
up: tools build ## create or update STACK (needs AWS credentials and PULUMI_CONFIG_PASSPHRASE)
	$(BIN)/clawdeploy up --stack $(STACK)

.PHONY: destroy
destroy: tools build ## delete every resource of STACK; asks for the stack name (or CONFIRM=<stack>)
	@answer="$(CONFIRM)"; \
	if [ -z "$$answer" ]; then \
		read -r -p "Destroy every resource of stack $(STACK), the data volume included? Type the stack name: " answer; \
	fi; \
	if [ "$$answer" != "$(STACK)" ]; then echo "not confirmed: nothing was destroyed"; exit 1; fi
	$(BIN)/clawdeploy destroy --stack $(STACK) --yes

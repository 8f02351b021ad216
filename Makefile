# glasshouse: run `make help` for the list of targets.
SHELL := /bin/bash
GO ?= go
FUZZTIME ?= 5s
BIN := bin

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help (coloured only on a terminal).
	@if [ -t 1 ]; then on=$$'\033[36m' off=$$'\033[0m'; else on= off=; fi; \
	awk -v on="$$on" -v off="$$off" 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %s%-16s%s %s\n", on, $$1, off, $$2}' $(MAKEFILE_LIST)

.PHONY: run
run: ## Run the API with zero setup (embedded SQLite under ./data, dev JWT key).
	@echo "building bin/glasshouse-api (the first build on a new machine compiles for about two minutes)"
	@$(GO) build -o $(BIN)/glasshouse-api ./app/cmd/glasshouse-api
	@# exec: Ctrl-C and SIGTERM reach the API itself, which shuts down cleanly and exits 0.
	@exec $(BIN)/glasshouse-api

.PHONY: build
build: ## Build every binary into ./bin.
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X main.version=$$(git describe --always --dirty 2>/dev/null)" -o $(BIN)/ ./app/cmd/... ./alerts/cmd/... ./loadtest/cmd/...

.PHONY: test
test: ## Run the whole test suite (race detector, then brief fuzzing).
	$(GO) test -race -count=1 ./...
	$(MAKE) --no-print-directory fuzz

.PHONY: test-short
test-short: ## Run the unit tests only (-short: no PostgreSQL, Redis, Prometheus or Alertmanager), for a fast inner loop.
	env -u TEST_DATABASE_URL -u TEST_REDIS_URL -u GLASSHOUSE_REQUIRE_SERVICES $(GO) test -short ./...

.PHONY: cover
cover: ## Coverage profile (cover.out) and a per-package summary.
	set -o pipefail; $(GO) test -count=1 -coverprofile=cover.out ./... | tee cover.txt
	@$(GO) tool cover -func=cover.out | tail -1

.PHONY: attack
attack: ## Replay the attack scenarios (TestAttack*) at full scale against freshly started APIs, one package at a time, printing what each measured.
	@# Only the packages that hold attack scenarios: compiling every test binary again without -race would double the step's time.
	set -o pipefail; pkgs=$$(grep -rl --include='*_test.go' '^func TestAttack' . | xargs -n1 dirname | sort -u); \
	GLASSHOUSE_ATTACK=1 $(GO) test -p 1 -count=1 -v -timeout 120s -run '^TestAttack' $$pkgs | grep -Ev '^\?|no tests to run|^PASS$$'

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME (default 5s) each; a failing input is kept under testdata/fuzz.
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./internal/fuzz.sh

.PHONY: lint
lint: ## gofmt (fails on unformatted files), go vet and staticcheck (pinned in go.mod as a tool).
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

.PHONY: bench
bench: ## Benchmark the middleware chain against the bare handler and print the ratio.
	$(GO) test -run '^$$' -bench 'BenchmarkChain' -benchmem -count 5 ./app/httpapi/ | tee /tmp/glasshouse-bench.txt
	$(GO) run ./app/httpapi/internal/benchratio < /tmp/glasshouse-bench.txt

.PHONY: bench-bulk
bench-bulk: ## Creating 100 items one by one against chunked bulk inserts (SQLite; PostgreSQL too when TEST_DATABASE_URL is set).
	$(GO) test -run '^$$' -bench 'BenchmarkCreateItems' -benchtime 200x -count 3 ./app/sqlite/ ./app/postgres/

.PHONY: rules
rules: ## Regenerate everything derived from alerts/slo.yaml; SLO=path/slo.yaml OUT=dir renders another service's complete set into OUT.
ifdef SLO
	$(GO) run ./alerts/cmd/rulegen -spec $(SLO) -dir $(or $(OUT),$(dir $(SLO))generated)
else
	$(GO) run ./alerts/cmd/rulegen
	$(GO) run ./dashboards/cmd/dashgen
endif

.PHONY: fork-check
fork-check: ## Prove a second service (examples/orders) on the stack: both services, real Prometheus, load, a fault in orders only.
	$(GO) test -count=1 -run 'TestFork' -v ./alerts/fork/

.PHONY: gameday
gameday: ## Inject faults into a live API under real Prometheus + Alertmanager and time the alerts.
	$(GO) test -count=1 -run 'TestGameday' -v ./alerts/gameday/

.PHONY: load
load: ## Run the smoke/average load scenario against a running API (TARGET, default http://127.0.0.1:8080).
	$(GO) build -o $(BIN)/glasshouse-load ./loadtest/cmd/glasshouse-load && $(GO) build -o $(BIN)/nativestack ./compose/cmd/nativestack && $(BIN)/nativestack load -- $(BIN)/glasshouse-load -target $${TARGET:-http://127.0.0.1:8080} -scenario $${SCENARIO:-average} $${LOAD_FLAGS:-}

.PHONY: bench-http
bench-http: ## Req/s, p50/p99 and RSS over loopback: defaults vs tracing off vs tracing and access log off (wrk, pinned cores).
	./bench/run.sh http

.PHONY: bench-fastapi
bench-fastapi: ## The same API on FastAPI + uvicorn (bench/fastapi) against glasshouse, measured in one run.
	./bench/run.sh fastapi

.PHONY: slo-gate
slo-gate: ## Judge the SLOs: the API alone under the average scenario (1,000+ requests), thresholds from alerts/slo.yaml, client vs server metrics; exit 99 on a miss.
	./loadtest/slo-gate.sh

.PHONY: bench-loadgen
bench-loadgen: ## Compare the load engine with wrk and hey on loopback (prints a ratio table).
	./loadtest/bench/run.sh

.PHONY: dashboards
dashboards: ## Regenerate the committed dashboard JSON.
	$(GO) run ./dashboards/cmd/dashgen

.PHONY: dashboards-check
dashboards-check: ## Prove every dashboard panel returns data from a live Prometheus scraping the API.
	$(GO) test -count=1 -run 'TestLive' -v ./dashboards/

.PHONY: scaleout-check
scaleout-check: ## Three API replicas behind nginx on PostgreSQL and Redis: rolling restart, killed replica, global limits (~2 min; TEST_DATABASE_URL, TEST_REDIS_URL).
	GLASSHOUSE_SCALEOUT=1 $(GO) test -count=1 -run '^TestScaleOut$$' -v -timeout 6m ./compose/scaleout/

.PHONY: stack-up
stack-up: ## Start the whole stack (docker compose, or a native fallback without Docker).
	./compose/stack.sh up

.PHONY: stack-down
stack-down: ## Stop the stack started by stack-up (VOLUMES=1 also removes volumes).
	./compose/stack.sh down

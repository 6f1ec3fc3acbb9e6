# Kestrel — make targets. `make devnet` runs a dev chain; `make test` is CI's command.
GO        ?= go
BIN       := bin/kestrel
# Packages whose concurrency matters; `make test-race` runs them under the race detector.
RACE_PKGS := ./core/... ./mempool/... ./rpc/... ./store/... ./sequencer/... ./stream/... ./replica/...

.PHONY: all build geth test test-race test-full conformance devnet bench bench-quick lint contracts deps fuzz clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/kestrel

# geth builds go-ethereum's geth from this module (op-geth through go.mod's
# replace; go.mod's tool directive pins it): the end-to-end baseline that
# `kestrel bench` starts as `geth --dev` (it looks next to bin/kestrel).
geth:
	$(GO) build -o bin/geth github.com/ethereum/go-ethereum/cmd/geth

# deps installs what tests need beyond Go modules: solc from npm for the
# contract artifact check.
deps:
	npm ci --prefix contracts --no-audit --no-fund
	$(GO) mod download

# test is the command CI runs (.ci/run): vet, every vendored Ethereum state
# test through `kestrel statetest` on both engines, the short suites, and the
# race detector on the concurrent packages (the parallel engine's tests too).
test: deps geth
	$(GO) vet ./...
	$(GO) run ./cmd/kestrel statetest core/exec/testdata/ethereum-state-tests.tar.gz
	$(GO) run ./cmd/kestrel statetest --statetest.mode parallel core/exec/testdata/ethereum-state-tests.tar.gz
	$(GO) test -short -count=1 -timeout 20m ./...
	$(GO) test -short -count=1 -race -timeout 20m ./mempool/... ./rpc/... ./core/state/... ./core/blockstm/... ./sequencer/... ./stream/... ./replica/...
	$(GO) test -short -count=1 -race -timeout 20m -run 'Parallel|Differential' ./core/exec/

# test-race runs every concurrent package under the race detector.
test-race:
	$(GO) test -short -count=1 -race -timeout 30m $(RACE_PKGS)

# test-full runs the long suites: all Ethereum state tests and more crash rounds.
test-full: deps
	KESTREL_STATE_TESTS=full $(GO) test -count=1 -timeout 60m ./...

# conformance compares Kestrel's JSON-RPC answers with go-ethereum's on a
# 300-block chain (the -short 40-block version runs in `make test`); -v lists
# the allowed differences with their reasons.
conformance:
	$(GO) test -count=1 -v -timeout 20m -run TestConformance ./internal/conformance/

# fuzz runs each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode' -fuzztime $(FUZZTIME) ./mempool/
	$(GO) test -run '^$$' -fuzz '^FuzzHandleBody$$' -fuzztime $(FUZZTIME) ./rpc/
	$(GO) test -run '^$$' -fuzz '^FuzzWSBody$$' -fuzztime $(FUZZTIME) ./rpc/
	$(GO) test -run '^$$' -fuzz '^FuzzFilterParams$$' -fuzztime $(FUZZTIME) ./rpc/
	$(GO) test -run '^$$' -fuzz '^FuzzTraceAndAccessListParams$$' -fuzztime $(FUZZTIME) ./rpc/
	$(GO) test -run '^$$' -fuzz '^FuzzMiniBlock' -fuzztime $(FUZZTIME) ./core/chain/
	$(GO) test -run '^$$' -fuzz '^FuzzStateDiff' -fuzztime $(FUZZTIME) ./core/chain/
	$(GO) test -run '^$$' -fuzz '^FuzzParallelBlocks$$' -fuzztime $(FUZZTIME) ./core/exec/
	$(GO) test -run '^$$' -fuzz '^FuzzScheduler$$' -fuzztime $(FUZZTIME) ./core/blockstm/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeMiniBlock$$' -fuzztime $(FUZZTIME) ./stream/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeHeader$$' -fuzztime $(FUZZTIME) ./stream/
	$(GO) test -run '^$$' -fuzz '^FuzzUnmarshalSnapshotChunk$$' -fuzztime $(FUZZTIME) ./sequencer/

# devnet builds and runs a dev chain on 127.0.0.1:8545 with two replicas on
# the next ports and a gentle background load, kept in ~/.kestrel/devnet and
# resumed on the next run; DEVNET_ARGS adds flags (DEVNET_ARGS=--devnet.reset
# starts a new chain, --devnet.load 0 stops the load).
DEVNET_ARGS ?=
devnet: build
	$(BIN) devnet $(DEVNET_ARGS)

# bench runs the whole suite into bench-results/ (report.md, report.json,
# plots); bench-quick is its small smoke-test version.
BENCH_OUT ?= bench-results
bench: build geth
	$(BIN) bench --out $(BENCH_OUT)

bench-quick: build geth
	$(BIN) bench --quick --out $(BENCH_OUT)

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# contracts regenerates the committed contract artifacts with the pinned solc.
contracts:
	npm ci --prefix contracts --no-audit --no-fund
	node contracts/compile.js

clean:
	rm -rf bin

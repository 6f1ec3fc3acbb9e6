package bench

// The execution-engine benchmark (`kestrel bench engine`, issue 3): the same
// pre-signed blocks executed in one process by
//
//	(a) go-ethereum's sequential processing: state.StateDB over an in-memory
//	    trie database + core.ApplyTransactionWithEVM, one EVM per block;
//	(b) Kestrel's sequential executor (exec.Sequential) over the flat state;
//	(c) Kestrel's parallel executor (exec.Parallel), also with access-list
//	    inference off and at GOMAXPROCS 1 and 2.
//
// Senders are recovered before timing for all three, and nothing but execution
// is timed: no signing, decoding, pre-state building or state root. Every run
// starts from a fresh copy of the pre-state. After the timed runs (untimed) the
// engines are checked against each other: every transaction succeeded, (a) and
// (b) have the same receipts (status, gas, logs), every (c) result is byte-
// identical to (b)'s, and the state root of Kestrel's diffs (core/state.Merkle)
// equals go-ethereum's IntermediateRoot.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	osexec "os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/exec"
	"github.com/kestrel-l2/kestrel/core/state"
)

// Engine benchmark defaults.
const (
	// DefaultEngineTxs is the transactions per workload.
	DefaultEngineTxs = 10_000
	// DefaultEngineBlockTxs is the transactions per block (the 10,000).
	DefaultEngineBlockTxs = 10_000
	// DefaultEngineRuns is how many times every engine runs; medians are reported.
	DefaultEngineRuns = 3
)

// The engines' names in profile file names.
const (
	EngineGeth       = "geth"
	EngineSequential = "sequential"
	EngineParallel   = "parallel"
)

// EngineOptions configure the engine benchmark (RunEngine).
type EngineOptions struct {
	// Kinds are the workloads (EngineKinds if empty).
	Kinds []Kind
	// Txs is the transactions per workload, executed in blocks of BlockTxs.
	// There are min(Txs, BlockTxs) senders, so a block never holds two
	// transactions of one sender, and every transfer goes to a fresh recipient.
	Txs, BlockTxs int
	// Runs repeats every engine; medians are reported.
	Runs int
	// Workers is the parallel engine's worker count (0: GOMAXPROCS). The
	// GOMAXPROCS 1 and 2 runs always use as many workers as GOMAXPROCS.
	Workers int
	// Seed derives every key, address and transaction.
	Seed uint64
	// CPUProfile, when set, adds one untimed run of each of (a), (b) and (c) per
	// workload with a CPU profile written to CPUProfile with "-WORKLOAD-ENGINE"
	// inserted before the extension.
	CPUProfile string
	// Progress receives a line per engine run (discarded if nil).
	Progress io.Writer
}

func (o *EngineOptions) defaults() error {
	if len(o.Kinds) == 0 {
		o.Kinds = EngineKinds
	}
	if o.Txs == 0 {
		o.Txs = DefaultEngineTxs
	}
	if o.BlockTxs == 0 {
		o.BlockTxs = DefaultEngineBlockTxs
	}
	if o.Runs == 0 {
		o.Runs = DefaultEngineRuns
	}
	switch {
	case o.Txs < 1 || o.BlockTxs < 1 || o.Runs < 1:
		return errors.New("txs, block-txs and runs must be positive")
	case o.Workers < 0:
		return errors.New("workers must not be negative")
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return nil
}

// ParallelCounters are exec.ParallelStats over one run (a difference of two
// Stats calls).
type ParallelCounters struct {
	Requests           uint64 `json:"requests"`
	ParallelRequests   uint64 `json:"parallelRequests"`
	SequentialRequests uint64 `json:"sequentialRequests"`
	Txs                uint64 `json:"txs"`
	Executions         uint64 `json:"executions"`
	ReExecutions       uint64 `json:"reExecutions"`
}

func counterDelta(before, after exec.ParallelStats) *ParallelCounters {
	return &ParallelCounters{
		Requests: after.Requests - before.Requests, ParallelRequests: after.ParallelRequests - before.ParallelRequests,
		SequentialRequests: after.SequentialRequests - before.SequentialRequests, Txs: after.Txs - before.Txs,
		Executions: after.Executions - before.Executions, ReExecutions: after.ReExecutions - before.ReExecutions,
	}
}

// EngineTiming is one timed execution of a workload's blocks by one engine.
type EngineTiming struct {
	Elapsed    time.Duration `json:"elapsedNs"`
	TxPerSec   float64       `json:"txPerSec"`
	MgasPerSec float64       `json:"mgasPerSec"`
	// CPU is the process's CPU time during the timed part (GC included).
	CPU        time.Duration `json:"cpuNs"`
	GOMAXPROCS int           `json:"gomaxprocs"`
	// Workers and Parallel are the parallel engine's worker count and counters.
	Workers  int               `json:"workers,omitempty"`
	Parallel *ParallelCounters `json:"parallel,omitempty"`
}

// EngineRun is one run of every engine on one workload, each from a fresh
// pre-state.
type EngineRun struct {
	Run int `json:"run"`
	// LoadAvg is /proc/loadavg when the run started.
	LoadAvg             string       `json:"loadAvg,omitempty"`
	Geth                EngineTiming `json:"geth"`
	Sequential          EngineTiming `json:"kestrelSequential"`
	Parallel            EngineTiming `json:"kestrelParallel"`
	ParallelNoInference EngineTiming `json:"kestrelParallelNoInference"`
	ParallelProcs1      EngineTiming `json:"kestrelParallelGomaxprocs1"`
	ParallelProcs2      EngineTiming `json:"kestrelParallelGomaxprocs2"`
	// ParallelForced and ParallelForcedNoInference run every block through
	// Block-STM (--exec.mode parallel), with and without inference: where
	// auto mode runs a contended block sequentially, they show what
	// inference does to Block-STM's re-executions.
	ParallelForced            EngineTiming `json:"kestrelParallelForced"`
	ParallelForcedNoInference EngineTiming `json:"kestrelParallelForcedNoInference"`
}

// EngineSummary holds medians over runs; ratios are ratios of medians.
type EngineSummary struct {
	GethTxPerSec                float64 `json:"gethTxPerSec"`
	GethMgasPerSec              float64 `json:"gethMgasPerSec"`
	SequentialTxPerSec          float64 `json:"kestrelSequentialTxPerSec"`
	SequentialMgasPerSec        float64 `json:"kestrelSequentialMgasPerSec"`
	ParallelTxPerSec            float64 `json:"kestrelParallelTxPerSec"`
	ParallelMgasPerSec          float64 `json:"kestrelParallelMgasPerSec"`
	ParallelNoInferenceTxPerSec float64 `json:"kestrelParallelNoInferenceTxPerSec"`
	// ParallelVsGeth is (c)/(a), ParallelVsSequential (c)/(b), SequentialVsGeth
	// (b)/(a), all in tx/s.
	ParallelVsGeth       float64 `json:"parallelVsGeth"`
	ParallelVsSequential float64 `json:"parallelVsSequential"`
	SequentialVsGeth     float64 `json:"sequentialVsGeth"`
	// Executions and re-executions of (c) per run, with access-list inference
	// on and off.
	Executions              float64 `json:"executions"`
	ReExecutions            float64 `json:"reExecutions"`
	ExecutionsNoInference   float64 `json:"executionsNoInference"`
	ReExecutionsNoInference float64 `json:"reExecutionsNoInference"`
	// Procs1TxPerSec and Procs2TxPerSec are (c) at GOMAXPROCS 1 and 2 (workers
	// following); Speedup1To2 is their ratio.
	Procs1TxPerSec float64 `json:"gomaxprocs1TxPerSec"`
	Procs2TxPerSec float64 `json:"gomaxprocs2TxPerSec"`
	Speedup1To2    float64 `json:"speedup1To2"`
	// Block-STM forced on every block, with and without inference.
	ForcedTxPerSec                float64 `json:"forcedTxPerSec"`
	ForcedNoInferenceTxPerSec     float64 `json:"forcedNoInferenceTxPerSec"`
	ForcedReExecutions            float64 `json:"forcedReExecutions"`
	ForcedReExecutionsNoInference float64 `json:"forcedReExecutionsNoInference"`
}

// EngineProfile is a CPU profile of one engine on one workload.
type EngineProfile struct {
	Engine string `json:"engine"`
	Path   string `json:"path"`
	Top    string `json:"top,omitempty"`
}

// EngineWorkload is everything measured for one workload.
type EngineWorkload struct {
	Workload string `json:"workload"`
	Txs      int    `json:"txs"`
	Blocks   int    `json:"blocks"`
	BlockTxs int    `json:"blockTxs"`
	Senders  int    `json:"senders"`
	// TxKinds counts the transactions of each kind (mix has several).
	TxKinds map[string]int `json:"txKinds"`
	// GasUsed is the transactions' gas (system calls excluded), the same in
	// every engine and run.
	GasUsed uint64 `json:"gasUsed"`
	// StateRoot is the root after the last block, equal in go-ethereum and in
	// Kestrel (checked).
	StateRoot common.Hash     `json:"stateRoot"`
	Runs      []EngineRun     `json:"runs"`
	Median    EngineSummary   `json:"median"`
	Profiles  []EngineProfile `json:"cpuProfiles,omitempty"`
}

// EngineMachine describes where the benchmark ran.
type EngineMachine struct {
	GoVersion  string `json:"goVersion"`
	OS         string `json:"os"`
	NumCPU     int    `json:"numCPU"`
	CPUModel   string `json:"cpuModel,omitempty"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GCPercent  int    `json:"gcPercent"`
	LoadAvg    string `json:"loadAvgAtStart,omitempty"`
}

// EngineSettings are the options a report was made with.
type EngineSettings struct {
	Txs      int    `json:"txs"`
	BlockTxs int    `json:"blockTxs"`
	Runs     int    `json:"runs"`
	Workers  int    `json:"workers"`
	Seed     uint64 `json:"seed"`
}

// EngineReport is a whole engine benchmark.
type EngineReport struct {
	Started   time.Time        `json:"started"`
	Machine   EngineMachine    `json:"machine"`
	Settings  EngineSettings   `json:"settings"`
	Workloads []EngineWorkload `json:"workloads"`
}

// cpuModel is the first "model name" of /proc/cpuinfo, or "".
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// RunEngine runs the engine benchmark on every workload of o.
func RunEngine(ctx context.Context, o EngineOptions) (*EngineReport, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	rep := &EngineReport{
		Started: time.Now(),
		Machine: EngineMachine{GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, NumCPU: runtime.NumCPU(),
			CPUModel: cpuModel(), GOMAXPROCS: runtime.GOMAXPROCS(0), GCPercent: gcPercent(), LoadAvg: loadAvg()},
		Settings: EngineSettings{Txs: o.Txs, BlockTxs: o.BlockTxs, Runs: o.Runs, Workers: o.Workers, Seed: o.Seed},
	}
	for _, kind := range o.Kinds {
		wr, err := runEngineWorkload(ctx, o, kind)
		if err != nil {
			return rep, fmt.Errorf("%s: %w", EngineName(kind), err)
		}
		rep.Workloads = append(rep.Workloads, *wr)
	}
	return rep, nil
}

// engineInput is one workload ready to execute: decoded transactions with
// their senders, cut into blocks, and the pre-state.
type engineInput struct {
	name   string
	gen    *chain.Genesis
	cfg    *params.ChainConfig
	alloc  *chain.StateDiff // the genesis allocation as a diff, for Kestrel's state
	blocks [][]exec.Tx
	txs    int
}

// engineSenders is the sender count of the engine benchmark: one transaction
// per sender and block.
func engineSenders(txs, blockTxs int) int { return min(txs, blockTxs) }

// EngineWorkloadConfig is the workload the engine benchmark generates: one
// transaction per sender and block, and enough recipients that no transfer goes
// to an account an earlier one created.
func EngineWorkloadConfig(kind Kind, txs, blockTxs int, seed uint64) WorkloadConfig {
	senders := engineSenders(txs, blockTxs)
	// Transaction i goes to recipient (i + i/senders) mod recipients.
	return WorkloadConfig{Kind: kind, Txs: txs, Senders: senders, Recipients: txs + txs/senders + 1, Seed: seed}
}

// prepareEngine decodes the workload's transactions and warms everything the
// timed loops would otherwise compute once per transaction: go-ethereum's
// sender cache (types.Sender with the signer of the blocks, so that
// core.TransactionToMessage in the timed loop recovers nothing) and the
// transaction hashes.
func prepareEngine(w *Workload, blockTxs int) (*engineInput, error) {
	gen := w.Genesis()
	in := &engineInput{name: EngineName(w.Config.Kind), gen: gen, cfg: gen.ChainConfig(), alloc: gen.AllocDiff(), txs: len(w.Throughput())}
	txs := make([]exec.Tx, in.txs)
	env := in.env(0)
	signer := types.MakeSigner(in.cfg, new(big.Int).SetUint64(env.Block.Number), env.Block.Time)
	errs := make([]error, len(txs))
	parallel(len(txs), func(i int) {
		raw := w.Txs[i]
		tx := new(types.Transaction)
		if err := tx.UnmarshalBinary(raw.Raw); err != nil {
			errs[i] = fmt.Errorf("decode tx %d: %w", i, err)
			return
		}
		from, err := types.Sender(signer, tx)
		if err == nil && from != w.Senders[raw.Sender].Addr {
			err = fmt.Errorf("recovered %s, signed by %s", from, w.Senders[raw.Sender].Addr)
		}
		if err != nil {
			errs[i] = fmt.Errorf("sender of tx %d: %w", i, err)
			return
		}
		tx.Hash()
		txs[i] = exec.Tx{Tx: tx, Sender: from}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for first := 0; first < len(txs); first += blockTxs {
		block := txs[first:min(first+blockTxs, len(txs))]
		in.blocks = append(in.blocks, block)
		// A block must hold its transactions' gas limits: where the genesis
		// gas limit is too small for them (10,000 deployments are), every
		// engine runs with a larger one.
		var gas uint64
		for _, tx := range block {
			gas += tx.Tx.Gas()
		}
		gen.GasLimit = max(gen.GasLimit, gas)
	}
	return in, nil
}

// env is the environment of block b (from 0): number b+1, the genesis base fee
// and gas limit in every block (no EIP-1559 adjustment, in every engine alike;
// prepareEngine raises the gas limit to what the largest block needs).
func (in *engineInput) env(b int) *exec.Env {
	n := uint64(b + 1)
	return &exec.Env{Config: in.cfg, GetHash: fakeHash, Block: chain.BlockEnv{
		Number: n, Time: in.gen.Timestamp + n, BaseFee: new(big.Int).Set(in.gen.BaseFee), GasLimit: in.gen.GasLimit,
		Coinbase: in.gen.Coinbase, Random: chain.RandomFor(in.gen.ChainID, n)}}
}

// engineOutput is what one engine run produced.
type engineOutput struct {
	timing   EngineTiming
	gas      uint64
	receipts []*types.Receipt // go-ethereum
	results  []*exec.Result   // Kestrel, one per block
	preRoot  common.Hash      // go-ethereum, with root
	root     common.Hash      // go-ethereum, with root: IntermediateRoot after the last block
}

func (out *engineOutput) finish(txs int, elapsed, cpu time.Duration) {
	out.timing.Elapsed, out.timing.CPU, out.timing.GOMAXPROCS = elapsed, cpu, runtime.GOMAXPROCS(0)
	if s := elapsed.Seconds(); s > 0 {
		out.timing.TxPerSec = float64(txs) / s
		out.timing.MgasPerSec = float64(out.gas) / s / 1e6
	}
}

// timed is an engine's timed section: it starts after a GC, with the
// optional CPU profile running, and measures wall-clock and process CPU time.
type timed struct {
	stopProfile func() error
	cpu0        time.Duration
	start       time.Time
}

func startTimed(profile string) (*timed, error) {
	runtime.GC()
	t := &timed{stopProfile: func() error { return nil }}
	if profile != "" {
		if err := os.MkdirAll(filepath.Dir(profile), 0o755); err != nil {
			return nil, err
		}
		f, err := os.Create(profile)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, err
		}
		t.stopProfile = func() error { pprof.StopCPUProfile(); return f.Close() }
	}
	t.cpu0, t.start = processCPU(), time.Now()
	return t, nil
}

// stop ends the section and returns its wall-clock and CPU time.
func (t *timed) stop() (elapsed, cpu time.Duration, err error) {
	elapsed, cpu = time.Since(t.start), processCPU()-t.cpu0
	return elapsed, cpu, t.stopProfile()
}

// runGeth is engine (a): go-ethereum's block processing on one goroutine. Each
// block gets one EVM, the EIP-4788 and EIP-2935 system calls (as Kestrel's
// requests ask for them), and core.ApplyTransactionWithEVM per transaction,
// which finalises the state and builds the receipt with its bloom. withRoot
// computes IntermediateRoot after the timed part.
func runGeth(in *engineInput, profile string, withRoot bool) (*engineOutput, error) {
	bs, err := newBaselineState(in.gen)
	if err != nil {
		return nil, fmt.Errorf("geth pre-state: %w", err)
	}
	sdb := bs.state
	out := &engineOutput{receipts: make([]*types.Receipt, 0, in.txs), preRoot: bs.root}
	tm, err := startTimed(profile)
	if err != nil {
		return nil, err
	}
	for b, block := range in.blocks {
		env := in.env(b)
		blockCtx := exec.BlockContext(env)
		blockHash := fakeHash(env.Block.Number)
		evm := vm.NewEVM(blockCtx, sdb, in.cfg, vm.Config{})
		core.ProcessBeaconBlockRoot(common.Hash{}, evm)
		core.ProcessParentBlockHash(fakeHash(env.Block.Number-1), evm)
		gp := core.NewGasPool(env.Block.GasLimit)
		signer := types.MakeSigner(in.cfg, blockCtx.BlockNumber, blockCtx.Time)
		for i, tx := range block {
			// prepareEngine cached the sender in tx with an equal signer: no
			// signature is recovered here.
			msg, err := core.TransactionToMessage(tx.Tx, signer, blockCtx.BaseFee)
			if err == nil {
				sdb.SetTxContext(tx.Tx.Hash(), i)
				var r *types.Receipt
				if r, err = core.ApplyTransactionWithEVM(msg, gp, sdb, blockCtx.BlockNumber, blockHash, blockCtx.Time, tx.Tx, evm); err == nil {
					out.receipts = append(out.receipts, r)
				}
			}
			if err != nil {
				tm.stop()
				return nil, fmt.Errorf("geth: block %d tx %d: %w", b+1, i, err)
			}
		}
	}
	elapsed, cpu, err := tm.stop()
	if err != nil {
		return nil, err
	}
	for i, r := range out.receipts {
		if r.Status != types.ReceiptStatusSuccessful {
			return nil, fmt.Errorf("geth: tx %d (%s) failed", i, r.TxHash)
		}
		out.gas += r.GasUsed
	}
	out.finish(in.txs, elapsed, cpu)
	if withRoot {
		out.root = sdb.IntermediateRoot(true)
	}
	return out, nil
}

// runKestrel is engines (b) and (c): every block one request (with the
// EIP-4788 and EIP-2935 system calls) on the head of a fresh flat state, and
// its diff committed as the next block's state (timed: the next block needs it).
func runKestrel(ctx context.Context, in *engineInput, engine exec.Executor, profile string) (*engineOutput, error) {
	st := state.New()
	st.Commit(1, in.alloc)
	out := &engineOutput{results: make([]*exec.Result, 0, len(in.blocks))}
	tm, err := startTimed(profile)
	if err != nil {
		return nil, err
	}
	for b, block := range in.blocks {
		env := in.env(b)
		parent := fakeHash(env.Block.Number - 1)
		res, err := engine.Execute(ctx, st.Head(), env, &exec.Request{Txs: block, BeaconRoot: true, ParentHash: &parent})
		if err != nil {
			tm.stop()
			return nil, fmt.Errorf("block %d: %w", b+1, err)
		}
		st.Commit(uint64(b+2), res.Diff)
		out.results = append(out.results, res)
	}
	elapsed, cpu, err := tm.stop()
	if err != nil {
		return nil, err
	}
	for b, res := range out.results {
		if len(res.Rejected) > 0 {
			r := res.Rejected[0]
			return nil, fmt.Errorf("block %d: %d transactions rejected, first %s: %v", b+1, len(res.Rejected), r.Tx.Tx.Hash(), r.Err)
		}
		if len(res.Receipts) != len(in.blocks[b]) {
			return nil, fmt.Errorf("block %d: %d receipts for %d transactions", b+1, len(res.Receipts), len(in.blocks[b]))
		}
		for i, r := range res.Receipts {
			if r.Status != types.ReceiptStatusSuccessful {
				return nil, fmt.Errorf("block %d tx %d (%s) failed", b+1, i, res.Txs[i].Tx.Hash())
			}
			out.gas += r.GasUsed
		}
	}
	out.finish(in.txs, elapsed, cpu)
	return out, nil
}

// warmupTxs is how many of the first block's transactions a fresh parallel
// engine executes, untimed, on a scratch copy of the pre-state before a run.
const warmupTxs = 1000

// runParallel is engine (c) on a fresh engine. Access-list inference learns
// online, from executed requests: before the timed blocks, the engine runs a
// warm-up request (the first warmupTxs transactions of the first block, on a
// scratch copy of the pre-state, untimed and not counted), as a running
// sequencer's engine has seen earlier mini-blocks. procs > 0 sets GOMAXPROCS
// for the run (and restores it), with as many workers.
func runParallel(ctx context.Context, in *engineInput, cfg exec.ParallelConfig, procs int, profile string) (*engineOutput, error) {
	if procs > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		cfg.Workers = 0
	}
	workers := cfg.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	p := exec.NewParallel(cfg)
	if len(in.blocks) > 0 {
		st := state.New()
		st.Commit(1, in.alloc)
		env := in.env(0)
		parent := fakeHash(env.Block.Number - 1)
		warm := in.blocks[0][:min(warmupTxs, len(in.blocks[0]))]
		if _, err := p.Execute(ctx, st.Head(), env, &exec.Request{Txs: warm, BeaconRoot: true, ParentHash: &parent}); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	before := p.Stats()
	out, err := runKestrel(ctx, in, p, profile)
	if err != nil {
		return nil, err
	}
	out.timing.Workers = workers
	out.timing.Parallel = counterDelta(before, p.Stats())
	return out, nil
}

// sameReceipts compares go-ethereum's receipts with Kestrel's: status, gas
// used, cumulative gas and logs (address, topics, data).
func sameReceipts(geth []*types.Receipt, results []*exec.Result) error {
	i := 0
	for b, res := range results {
		for j, k := range res.Receipts {
			if i >= len(geth) {
				return fmt.Errorf("kestrel has more receipts than geth (%d)", len(geth))
			}
			g := geth[i]
			if g.TxHash != res.Txs[j].Tx.Hash() {
				return fmt.Errorf("receipt %d is for %s in geth, %s in kestrel", i, g.TxHash, res.Txs[j].Tx.Hash())
			}
			if g.Status != k.Status || g.GasUsed != k.GasUsed || g.CumulativeGasUsed != k.CumulativeGasUsed || len(g.Logs) != len(k.Logs) {
				return fmt.Errorf("block %d tx %d: geth status %d gas %d cumulative %d logs %d, kestrel %d %d %d %d", b+1, j,
					g.Status, g.GasUsed, g.CumulativeGasUsed, len(g.Logs), k.Status, k.GasUsed, k.CumulativeGasUsed, len(k.Logs))
			}
			for l := range g.Logs {
				gl, kl := g.Logs[l], k.Logs[l]
				if gl.Address != kl.Address || !bytes.Equal(gl.Data, kl.Data) || len(gl.Topics) != len(kl.Topics) {
					return fmt.Errorf("block %d tx %d log %d differs", b+1, j, l)
				}
				for t := range gl.Topics {
					if gl.Topics[t] != kl.Topics[t] {
						return fmt.Errorf("block %d tx %d log %d topic %d differs", b+1, j, l, t)
					}
				}
			}
			i++
		}
	}
	if i != len(geth) {
		return fmt.Errorf("geth has %d receipts, kestrel %d", len(geth), i)
	}
	return nil
}

// resultBytes is a canonical encoding of everything in an exec.Result:
// transactions and senders, receipts (RLP, as stored in mini-blocks), rejections
// with their errors, cumulative gas and the diff (its binary format).
func resultBytes(r *exec.Result) ([]byte, error) {
	type txEnc struct {
		Hash   common.Hash
		Sender common.Address
	}
	type rejectEnc struct {
		Hash  common.Hash
		Err   string
		Retry bool
	}
	enc := struct {
		Txs      []txEnc
		Receipts []*chain.Receipt
		Rejected []rejectEnc
		GasUsed  uint64
		Diff     []byte
	}{Receipts: r.Receipts, GasUsed: r.GasUsed}
	for _, t := range r.Txs {
		enc.Txs = append(enc.Txs, txEnc{t.Tx.Hash(), t.Sender})
	}
	for _, rj := range r.Rejected {
		enc.Rejected = append(enc.Rejected, rejectEnc{rj.Tx.Tx.Hash(), rj.Err.Error(), rj.Retry})
	}
	if r.Diff != nil {
		d, err := r.Diff.MarshalBinary()
		if err != nil {
			return nil, err
		}
		enc.Diff = d
	}
	return rlp.EncodeToBytes(&enc)
}

// sameResults checks that two engines' results are byte-identical.
func sameResults(want, got []*exec.Result) error {
	if len(want) != len(got) {
		return fmt.Errorf("%d results, want %d", len(got), len(want))
	}
	for b := range want {
		w, err := resultBytes(want[b])
		if err != nil {
			return err
		}
		g, err := resultBytes(got[b])
		if err != nil {
			return err
		}
		if !bytes.Equal(w, g) {
			return fmt.Errorf("block %d: result differs from the sequential engine's (receipts or diff)", b+1)
		}
	}
	return nil
}

// kestrelRoot is the MPT root of the pre-state and of the state after every
// result's diff, from Kestrel's flat diffs (core/state.Merkle).
func kestrelRoot(in *engineInput, results []*exec.Result) (pre, post common.Hash, err error) {
	m := state.NewMerkle(1)
	if pre, err = m.Apply(0, in.alloc); err != nil {
		return pre, post, err
	}
	diffs := make([]*chain.StateDiff, len(results))
	for i, r := range results {
		diffs[i] = r.Diff
	}
	post, err = m.Apply(1, chain.MergeDiffs(diffs))
	return pre, post, err
}

// pprofTop is `go tool pprof -top` of a profile (15 nodes), or "" when the go
// command is not available.
func pprofTop(path string) string {
	gobin := goTool()
	if gobin == "" {
		return ""
	}
	out, err := osexec.Command(gobin, "tool", "pprof", "-top", "-nodecount=15", path).CombinedOutput()
	if err != nil {
		return ""
	}
	return string(out)
}

func engineProfilePath(base, workload, engine string) string {
	ext := filepath.Ext(base)
	return strings.TrimSuffix(base, ext) + "-" + workload + "-" + engine + ext
}

func (o *EngineOptions) progress(in *engineInput, run int, engine string, out *engineOutput) {
	t := out.timing
	line := fmt.Sprintf("[%s] run %d: %-26s %d txs in %v = %.0f tx/s, %.1f Mgas/s, CPU %v", in.name, run, engine, in.txs,
		t.Elapsed.Round(time.Millisecond), t.TxPerSec, t.MgasPerSec, t.CPU.Round(time.Millisecond))
	if p := t.Parallel; p != nil {
		line += fmt.Sprintf(", %d workers, %d/%d requests parallel, %d executions, %d re-executions", t.Workers, p.ParallelRequests, p.Requests, p.Executions, p.ReExecutions)
	}
	fmt.Fprintln(o.Progress, line)
}

func runEngineWorkload(ctx context.Context, o EngineOptions, kind Kind) (*EngineWorkload, error) {
	name := EngineName(kind)
	cfg := EngineWorkloadConfig(kind, o.Txs, o.BlockTxs, o.Seed)
	fmt.Fprintf(o.Progress, "[%s] signing %d transactions from %d senders\n", name, cfg.Txs, cfg.Senders)
	w, err := Generate(cfg)
	if err != nil {
		return nil, err
	}
	in, err := prepareEngine(w, o.BlockTxs)
	if err != nil {
		return nil, err
	}
	wr := &EngineWorkload{Workload: name, Txs: in.txs, Blocks: len(in.blocks), BlockTxs: o.BlockTxs, Senders: len(w.Senders), TxKinds: map[string]int{}}
	for _, t := range w.Throughput() {
		wr.TxKinds[EngineName(t.Kind)]++
	}
	parCfg := exec.ParallelConfig{Workers: o.Workers}
	noInf := exec.ParallelConfig{Workers: o.Workers, NoInference: true}
	forced := exec.ParallelConfig{Mode: exec.ModeParallel, Workers: o.Workers}
	forcedNoInf := exec.ParallelConfig{Mode: exec.ModeParallel, Workers: o.Workers, NoInference: true}
	for run := 1; run <= o.Runs; run++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		er := EngineRun{Run: run, LoadAvg: loadAvg()}
		geth, err := runGeth(in, "", run == 1)
		if err != nil {
			return nil, err
		}
		o.progress(in, run, "(a) geth", geth)
		seq, err := runKestrel(ctx, in, exec.Sequential{}, "")
		if err != nil {
			return nil, fmt.Errorf("kestrel sequential: %w", err)
		}
		o.progress(in, run, "(b) kestrel sequential", seq)
		if err := sameReceipts(geth.receipts, seq.results); err != nil {
			return nil, fmt.Errorf("geth and kestrel sequential disagree: %w", err)
		}
		if geth.gas != seq.gas {
			return nil, fmt.Errorf("gas used: geth %d, kestrel sequential %d", geth.gas, seq.gas)
		}
		if run == 1 {
			pre, post, err := kestrelRoot(in, seq.results)
			if err != nil {
				return nil, fmt.Errorf("kestrel state root: %w", err)
			}
			if pre != geth.preRoot || post != geth.root {
				return nil, fmt.Errorf("state roots differ: pre-state geth %s kestrel %s, after the run geth %s kestrel %s", geth.preRoot, pre, geth.root, post)
			}
			wr.StateRoot, wr.GasUsed = post, seq.gas
		}
		er.Geth, er.Sequential = geth.timing, seq.timing
		geth = nil
		for _, v := range []struct {
			label string
			cfg   exec.ParallelConfig
			procs int
			dst   *EngineTiming
		}{
			{"(c) kestrel parallel", parCfg, 0, &er.Parallel},
			{"(c) parallel, no inference", noInf, 0, &er.ParallelNoInference},
			{"(c) parallel, GOMAXPROCS 1", parCfg, 1, &er.ParallelProcs1},
			{"(c) parallel, GOMAXPROCS 2", parCfg, 2, &er.ParallelProcs2},
			{"(c) forced Block-STM", forced, 0, &er.ParallelForced},
			{"(c) forced Block-STM, no inference", forcedNoInf, 0, &er.ParallelForcedNoInference},
		} {
			par, err := runParallel(ctx, in, v.cfg, v.procs, "")
			if err != nil {
				return nil, fmt.Errorf("%s: %w", v.label, err)
			}
			o.progress(in, run, v.label, par)
			if err := sameResults(seq.results, par.results); err != nil {
				return nil, fmt.Errorf("%s: %w", v.label, err)
			}
			*v.dst = par.timing
		}
		wr.Runs = append(wr.Runs, er)
	}
	wr.Median = summarizeEngine(wr.Runs)
	if o.CPUProfile != "" {
		for _, engine := range []string{EngineGeth, EngineSequential, EngineParallel} {
			path := engineProfilePath(o.CPUProfile, name, engine)
			var err error
			switch engine {
			case EngineGeth:
				_, err = runGeth(in, path, false)
			case EngineSequential:
				_, err = runKestrel(ctx, in, exec.Sequential{}, path)
			default:
				_, err = runParallel(ctx, in, parCfg, 0, path)
			}
			if err != nil {
				return nil, fmt.Errorf("profile %s: %w", engine, err)
			}
			wr.Profiles = append(wr.Profiles, EngineProfile{Engine: engine, Path: path, Top: pprofTop(path)})
		}
	}
	return wr, nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// summarizeEngine takes the medians over runs; ratios are of the medians.
func summarizeEngine(runs []EngineRun) EngineSummary {
	med := func(f func(r *EngineRun) float64) float64 {
		xs := make([]float64, len(runs))
		for i := range runs {
			xs[i] = f(&runs[i])
		}
		return Median(xs)
	}
	counter := func(t func(r *EngineRun) *EngineTiming, f func(c *ParallelCounters) uint64) float64 {
		return med(func(r *EngineRun) float64 {
			if c := t(r).Parallel; c != nil {
				return float64(f(c))
			}
			return 0
		})
	}
	par := func(r *EngineRun) *EngineTiming { return &r.Parallel }
	noInf := func(r *EngineRun) *EngineTiming { return &r.ParallelNoInference }
	forced := func(r *EngineRun) *EngineTiming { return &r.ParallelForced }
	forcedNoInf := func(r *EngineRun) *EngineTiming { return &r.ParallelForcedNoInference }
	execs := func(c *ParallelCounters) uint64 { return c.Executions }
	reExecs := func(c *ParallelCounters) uint64 { return c.ReExecutions }
	s := EngineSummary{
		GethTxPerSec:                  med(func(r *EngineRun) float64 { return r.Geth.TxPerSec }),
		GethMgasPerSec:                med(func(r *EngineRun) float64 { return r.Geth.MgasPerSec }),
		SequentialTxPerSec:            med(func(r *EngineRun) float64 { return r.Sequential.TxPerSec }),
		SequentialMgasPerSec:          med(func(r *EngineRun) float64 { return r.Sequential.MgasPerSec }),
		ParallelTxPerSec:              med(func(r *EngineRun) float64 { return r.Parallel.TxPerSec }),
		ParallelMgasPerSec:            med(func(r *EngineRun) float64 { return r.Parallel.MgasPerSec }),
		ParallelNoInferenceTxPerSec:   med(func(r *EngineRun) float64 { return r.ParallelNoInference.TxPerSec }),
		Executions:                    counter(par, execs),
		ReExecutions:                  counter(par, reExecs),
		ExecutionsNoInference:         counter(noInf, execs),
		ReExecutionsNoInference:       counter(noInf, reExecs),
		Procs1TxPerSec:                med(func(r *EngineRun) float64 { return r.ParallelProcs1.TxPerSec }),
		Procs2TxPerSec:                med(func(r *EngineRun) float64 { return r.ParallelProcs2.TxPerSec }),
		ForcedTxPerSec:                med(func(r *EngineRun) float64 { return r.ParallelForced.TxPerSec }),
		ForcedNoInferenceTxPerSec:     med(func(r *EngineRun) float64 { return r.ParallelForcedNoInference.TxPerSec }),
		ForcedReExecutions:            counter(forced, reExecs),
		ForcedReExecutionsNoInference: counter(forcedNoInf, reExecs),
	}
	s.ParallelVsGeth = ratio(s.ParallelTxPerSec, s.GethTxPerSec)
	s.ParallelVsSequential = ratio(s.ParallelTxPerSec, s.SequentialTxPerSec)
	s.SequentialVsGeth = ratio(s.SequentialTxPerSec, s.GethTxPerSec)
	s.Speedup1To2 = ratio(s.Procs2TxPerSec, s.Procs1TxPerSec)
	return s
}

// Lines are the report's last lines, one per workload:
// "engine WORKLOAD: kestrel X tx/s, geth Y tx/s, ratio Z" with X the parallel
// engine's median tx/s, Y go-ethereum's, both rounded to integers, and Z = X/Y
// (of the unrounded medians) with two decimals.
func (r *EngineReport) Lines() []string {
	out := make([]string, len(r.Workloads))
	for i, w := range r.Workloads {
		m := w.Median
		out[i] = fmt.Sprintf("engine %s: kestrel %.0f tx/s, geth %.0f tx/s, ratio %.2f", w.Workload, m.ParallelTxPerSec, m.GethTxPerSec, m.ParallelVsGeth)
	}
	return out
}

// WriteTable prints the human-readable report, ending with Lines.
func (r *EngineReport) WriteTable(out io.Writer) {
	m, s := r.Machine, r.Settings
	workers := "GOMAXPROCS"
	if s.Workers > 0 {
		workers = fmt.Sprint(s.Workers)
	}
	cpu := m.CPUModel
	if cpu == "" {
		cpu = "CPU model unknown"
	}
	fmt.Fprintf(out, "Engine benchmark: %d txs per workload in blocks of %d, median of %d runs; %s, %d CPUs (%s), GOMAXPROCS %d, parallel workers %s, GC %d%%\n",
		s.Txs, s.BlockTxs, s.Runs, m.GoVersion, m.NumCPU, cpu, m.GOMAXPROCS, workers, m.GCPercent)
	fmt.Fprintln(out, "(a) go-ethereum StateDB + ApplyTransactionWithEVM, (b) Kestrel sequential, (c) Kestrel parallel; senders pre-recovered, execution only")
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\t(a) tx/s\t(a) Mgas/s\t(b) tx/s\t(b) Mgas/s\t(c) tx/s\t(c) Mgas/s\t(c)/(a)\t(c)/(b)\t(b)/(a)\t")
	for _, w := range r.Workloads {
		x := w.Median
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.0f\t%.1f\t%.0f\t%.1f\t%.2fx\t%.2fx\t%.2fx\t\n", w.Workload, x.GethTxPerSec, x.GethMgasPerSec,
			x.SequentialTxPerSec, x.SequentialMgasPerSec, x.ParallelTxPerSec, x.ParallelMgasPerSec, x.ParallelVsGeth, x.ParallelVsSequential, x.SequentialVsGeth)
	}
	tw.Flush()
	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tre-exec (SALI)\tre-exec (no SALI)\t(c) no-SALI tx/s\t(c) GOMAXPROCS=1 tx/s\t(c) GOMAXPROCS=2 tx/s\tspeedup 1->2\tparallel blocks\t")
	for _, w := range r.Workloads {
		x := w.Median
		blocks := "-"
		if len(w.Runs) > 0 && w.Runs[0].Parallel.Parallel != nil {
			c := w.Runs[0].Parallel.Parallel
			blocks = fmt.Sprintf("%d/%d", c.ParallelRequests, c.Requests)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.2fx\t%s\t\n", w.Workload, x.ReExecutions, x.ReExecutionsNoInference,
			x.ParallelNoInferenceTxPerSec, x.Procs1TxPerSec, x.Procs2TxPerSec, x.Speedup1To2, blocks)
	}
	tw.Flush()
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Block-STM forced on every block (--exec.mode parallel), with and without access-list inference:")
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tre-exec (SALI)\tre-exec (no SALI)\ttx/s (SALI)\ttx/s (no SALI)\t")
	for _, w := range r.Workloads {
		x := w.Median
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%.0f\t\n", w.Workload, x.ForcedReExecutions, x.ForcedReExecutionsNoInference, x.ForcedTxPerSec, x.ForcedNoInferenceTxPerSec)
	}
	tw.Flush()
	for _, w := range r.Workloads {
		for _, p := range w.Profiles {
			fmt.Fprintf(out, "CPU profile of %s on %s: %s\n", p.Engine, w.Workload, p.Path)
		}
	}
	fmt.Fprintln(out)
	for _, l := range r.Lines() {
		fmt.Fprintln(out, l)
	}
}

// WriteJSON writes the report as indented JSON.
func (r *EngineReport) WriteJSON(path string) error { return writeJSON(path, r) }

// writeJSON writes v to path as indented JSON (the reports' --json files).
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

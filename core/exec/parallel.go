package exec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/core/blockstm"
	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/state"
)

// Mode chooses between the engines.
type Mode string

// The modes.
const (
	// ModeAuto runs requests in parallel unless parallelism cannot help:
	// fewer than MinTxs transactions, one predicted chain of conflicts, or a
	// request size for which the sequential engine has measured faster on
	// this machine.
	ModeAuto Mode = "auto"
	// ModeParallel runs every request it can with Block-STM.
	ModeParallel Mode = "parallel"
	// ModeSequential runs every request with the sequential engine.
	ModeSequential Mode = "sequential"
)

// ParseMode parses a mode name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeAuto, ModeParallel, ModeSequential:
		return m, nil
	}
	return "", fmt.Errorf("unknown execution mode %q (want auto, parallel or sequential)", s)
}

// ParallelConfig configures the parallel engine.
type ParallelConfig struct {
	// Mode forces either engine; the zero value is ModeAuto.
	Mode Mode
	// Workers is the worker pool size (0: GOMAXPROCS at each request).
	Workers int
	// MinTxs: in ModeAuto, requests with fewer transactions run sequentially
	// (0: DefaultMinParallelTxs).
	MinTxs int
	// NoInference turns off access-list inference (SALI): no predictions are
	// used to hold back likely-conflicting transactions.
	NoInference bool
	// PredictorEntries bounds the (contract, selector) entries the predictor
	// learns (0: DefaultPredictorEntries).
	PredictorEntries int
}

// DefaultMinParallelTxs is the smallest request ModeAuto runs in parallel:
// below it, starting workers costs more than it saves.
const DefaultMinParallelTxs = 16

// ParallelStats are cumulative counters of a Parallel engine.
type ParallelStats struct {
	Requests           uint64 `json:"requests"`           // Execute calls
	ParallelRequests   uint64 `json:"parallelRequests"`   // of those, run by Block-STM
	SequentialRequests uint64 `json:"sequentialRequests"` // of those, run by the sequential engine
	Txs                uint64 `json:"txs"`                // transactions in parallel requests
	// Executions counts EVM executions of transactions in parallel requests;
	// ReExecutions those beyond the first of each transaction (aborted by a
	// failed validation or by a read of an unfinished write).
	Executions   uint64 `json:"executions"`
	ReExecutions uint64 `json:"reExecutions"`
	// Waits counts executions held back before starting, because a
	// predicted (or aborted) write of a lower transaction was pending.
	Waits uint64 `json:"waits"`
	// Aborts counts failed validations; Fallbacks requests that Block-STM
	// gave up on and ran sequentially (an internal error, logged).
	Aborts    uint64 `json:"aborts"`
	Fallbacks uint64 `json:"fallbacks"`
	// SerialRequests counts requests run sequentially because inference
	// predicted one chain of dependencies through most of them (included in
	// SequentialRequests).
	SerialRequests uint64 `json:"serialRequests"`
	// CostlierRequests counts requests ModeAuto ran sequentially because the
	// sequential engine has been faster for requests of that size
	// (included in SequentialRequests).
	CostlierRequests uint64 `json:"costlierRequests"`
}

// Parallel is the Block-STM engine over go-ethereum's interpreter. It gives
// the same results as Sequential, byte for byte, on any request. The Reader
// passed to Execute must be safe for concurrent use (state.View is).
type Parallel struct {
	cfg  ParallelConfig
	pred *predictor
	cost costModel

	requests, parallelRequests, sequentialRequests atomic.Uint64
	txs, executions, reExecutions, waits           atomic.Uint64
	aborts, fallbacks, serialRequests, costlier    atomic.Uint64
	lastErr                                        atomic.Pointer[error]
}

// NewParallel returns a parallel engine.
func NewParallel(cfg ParallelConfig) *Parallel {
	if cfg.Mode == "" {
		cfg.Mode = ModeAuto
	}
	if cfg.MinTxs <= 0 {
		cfg.MinTxs = DefaultMinParallelTxs
	}
	p := &Parallel{cfg: cfg}
	if !cfg.NoInference {
		p.pred = newPredictor(cfg.PredictorEntries)
	}
	return p
}

// Stats returns the engine's cumulative counters.
func (p *Parallel) Stats() ParallelStats {
	return ParallelStats{
		Requests: p.requests.Load(), ParallelRequests: p.parallelRequests.Load(), SequentialRequests: p.sequentialRequests.Load(),
		Txs: p.txs.Load(), Executions: p.executions.Load(), ReExecutions: p.reExecutions.Load(), Waits: p.waits.Load(),
		Aborts: p.aborts.Load(), Fallbacks: p.fallbacks.Load(), SerialRequests: p.serialRequests.Load(),
		CostlierRequests: p.costlier.Load(),
	}
}

// LastFallbackError is the error of the last request Block-STM gave up on, if any.
func (p *Parallel) LastFallbackError() error {
	if e := p.lastErr.Load(); e != nil {
		return *e
	}
	return nil
}

// parallelizable reports whether Block-STM may run req. Beyond the mode and
// size, the block gas pool must be unable to refuse any transaction: the
// sequential engine refuses a transaction whose gas limit exceeds what the
// accepted ones left, which depends on every earlier transaction's gas used.
// When the gas limits of all transactions fit what the block has left, no
// transaction can be refused for gas, in any order of execution.
func (p *Parallel) parallelizable(env *Env, req *Request) bool {
	switch {
	case p.cfg.Mode == ModeSequential:
		return false
	case p.cfg.Mode == ModeAuto && len(req.Txs) < p.cfg.MinTxs:
		return false
	case len(req.Txs) == 0:
		return false
	}
	avail := env.Block.GasLimit - req.GasUsed
	var sum uint64
	for _, tx := range req.Txs {
		g := tx.gas()
		if sum+g < sum || sum+g > avail {
			return false
		}
		sum += g
	}
	return true
}

// Execute implements Executor.
func (p *Parallel) Execute(ctx context.Context, r state.Reader, env *Env, req *Request) (*Result, error) {
	p.requests.Add(1)
	if env.Block.GasLimit < req.GasUsed {
		return nil, fmt.Errorf("block gas used %d above limit %d", req.GasUsed, env.Block.GasLimit)
	}
	if !p.parallelizable(env, req) {
		p.sequentialRequests.Add(1)
		return Sequential{}.Execute(ctx, r, env, req)
	}
	n := len(req.Txs)
	auto := p.cfg.Mode == ModeAuto
	if auto && !p.cost.choose(n) {
		p.sequentialRequests.Add(1)
		p.costlier.Add(1)
		return p.timedSequential(ctx, r, env, req, true)
	}
	start := time.Now()
	res, err := p.run(ctx, r, env, req)
	if err == nil {
		if auto {
			p.cost.record(n, true, time.Since(start))
		}
		p.parallelRequests.Add(1)
		return res, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err == errPredictedSerial {
		p.serialRequests.Add(1)
		p.sequentialRequests.Add(1)
		return p.timedSequential(ctx, r, env, req, auto)
	}
	var sys *systemCallError
	if errors.As(err, &sys) {
		return nil, sys.err
	}
	// An internal failure of the parallel machinery: the sequential engine
	// is the reference, so the request still gets its exact answer.
	p.fallbacks.Add(1)
	p.lastErr.Store(&err)
	p.sequentialRequests.Add(1)
	return Sequential{}.Execute(ctx, r, env, req)
}

// timedSequential runs a request on the sequential engine, feeding its time
// to the cost model when record is set.
func (p *Parallel) timedSequential(ctx context.Context, r state.Reader, env *Env, req *Request, record bool) (*Result, error) {
	start := time.Now()
	res, err := Sequential{}.Execute(ctx, r, env, req)
	if err == nil && record {
		p.cost.record(len(req.Txs), false, time.Since(start))
	}
	return res, err
}

// A request whose longest chain of predicted dependencies covers at least
// serialChainNum/serialChainDen of its transactions runs sequentially in
// ModeAuto: Block-STM would run the chain one transaction at a time, and its
// overhead (about a third more work per transaction) would make it slower.
const (
	serialChainNum = 3
	serialChainDen = 5
)

var errPredictedSerial = errors.New("exec: predicted serial request")

// systemCallError is an error of the block-start system calls, which the
// sequential engine returns as the request's error too.
type systemCallError struct{ err error }

func (e *systemCallError) Error() string { return e.err.Error() }

// txOutput is what one transaction's final incarnation produced.
type txOutput struct {
	err     error // the transaction was refused (no effect on the state)
	status  uint64
	gasUsed uint64
	logs    []*types.Log
}

// worker is an interpreter and a StateDB, reused across tasks.
type worker struct {
	ts  *txState
	evm *vm.EVM
}

// parRun is one request executed by Block-STM.
type parRun struct {
	p        *Parallel
	env      *Env
	req      *Request
	base     *base
	blockCtx vm.BlockContext
	rules    params.Rules
	avail    uint64
	sys      bool // task 0 runs the block-start system calls
	off      int  // index of the first transaction's task
	waitFor  [][]blockstm.Key
	workers  sync.Pool
	// outs[task] is the output of the task's running incarnation: a task
	// runs one incarnation at a time, and only the final one is kept.
	outs []txOutput
	ran  []atomic.Bool // the task's transaction reached the interpreter once

	executions, reExecutions, waits atomic.Uint64
}

func (pr *parRun) newWorker() *worker {
	ts := newTxState(pr.base)
	return &worker{ts: ts, evm: vm.NewEVM(pr.blockCtx, ts, pr.env.Config, vm.Config{})}
}

func (p *Parallel) run(ctx context.Context, r state.Reader, env *Env, req *Request) (*Result, error) {
	pr := &parRun{
		p: p, env: env, req: req,
		base:     &base{r: r, lazy: req.Lazy},
		blockCtx: BlockContext(env),
		avail:    env.Block.GasLimit - req.GasUsed,
		sys:      req.BeaconRoot || req.ParentHash != nil,
	}
	if req.ParentHash != nil {
		// As in SystemCalls: the slot is written by the system call, and
		// reads of it no longer wait.
		pr.base.lazy = nil
	}
	pr.rules = env.Config.Rules(pr.blockCtx.BlockNumber, pr.blockCtx.Random != nil, pr.blockCtx.Time)
	if pr.sys {
		pr.off = 1
	}
	pr.workers.New = func() any { return pr.newWorker() }
	n := len(req.Txs) + pr.off
	pr.outs = make([]txOutput, n)
	pr.ran = make([]atomic.Bool, n)

	opts := blockstm.Options{
		Workers: p.cfg.Workers,
		Ops:     blockstm.Ops{Fold: foldBalance, Equal: equalValues, Base: pr.base.value, Owner: diffOwner},
	}
	if p.pred != nil {
		var chain int
		opts.Predicted, pr.waitFor, chain = p.pred.predict(req.Txs, pr.off, env.Block.Coinbase)
		if p.cfg.Mode == ModeAuto && chain*serialChainDen >= len(req.Txs)*serialChainNum {
			// Most transactions are predicted to depend on each other in one
			// chain: Block-STM would run them one at a time at a cost.
			return nil, errPredictedSerial
		}
	}
	workers := p.cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, n))
	opts.Workers = workers
	out, err := blockstm.RunWithOptions(ctx, n, pr, opts)
	if err != nil {
		return nil, err
	}
	if p.pred != nil {
		p.pred.learn(req.Txs, out.Txs[pr.off:])
	}
	p.txs.Add(uint64(len(req.Txs)))
	p.executions.Add(pr.executions.Load())
	p.reExecutions.Add(pr.reExecutions.Load())
	p.waits.Add(pr.waits.Load())
	p.aborts.Add(uint64(out.Stats.Aborts))

	res := &Result{GasUsed: req.GasUsed}
	for i, tr := range out.Txs[pr.off:] {
		o := tr.Output.(*txOutput)
		tx := req.Txs[i]
		if o.err != nil {
			res.Rejected = append(res.Rejected, Rejection{Tx: tx, Err: o.err, Retry: errors.Is(o.err, core.ErrGasLimitReached)})
			continue
		}
		res.GasUsed += o.gasUsed
		res.Txs = append(res.Txs, tx)
		res.Receipts = append(res.Receipts, &chain.Receipt{Status: o.status, CumulativeGasUsed: res.GasUsed, GasUsed: o.gasUsed, Logs: o.logs})
	}
	res.Diff = pr.diff(out.MV, n, workers)
	return res, nil
}

// Execute implements blockstm.Executor: task 0 may be the system calls, the
// others are transactions.
func (pr *parRun) Execute(task, incarnation int, view *blockstm.TxView) (res blockstm.ExecResult, err error) {
	if task >= pr.off && pr.waitFor != nil {
		for _, k := range pr.waitFor[task-pr.off] {
			if err := view.WaitFor(k); err != nil {
				pr.waits.Add(1)
				return res, err
			}
		}
	}
	w := pr.workers.Get().(*worker)
	w.ts.reset(view)
	defer func() {
		if r := recover(); r != nil {
			// The interpreter was unwound mid-call: start the next task on a
			// fresh one.
			w = nil
			if d, ok := r.(dependencyAbort); ok {
				err = d.err
				return
			}
			err = fmt.Errorf("exec: panic in task %d: %v\n%s", task, r, debug.Stack())
		}
		if w != nil {
			w.ts.reset(nil)
			pr.workers.Put(w)
		}
	}()
	if task < pr.off {
		if err := pr.systemCalls(w); err != nil {
			return res, &systemCallError{err}
		}
		w.ts.collect(view)
		return blockstm.ExecResult{Output: &pr.outs[task]}, nil
	}
	pr.executions.Add(1)
	if pr.ran[task].Swap(true) {
		pr.reExecutions.Add(1)
	}
	out := &pr.outs[task]
	pr.applyTx(w, pr.req.Txs[task-pr.off], out)
	w.ts.collect(view)
	return blockstm.ExecResult{Output: out}, nil
}

func (pr *parRun) systemCalls(w *worker) error {
	if pr.req.BeaconRoot {
		core.ProcessBeaconBlockRoot(common.Hash{}, w.evm)
	}
	if pr.req.ParentHash != nil {
		if w.ts.GetCodeSize(params.HistoryStorageAddress) == 0 {
			return errors.New("EIP-2935 history contract missing from state")
		}
		core.ProcessParentBlockHash(*pr.req.ParentHash, w.evm)
	}
	return nil
}

// applyTx applies a transaction on the task's StateDB, with a gas pool of
// everything the block has left (see parallelizable).
func (pr *parRun) applyTx(w *worker, tx Tx, out *txOutput) {
	receipt, err := applyTx(w.evm, w.ts, core.NewGasPool(pr.avail), tx, pr.env.Block.BaseFee, 0, pr.env.TouchCoinbase)
	if err != nil {
		*out = txOutput{err: err}
		return
	}
	*out = txOutput{status: receipt.Status, gasUsed: receipt.GasUsed, logs: receipt.Logs}
}

var (
	emptyCode = codeValue{hash: types.EmptyCodeHash}
	destroyed = struct{}{}
)

// collect writes what the task changed into its view: per account, only the
// locations whose value differs from what the task started with, and blind
// balance additions as deltas.
func (s *txState) collect(view *blockstm.TxView) {
	for _, a := range s.order {
		addr := a.addr
		if !a.existRead {
			continue
		}
		o := a.obj
		if o == nil {
			if a.existed || a.destroyedHere {
				view.Write(accountKey(kindDestroyed, addr), destroyed)
				view.Write(accountKey(kindExist, addr), false)
				view.Write(accountKey(kindNonce, addr), uint64(0))
				view.Write(accountKey(kindBalance, addr), uint256.Int{})
				view.Write(accountKey(kindCode, addr), emptyCode)
			}
			continue
		}
		if a.destroyedHere || !a.existed {
			// Created by the task over a missing account (or one it deleted):
			// every location starts from the empty account.
			if a.destroyedHere {
				view.Write(accountKey(kindDestroyed, addr), destroyed)
			}
			view.Write(accountKey(kindExist, addr), true)
			if a.destroyedHere || o.nonce != 0 {
				view.Write(accountKey(kindNonce, addr), o.nonce)
			}
			if a.destroyedHere || !o.bal.IsZero() {
				view.Write(accountKey(kindBalance, addr), o.bal)
			}
			if a.destroyedHere || o.codeHash != types.EmptyCodeHash {
				view.Write(accountKey(kindCode, addr), codeValue{hash: o.codeHash, code: o.code})
			}
			for k, sl := range o.storage {
				if sl.cur != (common.Hash{}) || (!o.fresh && sl.cur != s.storageStart(a, k)) {
					view.Write(storageKey(addr, k), sl.cur)
				}
			}
			continue
		}
		if o.nonceKnown && o.nonce != a.nonce0 {
			view.Write(accountKey(kindNonce, addr), o.nonce)
		}
		switch {
		case o.balKnown:
			if o.bal != a.bal0 {
				view.Write(accountKey(kindBalance, addr), o.bal)
			}
		case !a.pendAdd.IsZero():
			view.WriteDelta(accountKey(kindBalance, addr), a.pendAdd)
		}
		if o.codeKnown && o.codeHash != a.code0 {
			view.Write(accountKey(kindCode, addr), codeValue{hash: o.codeHash, code: o.code})
		}
		for k, sl := range o.storage {
			if o.fresh {
				if sl.cur != (common.Hash{}) {
					view.Write(storageKey(addr, k), sl.cur)
				}
			} else if sl.cur != s.storageStart(a, k) {
				view.Write(storageKey(addr, k), sl.cur)
			}
		}
	}
}

// finalAccount is an account's state after the request, gathered from the
// final versions of its locations in the multi-version memory.
type finalAccount struct {
	hasExist, exist bool
	hasNonce        bool
	nonce           uint64
	hasBal          bool
	bal             uint256.Int
	hasCode         bool
	code            codeValue
	destroyed       bool
	destroyedAt     int
}

type finalSlot struct {
	key   common.Hash
	value common.Hash
	at    int // writer's task index
}

// diffOwner spreads the written locations between the diff's workers: an
// account's fields by address (one worker gathers them), storage slots by
// address and slot (a contract with many written slots is shared).
func diffOwner(k *blockstm.Key) int {
	h := int(k.Addr[19]) | int(k.Addr[18])<<8
	if k.Kind == kindStorage {
		h ^= int(k.Slot[31])<<4 | int(k.Slot[30])<<12
	}
	return h
}

// slotDiff is a changed slot of an account.
type slotDiff struct {
	addr common.Address
	chain.SlotDiff
}

func compareSlotDiffs(a, b slotDiff) int {
	if c := bytes.Compare(a.addr[:], b.addr[:]); c != 0 {
		return c
	}
	return bytes.Compare(a.Key[:], b.Key[:])
}

// accountEntry is an account's diff entry before its storage is attached.
type accountEntry struct {
	chain.AccountDiff
	changed bool // fields changed (or the account was created or reset)
}

// diff is the request's state diff, built exactly as state.StateDB.Diff
// builds the sequential engine's, from the final version of every written
// location. Workers gather accounts (by address) and storage slots (by
// address and slot) in parallel, each sorts what it produced, and one merge
// puts the account entries and their slots together in order.
func (pr *parRun) diff(mv *blockstm.MVMemory, tasks, workers int) *chain.StateDiff {
	type part struct {
		index map[common.Address]int32
		accts []finalAccount
		addrs []common.Address
		slots []finalSlotOf
		out   []accountEntry
		kept  []slotDiff
	}
	expect := mv.Cells()/(2*workers) + 16
	parts := make([]part, workers)
	for i := range parts {
		parts[i] = part{index: make(map[common.Address]int32, expect), accts: make([]finalAccount, 0, expect), addrs: make([]common.Address, 0, expect)}
	}
	mv.Final(workers, func(w int, k *blockstm.Key, versions blockstm.Versions) {
		pt := &parts[w]
		last := versions.At(versions.Len() - 1)
		if k.Kind == kindStorage {
			pt.slots = append(pt.slots, finalSlotOf{addr: k.Addr, finalSlot: finalSlot{key: k.Slot, value: last.Value.(common.Hash), at: last.Version.TxIndex}})
			return
		}
		i, ok := pt.index[k.Addr]
		if !ok {
			i = int32(len(pt.accts))
			pt.index[k.Addr] = i
			pt.accts = append(pt.accts, finalAccount{destroyedAt: -1})
			pt.addrs = append(pt.addrs, k.Addr)
		}
		f := &pt.accts[i]
		switch k.Kind {
		case kindExist:
			f.hasExist, f.exist = true, last.Value.(bool)
		case kindNonce:
			f.hasNonce, f.nonce = true, last.Value.(uint64)
		case kindBalance:
			f.hasBal, f.bal = true, pr.finalBalance(k, versions)
		case kindCode:
			f.hasCode, f.code = true, last.Value.(codeValue)
		case kindDestroyed:
			f.destroyed, f.destroyedAt = true, last.Version.TxIndex
		}
	})
	r := pr.base.r
	var wg sync.WaitGroup
	for w := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pt := &parts[w]
			pt.out = make([]accountEntry, 0, len(pt.accts))
			for i := range pt.accts {
				if e, ok := pr.accountEntry(pt.addrs[i], &pt.accts[i]); ok {
					pt.out = append(pt.out, e)
				}
			}
			slices.SortFunc(pt.out, func(a, b accountEntry) int { return bytes.Compare(a.Address[:], b.Address[:]) })
			for _, sl := range pt.slots {
				// Storage written before the account's last deletion is gone.
				destroyedAt := -1
				if _, ver, st := mv.Read(accountKey(kindDestroyed, sl.addr), tasks); st == blockstm.ReadOK {
					destroyedAt = ver.TxIndex
				}
				if sl.at < destroyedAt {
					continue
				}
				var orig common.Hash
				if destroyedAt < 0 {
					orig = r.Storage(sl.addr, sl.key)
				}
				if sl.value != orig {
					pt.kept = append(pt.kept, slotDiff{addr: sl.addr, SlotDiff: chain.SlotDiff{Key: sl.key, Value: sl.value}})
				}
			}
			slices.SortFunc(pt.kept, compareSlotDiffs)
		}()
	}
	wg.Wait()

	// Merge: accounts in address order, each with its slots in key order.
	total := 0
	for w := range parts {
		total += len(parts[w].out)
	}
	d := &chain.StateDiff{Accounts: make([]chain.AccountDiff, 0, total)}
	ah, sh := make([]int, workers), make([]int, workers)
	nextAccount := func() int {
		best := -1
		for w := range parts {
			if ah[w] < len(parts[w].out) && (best < 0 || bytes.Compare(parts[w].out[ah[w]].Address[:], parts[best].out[ah[best]].Address[:]) < 0) {
				best = w
			}
		}
		return best
	}
	nextSlot := func() int {
		best := -1
		for w := range parts {
			if sh[w] < len(parts[w].kept) && (best < 0 || compareSlotDiffs(parts[w].kept[sh[w]], parts[best].kept[sh[best]]) < 0) {
				best = w
			}
		}
		return best
	}
	for {
		aw, sw := nextAccount(), nextSlot()
		if aw < 0 && sw < 0 {
			break
		}
		var e accountEntry
		switch {
		case aw >= 0 && (sw < 0 || bytes.Compare(parts[aw].out[ah[aw]].Address[:], parts[sw].kept[sh[sw]].addr[:]) <= 0):
			e = parts[aw].out[ah[aw]]
			ah[aw]++
		default:
			// Only slots changed: the account's fields are as before.
			// (An account with no entry that did not exist before does not
			// exist now: its slots are dropped with it, as Deleted drops them.)
			addr := parts[sw].kept[sh[sw]].addr
			acct, existed := r.Account(addr)
			e = accountEntry{AccountDiff: chain.AccountDiff{Address: addr, Deleted: !existed, Nonce: acct.Nonce, Balance: acct.Balance, CodeHash: acct.CodeHash}}
		}
		for {
			w := nextSlot()
			if w < 0 || parts[w].kept[sh[w]].addr != e.Address {
				break
			}
			if !e.Deleted {
				e.Storage = append(e.Storage, parts[w].kept[sh[w]].SlotDiff)
			}
			sh[w]++
		}
		if e.changed || (len(e.Storage) > 0 && !e.Deleted) {
			d.Accounts = append(d.Accounts, e.AccountDiff)
		}
	}
	return d
}

// finalSlotOf is a written slot with its account.
type finalSlotOf struct {
	addr common.Address
	finalSlot
}

// finalBalance folds a balance's versions: the last full value (or the
// pre-request balance) plus every delta above it.
func (pr *parRun) finalBalance(k *blockstm.Key, versions blockstm.Versions) uint256.Int {
	i := versions.Len() - 1
	for i >= 0 && versions.At(i).Delta {
		i--
	}
	var bal uint256.Int
	if i >= 0 {
		bal = versions.At(i).Value.(uint256.Int)
	} else {
		bal = pr.base.value(*k).(uint256.Int)
	}
	for j := i + 1; j < versions.Len(); j++ {
		d := versions.At(j).Value.(uint256.Int)
		bal.Add(&bal, &d)
	}
	return bal
}

// accountEntry is one account's entry of the diff without its storage, and
// whether the account has one at all (not when it neither existed nor exists).
func (pr *parRun) accountEntry(addr common.Address, f *finalAccount) (accountEntry, bool) {
	r := pr.base.r
	before, existed := r.Account(addr)
	if !existed {
		before.CodeHash = types.EmptyCodeHash
	}
	exists := existed
	if f.hasExist {
		exists = f.exist
	}
	if !exists {
		if existed {
			return accountEntry{AccountDiff: chain.AccountDiff{Address: addr, Deleted: true, StorageReset: true}, changed: true}, true
		}
		return accountEntry{}, false
	}
	now := before
	if f.hasNonce {
		now.Nonce = f.nonce
	}
	if f.hasBal {
		now.Balance = f.bal
	}
	if f.hasCode {
		now.CodeHash = f.code.hash
	}
	reset := f.destroyed && existed
	ad := chain.AccountDiff{Address: addr, StorageReset: reset, Nonce: now.Nonce, Balance: now.Balance, CodeHash: now.CodeHash}
	if now.CodeHash != before.CodeHash {
		if f.hasCode && f.code.hash == now.CodeHash {
			ad.Code = f.code.code
		} else {
			ad.Code = r.Code(now.CodeHash)
		}
		if ad.Code == nil {
			ad.Code = []byte{}
		}
	}
	return accountEntry{AccountDiff: ad, changed: reset || !existed || before != now}, true
}

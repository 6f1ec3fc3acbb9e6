package exec

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"

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
	// ModeAuto runs requests in parallel unless parallelism cannot help
	// (fewer than MinTxs transactions).
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
}

// Parallel is the Block-STM engine over go-ethereum's interpreter. It gives
// the same results as Sequential, byte for byte, on any request. The Reader
// passed to Execute must be safe for concurrent use (state.View is).
type Parallel struct {
	cfg  ParallelConfig
	pred *predictor

	requests, parallelRequests, sequentialRequests atomic.Uint64
	txs, executions, reExecutions, waits           atomic.Uint64
	aborts, fallbacks                              atomic.Uint64
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
		Aborts: p.aborts.Load(), Fallbacks: p.fallbacks.Load(),
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
	res, err := p.run(ctx, r, env, req)
	if err == nil {
		p.parallelRequests.Add(1)
		return res, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
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

	opts := blockstm.Options{
		Workers: p.cfg.Workers,
		Ops:     blockstm.Ops{Fold: foldBalance, Equal: equalValues, Base: pr.base.value},
	}
	if p.pred != nil {
		opts.Predicted, pr.waitFor = p.pred.predict(req.Txs, pr.off, env.Block.Coinbase)
	}
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
	res.Diff = pr.diff(out.Txs)
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
		return blockstm.ExecResult{Output: &txOutput{}}, nil
	}
	pr.executions.Add(1)
	if incarnation > 0 {
		pr.reExecutions.Add(1)
	}
	tx := pr.req.Txs[task-pr.off]
	out := pr.applyTx(w, tx)
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
func (pr *parRun) applyTx(w *worker, tx Tx) *txOutput {
	receipt, err := applyTx(w.evm, w.ts, core.NewGasPool(pr.avail), tx, pr.env.Block.BaseFee, 0, pr.env.TouchCoinbase)
	if err != nil {
		return &txOutput{err: err}
	}
	return &txOutput{status: receipt.Status, gasUsed: receipt.GasUsed, logs: receipt.Logs}
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

// finalAccount is an account's state after the request, from the writes of
// every task in order.
type finalAccount struct {
	hasExist, exist bool
	hasNonce        bool
	nonce           uint64
	hasBal          bool
	bal             uint256.Int
	hasCode         bool
	code            codeValue
	destroyed       bool
	storage         map[common.Hash]common.Hash
}

// diff is the request's state diff, built exactly as state.StateDB.Diff
// builds the sequential engine's.
func (pr *parRun) diff(txs []blockstm.TxResult) *chain.StateDiff {
	accts := make(map[common.Address]*finalAccount)
	get := func(addr common.Address) *finalAccount {
		f := accts[addr]
		if f == nil {
			f = &finalAccount{}
			accts[addr] = f
		}
		return f
	}
	for i := range txs {
		for _, w := range txs[i].Writes {
			f := get(w.Key.Addr)
			switch w.Key.Kind {
			case kindExist:
				f.hasExist, f.exist = true, w.Value.(bool)
			case kindNonce:
				f.hasNonce, f.nonce = true, w.Value.(uint64)
			case kindBalance:
				v := w.Value.(uint256.Int)
				if !w.Delta {
					f.hasBal, f.bal = true, v
					break
				}
				if !f.hasBal {
					f.hasBal, f.bal = true, pr.base.value(w.Key).(uint256.Int)
				}
				f.bal.Add(&f.bal, &v)
			case kindCode:
				f.hasCode, f.code = true, w.Value.(codeValue)
			case kindDestroyed:
				f.destroyed = true
				clear(f.storage)
			case kindStorage:
				if f.storage == nil {
					f.storage = make(map[common.Hash]common.Hash)
				}
				f.storage[common.Hash(w.Key.Slot)] = w.Value.(common.Hash)
			}
		}
	}
	d := &chain.StateDiff{}
	r := pr.base.r
	for addr, f := range accts {
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
				d.Accounts = append(d.Accounts, chain.AccountDiff{Address: addr, Deleted: true, StorageReset: true})
			}
			continue
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
		changed := reset || !existed || before != now
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
		for k, v := range f.storage {
			var orig common.Hash
			if !f.destroyed {
				orig = r.Storage(addr, k)
			}
			if v != orig {
				ad.Storage = append(ad.Storage, chain.SlotDiff{Key: k, Value: v})
			}
		}
		if changed || len(ad.Storage) > 0 {
			d.Accounts = append(d.Accounts, ad)
		}
	}
	d.Sort()
	return d
}

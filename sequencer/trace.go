package sequencer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/tracers"
	"github.com/ethereum/go-ethereum/eth/tracers/logger"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"

	// The native tracers (callTracer, prestateTracer, ...) register themselves
	// in tracers.DefaultDirectory. JavaScript tracers are left out on purpose.
	_ "github.com/ethereum/go-ethereum/eth/tracers/native"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/exec"
	"github.com/kestrel-l2/kestrel/core/state"
	"github.com/kestrel-l2/kestrel/rpc"
	"github.com/kestrel-l2/kestrel/store"
)

var (
	_ rpc.Tracer     = (*backend)(nil)
	_ rpc.CallTracer = (*backend)(nil)
)

// TraceTransaction implements rpc.Tracer. It rebuilds the state the transaction
// saw: the parent block's state (from the Merkle tries, as long as its root is
// retained), then the block's mini-blocks up to the transaction's as the loop ran
// them (the EIP-4788 and EIP-2935 system calls where the mini-blocks record them,
// the EIP-2935 slot served lazily before that, then the transactions), each
// replayed receipt checked against the stored one. The transaction itself runs
// with the tracer attached, as go-ethereum's traceTx does.
func (b *backend) TraceTransaction(ctx context.Context, hash common.Hash, cfg *rpc.TraceConfig) (json.RawMessage, error) {
	s := b.s
	if cfg == nil {
		cfg = new(rpc.TraceConfig)
	}
	n, idx, found, err := s.locate(hash)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, rpc.ErrTxNotFound
	}
	if n == 0 {
		return nil, errors.New("genesis is not traceable")
	}
	st := s.store
	if st == nil {
		return nil, errors.New("store closed")
	}
	mini, pos, err := st.TxLocation(hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, rpc.ErrTxNotFound
	}
	if err != nil {
		return nil, err
	}
	target, err := st.MiniBlock(mini)
	if err != nil {
		return nil, err
	}
	if target.Env.Number != n || int(pos) >= len(target.Txs) || target.Txs[pos].Hash() != hash || uint64(target.IndexInBlock) >= mini {
		return nil, fmt.Errorf("transaction %s: index points at mini-block %d position %d of block %d, expected block %d", hash, mini, pos, target.Env.Number, n)
	}
	r, err := s.startReplay(ctx, target.Env)
	if err != nil {
		return nil, err
	}
	defer r.release()
	first := mini - uint64(target.IndexInBlock)
	for i := first; i <= mini; i++ {
		mb := target
		if i != mini {
			if mb, err = r.miniBlock(ctx, i); err != nil {
				return nil, err
			}
		}
		if err := r.systemCalls(i, mb); err != nil {
			return nil, err
		}
		end := len(mb.Txs)
		if i == mini {
			end = int(pos)
		}
		for j := 0; j < end; j++ {
			if err := r.apply(mb, j); err != nil {
				return nil, err
			}
		}
	}
	if r.txIndex != idx {
		return nil, fmt.Errorf("transaction %s: replayed %d transactions before it, index says %d", hash, r.txIndex, idx)
	}
	return r.trace(ctx, cfg, target, int(pos))
}

// TraceBlock implements rpc.BlockTracer: every transaction of a sealed block
// traced in order on the state the ones before it left, as go-ethereum's
// traceBlock.
func (b *backend) TraceBlock(ctx context.Context, ref rpc.BlockRef, cfg *rpc.TraceConfig) ([]rpc.TxTraceResult, error) {
	s := b.s
	if cfg == nil {
		cfg = new(rpc.TraceConfig)
	}
	n, pending, err := s.resolve(ref)
	if err != nil {
		return nil, err
	}
	if pending {
		return nil, errors.New("tracing the pending block is not supported")
	}
	if n == 0 {
		return nil, errors.New("genesis is not traceable")
	}
	sb, err := s.sealedBlock(n)
	if err != nil {
		return nil, err
	}
	out := make([]rpc.TxTraceResult, 0, len(sb.txs))
	if sb.lastMini == 0 {
		return out, nil
	}
	r, err := s.startReplay(ctx, envOf(sb.header))
	if err != nil {
		return nil, err
	}
	defer r.release()
	for i := sb.firstMini; i <= sb.lastMini; i++ {
		mb, err := r.miniBlock(ctx, i)
		if err != nil {
			return nil, err
		}
		if err := r.systemCalls(i, mb); err != nil {
			return nil, err
		}
		for j := range mb.Txs {
			res, err := r.trace(ctx, cfg, mb, j)
			if err != nil {
				return nil, err
			}
			out = append(out, rpc.TxTraceResult{TxHash: mb.Txs[j].Hash(), Result: res})
		}
	}
	return out, nil
}

// TraceCall implements rpc.CallTracer as go-ethereum's API.TraceCall: the call
// runs on the state at the end of the block (as eth_call's), or with
// cfg.TxIndex on the state before that transaction (the block replayed up to
// it as for TraceTransaction), in the block's context, with the block
// overrides (and the parent-hash fix for a number overridden to n+1) and the
// state overrides applied, traced with an empty tracers.Context.
func (b *backend) TraceCall(ctx context.Context, ref rpc.BlockRef, cfg *rpc.TraceCallConfig, build rpc.CallBuilder) (json.RawMessage, error) {
	s := b.s
	if cfg == nil {
		cfg = new(rpc.TraceCallConfig)
	}
	if ref.Tag == rpc.TagPending {
		return nil, errors.New("tracing on top of pending is not supported")
	}
	var (
		sdb      *state.StateDB
		blockCtx vm.BlockContext
		number   uint64
		logBase  uint // logs of the block before the call: go-ethereum's StateDB keeps counting
	)
	if cfg.TxIndex != nil {
		n, _, err := s.resolve(ref)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, errors.New("no transaction in genesis")
		}
		sb, err := s.sealedBlock(n)
		if err != nil {
			return nil, err
		}
		r, err := s.startReplay(ctx, envOf(sb.header))
		if err != nil {
			return nil, err
		}
		defer r.release()
		if err := r.replayTo(ctx, sb, int(*cfg.TxIndex)); err != nil {
			return nil, err
		}
		sdb, blockCtx, number, logBase = r.sdb, r.blockCtx, r.env.Number, r.logs
	} else {
		ce, err := s.callEnv(ref)
		if err != nil {
			return nil, err
		}
		defer ce.release()
		sdb, blockCtx, number = ce.stateDB(), exec.BlockContext(s.execEnv(ce.env)), ce.env.Number
	}
	// As go-ethereum's GetHashFn: no hash for the block itself or later ones,
	// unless the number is overridden to the next block's, which then sees its
	// parent's hash. (go-ethereum compares the number's low 64 bits.)
	limit := number
	bo := cfg.BlockOverrides
	if bo != nil && bo.Number != nil && bo.Number.ToInt().Uint64() == number+1 {
		limit = number + 1
	}
	getHash := blockCtx.GetHash
	blockCtx.GetHash = func(n uint64) common.Hash {
		if n >= limit {
			return common.Hash{}
		}
		return getHash(n)
	}
	if err := bo.Apply(&blockCtx); err != nil {
		return nil, err
	}
	rules := s.chainCf.Rules(blockCtx.BlockNumber, blockCtx.Random != nil, blockCtx.Time)
	precompiles := vm.ActivePrecompiledContracts(rules)
	if err := cfg.StateOverrides.Apply(overrideState{sdb}, precompiles); err != nil {
		return nil, err
	}
	m, tx, err := build(blockCtx.BaseFee)
	if err != nil {
		return nil, err
	}
	msg := message(m, m.Gas)
	// Lower the base fee to 0 to avoid breaking EVM invariants (basefee < feecap).
	if msg.GasPrice.Sign() == 0 {
		blockCtx.BaseFee = new(big.Int)
	}
	if msg.BlobGasFeeCap != nil && msg.BlobGasFeeCap.BitLen() == 0 {
		blockCtx.BlobBaseFee = new(big.Int)
	}
	return s.traceTx(ctx, &txTrace{cfg: &cfg.TraceConfig, tx: tx, sender: msg.From, msg: msg, precompiles: precompiles,
		sdb: sdb, blockCtx: blockCtx, txctx: new(tracers.Context), logBase: logBase})
}

// replayTo replays the sealed block sb up to its transaction idx: the state is
// then the one that transaction saw (the system calls of its mini-block
// included). Index 0 of a block without transactions is the state after the
// system calls; other indexes past the block's transactions are go-ethereum's
// "out of range" error.
func (r *blockReplay) replayTo(ctx context.Context, sb *sealed, idx int) error {
	if idx >= len(sb.txs) && (idx != 0 || len(sb.txs) != 0) {
		return fmt.Errorf("transaction index %d out of range for block %#x", idx, sb.hash)
	}
	if sb.lastMini == 0 {
		return nil
	}
	for i := sb.firstMini; i <= sb.lastMini; i++ {
		mb, err := r.miniBlock(ctx, i)
		if err != nil {
			return err
		}
		if err := r.systemCalls(i, mb); err != nil {
			return err
		}
		for j := range mb.Txs {
			if r.txIndex == idx {
				return nil
			}
			if err := r.apply(mb, j); err != nil {
				return err
			}
		}
	}
	if r.txIndex != idx {
		return fmt.Errorf("block %d: replayed %d transactions, wanted %d", r.env.Number, r.txIndex, idx)
	}
	return nil
}

// blockReplay re-executes a block from its parent's state: the system calls
// where its mini-blocks record them (the EIP-4788 and EIP-2935 calls; the
// EIP-2935 slot served lazily before that), then its transactions, each
// replayed receipt checked against the stored one.
type blockReplay struct {
	s          *Sequencer
	env        chain.BlockEnv
	blockHash  common.Hash // zero while the block is open
	sdb        *state.StateDB
	blockCtx   vm.BlockContext
	evm        *vm.EVM
	gp         *core.GasPool
	cumulative uint64 // block gas used so far
	logs       uint   // block logs so far
	txIndex    int    // transactions replayed so far
	release    func()
}

// startReplay opens block env.Number's parent state; an open block's parent may
// still be sealing, its state root comes soon.
func (s *Sequencer) startReplay(ctx context.Context, env chain.BlockEnv) (*blockReplay, error) {
	n := env.Number
	r := &blockReplay{s: s, env: env}
	if n <= s.index.headNumber() {
		var err error
		if _, r.blockHash, err = (&backend{s}).HeaderByRef(ctx, rpc.BlockRef{Tag: rpc.TagNumber, Number: n}); err != nil {
			return nil, err
		}
	}
	if err := s.waitHead(ctx, n-1); err != nil {
		return nil, err
	}
	reader, _, release, err := s.reader(rpc.BlockRef{Tag: rpc.TagNumber, Number: n - 1})
	if err != nil {
		return nil, err
	}
	r.release = release
	r.blockCtx = exec.BlockContext(s.execEnv(env))
	r.sdb = state.NewStateDB(reader)
	r.sdb.SetLazySlot(parentSlot(n, func() common.Hash { return s.getHash(n - 1) }))
	r.evm = vm.NewEVM(r.blockCtx, r.sdb, s.chainCf, vm.Config{})
	r.gp = core.NewGasPool(env.GasLimit)
	return r, nil
}

// miniBlock reads mini-block i of the block being replayed.
func (r *blockReplay) miniBlock(ctx context.Context, i uint64) (*chain.MiniBlock, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st := r.s.store
	if st == nil {
		return nil, errors.New("store closed")
	}
	mb, err := st.MiniBlock(i)
	if err != nil {
		return nil, err
	}
	if mb.Env.Number != r.env.Number {
		return nil, fmt.Errorf("mini-block %d belongs to block %d, expected %d", i, mb.Env.Number, r.env.Number)
	}
	if len(mb.Senders) < len(mb.Txs) || len(mb.Receipts) < len(mb.Txs) {
		return nil, fmt.Errorf("mini-block %d: %d transactions, %d senders, %d receipts", i, len(mb.Txs), len(mb.Senders), len(mb.Receipts))
	}
	return mb, nil
}

// systemCalls runs the system calls mini-block i records before its transactions.
func (r *blockReplay) systemCalls(i uint64, mb *chain.MiniBlock) error {
	req := &exec.Request{BeaconRoot: mb.BeaconRootCall}
	if mb.ParentHashCall {
		h := mb.ParentHash
		req.ParentHash = &h
	}
	if err := exec.SystemCalls(r.evm, r.sdb, req); err != nil {
		return fmt.Errorf("replay of mini-block %d: %w", i, err)
	}
	return nil
}

// apply replays transaction j of mb without a tracer.
func (r *blockReplay) apply(mb *chain.MiniBlock, j int) error {
	rcpt, err := exec.ApplyTx(r.evm, r.sdb, r.gp, exec.Tx{Tx: mb.Txs[j], Sender: mb.Senders[j]}, r.env.BaseFee, r.cumulative)
	if err != nil {
		return fmt.Errorf("replay of transaction %d of block %d: %w", r.txIndex, r.env.Number, err)
	}
	if want := mb.Receipts[j]; rcpt.GasUsed != want.GasUsed || rcpt.Status != want.Status {
		return fmt.Errorf("replay of transaction %d of block %d diverged: gas used %d status %d, receipt has %d status %d",
			r.txIndex, r.env.Number, rcpt.GasUsed, rcpt.Status, want.GasUsed, want.Status)
	}
	r.cumulative = rcpt.CumulativeGasUsed
	r.logs += uint(len(rcpt.Logs))
	r.txIndex++
	return nil
}

// trace runs transaction j of mb with the tracer cfg selects and moves past it.
func (r *blockReplay) trace(ctx context.Context, cfg *rpc.TraceConfig, mb *chain.MiniBlock, j int) (json.RawMessage, error) {
	tx := mb.Txs[j]
	tt := &txTrace{
		cfg: cfg, tx: tx, sender: mb.Senders[j], want: mb.Receipts[j], sdb: r.sdb, blockCtx: r.blockCtx,
		txctx: &tracers.Context{BlockHash: r.blockHash, BlockNumber: new(big.Int).SetUint64(r.env.Number), TxIndex: r.txIndex,
			TxHash: tx.Hash()},
		cumulative: r.cumulative, logBase: r.logs,
	}
	out, err := r.s.traceTx(ctx, tt)
	if err != nil {
		return nil, err
	}
	// traceTx checked the gas and status against the stored receipt.
	r.cumulative += mb.Receipts[j].GasUsed
	r.logs += uint(len(mb.Receipts[j].Logs))
	r.txIndex++
	return out, nil
}

// waitHead waits until block n is sealed.
func (s *Sequencer) waitHead(ctx context.Context, n uint64) error {
	c := s.index
	for {
		c.mu.RLock()
		head, ch := c.head, c.sealedCh
		c.mu.RUnlock()
		if head >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.stop:
			return errors.New("sequencer stopping")
		}
	}
}

// txTrace is the transaction to trace and the state it runs on.
type txTrace struct {
	cfg    *rpc.TraceConfig
	tx     *types.Transaction
	sender common.Address
	// msg, when set, is the message to run (a call's) instead of tx's.
	msg *core.Message
	// want is the stored receipt the traced execution must agree with; nil
	// for a call.
	want *chain.Receipt
	// precompiles, when set, is the EVM's precompile set (a call's, after
	// movePrecompileToAddress overrides).
	precompiles vm.PrecompiledContracts
	sdb         *state.StateDB
	blockCtx    vm.BlockContext
	txctx       *tracers.Context
	cumulative  uint64 // block gas used before the transaction
	logBase     uint   // logs of the block before the transaction
}

// traceTx runs the transaction with the tracer attached, as go-ethereum's
// API.traceTx does: the struct logger unless a tracer is named, a fresh EVM with
// NoBaseFee, the timeout stopping the tracer and cancelling the EVM. A panic in a
// tracer (some misbehave on odd configurations) becomes an error.
func (s *Sequencer) traceTx(ctx context.Context, t *txTrace) (out json.RawMessage, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("tracing failed: tracer panicked: %v", p)
		}
	}()
	var tracer *tracers.Tracer
	if t.cfg.Tracer == nil {
		l := logger.NewStructLogger(t.cfg.Config)
		tracer = &tracers.Tracer{Hooks: l.Hooks(), GetResult: l.GetResult, Stop: l.Stop}
	} else {
		if tracer, err = newTracer(*t.cfg.Tracer, t.txctx, t.cfg.TracerConfig, s.chainCf); err != nil {
			return nil, err
		}
	}
	timeout, err := t.cfg.TraceTimeout()
	if err != nil {
		return nil, err
	}
	hooked := &hookedState{StateDB: t.sdb, hooks: tracer.Hooks, txHash: t.txctx.TxHash, txIndex: uint(t.txctx.TxIndex),
		logIndex: t.logBase, snaps: make(map[int]uint)}
	if hooked.hooks == nil {
		hooked.hooks = new(tracing.Hooks)
	}
	evm := vm.NewEVM(t.blockCtx, hooked, s.chainCf, vm.Config{Tracer: tracer.Hooks, NoBaseFee: true})
	if t.precompiles != nil {
		evm.SetPrecompiles(t.precompiles)
	}
	deadline, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	go func() {
		<-deadline.Done()
		if errors.Is(deadline.Err(), context.DeadlineExceeded) {
			tracer.Stop(errors.New("execution timeout"))
			evm.Cancel()
		}
	}()

	msg := t.msg
	if msg == nil {
		msg = exec.Message(t.tx, t.sender, t.blockCtx.BaseFee)
	}
	receipt, err := s.applyTraced(evm, hooked, msg, t)
	if err != nil {
		return nil, fmt.Errorf("tracing failed: %w", err)
	}
	if t.want != nil && (receipt.GasUsed != t.want.GasUsed || receipt.Status != t.want.Status) {
		return nil, fmt.Errorf("traced execution diverged from the receipt: gas used %d status %d, receipt has %d status %d",
			receipt.GasUsed, receipt.Status, t.want.GasUsed, t.want.Status)
	}
	return tracer.GetResult()
}

// applyTraced is go-ethereum's ApplyTransactionWithEVM on Kestrel's StateDB: the
// tracer's OnTxStart and OnTxEnd around the message, the state finalised before
// OnTxEnd, a receipt with what tracers read of it.
func (s *Sequencer) applyTraced(evm *vm.EVM, hooked *hookedState, msg *core.Message, t *txTrace) (receipt *types.Receipt, err error) {
	if hooks := evm.Config.Tracer; hooks != nil {
		if hooks.OnTxStart != nil {
			hooks.OnTxStart(evm.GetVMContext(), t.tx, msg.From)
		}
		if hooks.OnTxEnd != nil {
			defer func() { hooks.OnTxEnd(receipt, err) }()
		}
	}
	res, err := core.ApplyMessage(evm, msg, core.NewGasPool(msg.GasLimit))
	if err != nil {
		return nil, err
	}
	hooked.Finalise(evm.ChainConfig().IsEIP158(evm.Context.BlockNumber))
	receipt = &types.Receipt{Type: t.tx.Type(), Status: types.ReceiptStatusSuccessful, CumulativeGasUsed: t.cumulative + res.UsedGas,
		GasUsed: res.UsedGas, TxHash: t.tx.Hash(), BlockHash: t.txctx.BlockHash, BlockNumber: t.blockCtx.BlockNumber,
		TransactionIndex: uint(t.txctx.TxIndex), Logs: t.sdb.TakeLogs()}
	if res.Failed() {
		receipt.Status = types.ReceiptStatusFailed
	}
	if t.tx.To() == nil {
		receipt.ContractAddress = crypto.CreateAddress(msg.From, t.tx.Nonce())
	}
	receipt.Bloom = types.CreateBloom(receipt)
	return receipt, nil
}

// newTracer builds a named native tracer. go-ethereum hands names it does not
// know to its JavaScript evaluator, which Kestrel does not include (the
// directory would call a nil evaluator): such names, also inside a muxTracer's
// configuration, are answered with an error instead.
func newTracer(name string, txctx *tracers.Context, cfg json.RawMessage, chainCfg *params.ChainConfig) (*tracers.Tracer, error) {
	if err := checkTracerName(name, cfg, 0); err != nil {
		return nil, err
	}
	return tracers.DefaultDirectory.New(name, txctx, cfg, chainCfg)
}

func checkTracerName(name string, cfg json.RawMessage, depth int) error {
	if tracers.DefaultDirectory.IsJS(name) {
		return fmt.Errorf("tracer %q not found (JavaScript tracers are not supported)", name)
	}
	if name != "muxTracer" || depth > 8 {
		return nil
	}
	var inner map[string]json.RawMessage
	if err := json.Unmarshal(cfg, &inner); err != nil {
		return nil // the mux tracer reports its own decoding error
	}
	for k, v := range inner {
		if len(v) == 0 {
			v = json.RawMessage("{}")
		}
		if err := checkTracerName(k, v, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// hookedState is go-ethereum's state.NewHookedState for Kestrel's StateDB: it
// reports balance, nonce, code, storage changes and logs to the tracer's hooks,
// and numbers logs within the block as go-ethereum's StateDB does (the callTracer
// prints that index). Reverted logs give their index back: Snapshot remembers
// the log count of each journal position. It does not report the changes
// Finalise makes to self-destructed accounts (no RPC tracer reads them).
type hookedState struct {
	*state.StateDB
	hooks    *tracing.Hooks
	txHash   common.Hash
	txIndex  uint
	logIndex uint
	snaps    map[int]uint
}

func (h *hookedState) Snapshot() int {
	id := h.StateDB.Snapshot()
	h.snaps[id] = h.logIndex
	return id
}

func (h *hookedState) RevertToSnapshot(id int) {
	h.StateDB.RevertToSnapshot(id)
	if n, ok := h.snaps[id]; ok {
		h.logIndex = n
	}
}

func (h *hookedState) AddLog(l *types.Log) {
	l.TxHash, l.TxIndex, l.Index = h.txHash, h.txIndex, h.logIndex
	h.logIndex++
	h.StateDB.AddLog(l)
	if h.hooks.OnLog != nil {
		h.hooks.OnLog(l)
	}
}

func (h *hookedState) SubBalance(addr common.Address, amount *uint256.Int, reason tracing.BalanceChangeReason) uint256.Int {
	prev := h.StateDB.SubBalance(addr, amount, reason)
	if h.hooks.OnBalanceChange != nil && !amount.IsZero() {
		next := new(uint256.Int).Sub(&prev, amount)
		h.hooks.OnBalanceChange(addr, prev.ToBig(), next.ToBig(), reason)
	}
	return prev
}

func (h *hookedState) AddBalance(addr common.Address, amount *uint256.Int, reason tracing.BalanceChangeReason) uint256.Int {
	prev := h.StateDB.AddBalance(addr, amount, reason)
	if h.hooks.OnBalanceChange != nil && !amount.IsZero() {
		next := new(uint256.Int).Add(&prev, amount)
		h.hooks.OnBalanceChange(addr, prev.ToBig(), next.ToBig(), reason)
	}
	return prev
}

func (h *hookedState) SetNonce(addr common.Address, nonce uint64, reason tracing.NonceChangeReason) {
	prev := h.StateDB.GetNonce(addr)
	h.StateDB.SetNonce(addr, nonce, reason)
	if h.hooks.OnNonceChangeV2 != nil {
		h.hooks.OnNonceChangeV2(addr, prev, nonce, reason)
	} else if h.hooks.OnNonceChange != nil {
		h.hooks.OnNonceChange(addr, prev, nonce)
	}
}

func (h *hookedState) SetCode(addr common.Address, code []byte, reason tracing.CodeChangeReason) []byte {
	prev := h.StateDB.SetCode(addr, code, reason)
	if h.hooks.OnCodeChangeV2 != nil || h.hooks.OnCodeChange != nil {
		prevHash, codeHash := crypto.Keccak256Hash(prev), crypto.Keccak256Hash(code)
		if prevHash != codeHash {
			if h.hooks.OnCodeChangeV2 != nil {
				h.hooks.OnCodeChangeV2(addr, prevHash, prev, codeHash, code, reason)
			} else {
				h.hooks.OnCodeChange(addr, prevHash, prev, codeHash, code)
			}
		}
	}
	return prev
}

func (h *hookedState) SetState(addr common.Address, key, value common.Hash) common.Hash {
	prev := h.StateDB.SetState(addr, key, value)
	if h.hooks.OnStorageChange != nil && prev != value {
		h.hooks.OnStorageChange(addr, key, prev, value)
	}
	return prev
}

package sequencer

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/exec"
	"github.com/kestrel-l2/kestrel/core/state"
	"github.com/kestrel-l2/kestrel/mempool"
	"github.com/kestrel-l2/kestrel/rpc"
	"github.com/kestrel-l2/kestrel/store"
)

// loopStats are counters the loop keeps for logs and metrics.
type loopStats struct {
	// Totals since start, for benchmarks and status lines.
	totalMinis, totalTxs atomic.Uint64
	totalExec, totalSync atomic.Int64 // nanoseconds
	// Stage times (nanoseconds), see Stages.
	ingress, seal, roots, blockStore atomic.Int64

	mu         sync.Mutex
	miniBlocks uint64
	txs        uint64
	lastLog    time.Time
	execTime   time.Duration
	syncTime   time.Duration
}

// loop runs mini-blocks every MiniBlockInterval and closes blocks every
// BlockInterval until Stop.
func (s *Sequencer) loop() {
	defer s.wg.Done()
	defer close(s.sealEvents)
	ticker := time.NewTicker(s.cfg.MiniBlockInterval)
	defer ticker.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-ticker.C:
		}
		if err := s.tick(); err != nil {
			s.fail(err)
			return
		}
	}
}

func nowMs() uint64 { return uint64(time.Now().UnixMilli()) }

// tick closes the block when its time is up, then runs one mini-block.
func (s *Sequencer) tick() error {
	if nowMs() >= s.open.openedAtMs+uint64(s.cfg.BlockInterval.Milliseconds()) {
		if err := s.closeBlock(); err != nil {
			return err
		}
	}
	return s.miniBlock(false)
}

// parentHashFor returns the parent hash of the open block if it is known now.
func (s *Sequencer) parentHash() (common.Hash, bool) {
	parent := s.open.env.Number - 1
	if b := s.index.block(parent); b != nil {
		return b.hash, true
	}
	return common.Hash{}, false
}

// waitParent blocks until the open block's parent is sealed.
func (s *Sequencer) waitParent(n uint64) common.Hash {
	h, _ := s.index.waitSealed(n, s.stop)
	return h
}

// getHash answers BLOCKHASH for the open block (or an older block env).
func (s *Sequencer) getHash(n uint64) common.Hash {
	if b := s.index.block(n); b != nil {
		return b.hash
	}
	if n+1 == s.index.pendingNumber() {
		return s.waitParent(n)
	}
	if rec, err := s.storeBlock(n); err == nil {
		return rec.Header.Hash()
	}
	return common.Hash{}
}

func (s *Sequencer) execEnv(env chain.BlockEnv) *exec.Env {
	return &exec.Env{Config: s.chainCf, Block: env, GetHash: s.getHash}
}

// lazyParentSlot is the EIP-2935 slot of the open block's parent, readable before
// the parent hash is known (reads wait for it).
func (s *Sequencer) lazyParentSlot(number uint64) *state.LazySlot {
	return parentSlot(number, func() common.Hash { return s.waitParent(number - 1) })
}

// parentSlot is the EIP-2935 history slot that block number's system call writes
// (the parent's number modulo the serve window), valued by get.
func parentSlot(number uint64, get func() common.Hash) *state.LazySlot {
	var key common.Hash
	new(big.Int).SetUint64((number - 1) % params.HistoryServeWindow).FillBytes(key[:])
	return &state.LazySlot{Addr: params.HistoryStorageAddress, Key: key, Get: get}
}

// miniBlock executes one mini-block. force runs it even without transactions
// (block close needs the EIP-2935 call in).
func (s *Sequencer) miniBlock(force bool) error {
	ob := s.open
	req := &exec.Request{GasUsed: ob.gasUsed}
	if ob.miniCount == 0 {
		req.BeaconRoot = true
	}
	if !ob.parentDone {
		if h, ok := s.parentHash(); ok {
			req.ParentHash = &h
		} else {
			req.Lazy = s.lazyParentSlot(ob.env.Number)
		}
	}
	if ob.gasUsed+params.TxGas <= ob.env.GasLimit {
		for _, t := range s.pool.Ready(s.cfg.MaxMiniBlockTxs, ob.env.GasLimit-ob.gasUsed) {
			req.Txs = append(req.Txs, exec.Tx{Tx: t.Tx, Sender: t.Sender})
		}
	}
	if len(req.Txs) == 0 && !req.BeaconRoot && req.ParentHash == nil && !force {
		return nil
	}
	start := time.Now()
	res, err := s.exec.Execute(context.Background(), s.state.Head(), s.execEnv(ob.env), req)
	if err != nil {
		return fmt.Errorf("execute mini-block: %w", err)
	}
	execTime := time.Since(start)
	for _, r := range res.Rejected {
		if !r.Retry {
			s.pool.Drop(r.Tx.Tx.Hash(), r.Err)
			s.waiters.fail(r.Tx.Tx.Hash(), r.Err)
			s.log.Debug("Dropped transaction at execution", "hash", r.Tx.Tx.Hash(), "err", r.Err)
		}
	}
	if len(res.Txs) == 0 && !req.BeaconRoot && req.ParentHash == nil && !force {
		return nil
	}
	mb := &chain.MiniBlock{
		Index: s.lastIndex + 1, IndexInBlock: ob.miniCount, TimestampMs: nowMs(), Env: ob.env,
		BeaconRootCall: req.BeaconRoot, ParentHashCall: req.ParentHash != nil, Receipts: res.Receipts, Diff: res.Diff,
	}
	if req.ParentHash != nil {
		mb.ParentHash = *req.ParentHash
	}
	for _, t := range res.Txs {
		mb.Txs = append(mb.Txs, t.Tx)
		mb.Senders = append(mb.Senders, t.Sender)
	}
	sealStart := time.Now()
	if err := mb.Sign(s.key); err != nil {
		return fmt.Errorf("sign mini-block: %w", err)
	}
	raw, err := mb.MarshalBinary()
	if err != nil {
		return fmt.Errorf("encode mini-block: %w", err)
	}
	syncStart := time.Now()
	s.stats.seal.Add(int64(syncStart.Sub(sealStart)))
	if err := s.store.AppendMiniBlock(mb, raw); err != nil {
		return fmt.Errorf("append mini-block %d: %w", mb.Index, err)
	}
	syncTime := time.Since(syncStart)
	// Durable: from here on the mini-block may be seen and answered.
	s.applyMiniBlock(mb)
	hashes := make([]common.Hash, len(mb.Txs))
	for i, tx := range mb.Txs {
		hashes[i] = tx.Hash()
	}
	s.pool.Included(hashes)
	// Metrics first: a client answered below may read them at once.
	s.m.RecordMiniBlock(len(mb.Txs), s.open.gasUsed, execTime, syncTime)
	s.answerWaiters(mb)
	s.publishMiniBlock(mb)
	if !s.toSealer(sealEvent{mini: mb}) {
		return nil
	}
	s.stats.record(len(mb.Txs), execTime, syncTime, s.log)
	dropped := 0
	for _, r := range res.Rejected {
		if !r.Retry {
			dropped++
		}
	}
	if dropped > 0 {
		s.m.RecordDropped(dropped)
	}
	return nil
}

// applyMiniBlock makes a durable mini-block the head: state, open block, pending
// view. Used by the loop and by recovery.
func (s *Sequencer) applyMiniBlock(mb *chain.MiniBlock) {
	ob := s.open
	// Before the commit: the undo logs keep the values the diff overwrites.
	s.undo.record(s.state, mb.Diff)
	s.state.Commit(mb.Index, mb.Diff)
	s.lastIndex = mb.Index
	s.miniHead.Store(mb.Index)
	if ob.miniCount == 0 {
		ob.firstMini = mb.Index
	}
	ob.lastMini = mb.Index
	ob.miniCount++
	if mb.ParentHashCall {
		ob.parentDone = true
	}
	first := len(ob.txs)
	ob.txs = append(ob.txs, mb.Txs...)
	ob.senders = append(ob.senders, mb.Senders...)
	ob.receipts = append(ob.receipts, mb.Receipts...)
	ob.diffs = append(ob.diffs, mb.Diff)
	if n := len(mb.Receipts); n > 0 {
		ob.gasUsed = mb.Receipts[n-1].CumulativeGasUsed
	}
	s.index.setPending(&pendingBlock{env: ob.env, txs: ob.txs[:len(ob.txs):len(ob.txs)], senders: ob.senders[:len(ob.senders):len(ob.senders)],
		receipts: ob.receipts[:len(ob.receipts):len(ob.receipts)], miniIndex: mb.Index, parentDone: ob.parentDone}, mb.Txs, first)
}

func (s *Sequencer) answerWaiters(mb *chain.MiniBlock) {
	if s.waiters.empty() {
		return
	}
	p := s.index.getPending()
	base := len(p.txs) - len(mb.Txs)
	var full []*types.Receipt // derived only if a waiter is there
	for i, tx := range mb.Txs {
		if !s.waiters.has(tx.Hash()) {
			continue
		}
		if full == nil {
			full = chain.DeriveReceipts(p.env, common.Hash{}, p.txs, p.senders, p.receipts, base, len(p.txs))
		}
		s.waiters.deliver(tx.Hash(), &rpc.ReceiptInfo{Receipt: full[i], Tx: tx, From: mb.Senders[i]})
	}
}

// closeBlock seals the open block: it makes sure the EIP-2935 call ran, hands the
// block to the sealer and opens the next one.
func (s *Sequencer) closeBlock() error {
	ob := s.open
	if !ob.parentDone || ob.miniCount == 0 {
		// The parent hash must be in this block: wait for the sealer.
		if _, ok := s.index.waitSealed(ob.env.Number-1, s.stop); !ok {
			return errors.New("stopped while waiting for the parent block")
		}
		if err := s.miniBlock(true); err != nil {
			return err
		}
	}
	if !s.handOffBlock() {
		return nil
	}
	s.pool.SetEnv(s.poolEnv())
	return nil
}

// handOffBlock hands the open block to the sealer, starts a snapshot when one
// is due and opens the next block. False when stopping.
func (s *Sequencer) handOffBlock() bool {
	ob := s.open
	// The state head is the block's last mini-block: from here on the loop
	// records what the next mini-blocks overwrite, for reads at this block once
	// it is sealed. Logs of blocks older than the sealed head are not read again.
	s.undo.open(ob.env.Number)
	s.undo.prune(s.index.headNumber())
	if !s.toSealer(sealEvent{close: &blockClose{number: ob.env.Number, firstMini: ob.firstMini, lastMini: ob.lastMini}}) {
		return false
	}
	if s.cfg.SnapshotEvery > 0 && ob.env.Number >= s.lastSnap+s.cfg.SnapshotEvery {
		s.startSnapshot(ob.env.Number)
	}
	s.openNext(ob.env, ob.gasUsed)
	return true
}

// openNext opens the block after one with env and gas used.
func (s *Sequencer) openNext(prev chain.BlockEnv, gasUsed uint64) {
	now := nowMs()
	t := now / 1000
	if t <= prev.Time {
		t = prev.Time + 1
	}
	n := prev.Number + 1
	s.open = &openBlock{
		env: chain.BlockEnv{Number: n, Time: t, BaseFee: s.genesis.NextBaseFee(gasUsed, prev.GasLimit, prev.BaseFee),
			GasLimit: s.genesis.GasLimit, Coinbase: s.genesis.Coinbase, Random: chain.RandomFor(s.genesis.ChainID, n)},
		openedAtMs: now,
	}
	s.index.setPending(&pendingBlock{env: s.open.env, miniIndex: s.lastIndex}, nil, 0)
}

// startSnapshot writes a snapshot of the state as it is now (the end of block)
// in the background, from a pinned view: the loop goes on executing. At most
// one snapshot is written at a time; Stop waits for it (or interrupts it, which
// leaves an incomplete snapshot that is never used).
func (s *Sequencer) startSnapshot(block uint64) {
	if !s.snapBusy.CompareAndSwap(false, true) {
		return
	}
	v := s.state.View()
	s.lastSnap = block
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.snapBusy.Store(false)
		defer v.Release()
		if s.Following() {
			// A follower snapshots only a block it verified against the
			// signed header.
			if _, ok := s.index.waitSealed(block, s.stop); !ok || s.Halted() != nil {
				return
			}
		}
		if err := s.writeSnapshot(block, v); err != nil {
			s.log.Error("State snapshot failed", "block", block, "err", err)
		}
	}()
}

// writeSnapshot writes the view, the state at the end of block, as a snapshot.
func (s *Sequencer) writeSnapshot(block uint64, v *state.View) error {
	start := time.Now()
	meta := store.SnapshotMeta{ID: block, MiniIndex: v.Index(), Block: block}
	accounts := 0
	err := s.store.WriteSnapshot(meta, func(emit func(*store.SnapshotAccount) error) error {
		return v.Dump(func(addr common.Address, acct *state.Account, code []byte, storage map[common.Hash]common.Hash) error {
			select {
			case <-s.stop:
				return errors.New("node stopping")
			default:
			}
			accounts++
			bal := acct.Balance
			return emit(&store.SnapshotAccount{Address: addr, Nonce: acct.Nonce, Balance: &bal, CodeHash: acct.CodeHash, Code: code, Storage: storage})
		})
	})
	if err != nil {
		return err
	}
	s.log.Info("Wrote state snapshot", "block", block, "miniBlock", meta.MiniIndex, "accounts", accounts, "elapsed", time.Since(start))
	return nil
}

func (st *loopStats) record(txs int, execTime, syncTime time.Duration, log interface{ Info(string, ...any) }) {
	st.totalMinis.Add(1)
	st.totalTxs.Add(uint64(txs))
	st.totalExec.Add(int64(execTime))
	st.totalSync.Add(int64(syncTime))
	st.mu.Lock()
	defer st.mu.Unlock()
	st.miniBlocks++
	st.txs += uint64(txs)
	st.execTime += execTime
	st.syncTime += syncTime
	if time.Since(st.lastLog) >= 10*time.Second {
		if st.txs > 0 {
			log.Info("Mini-blocks", "count", st.miniBlocks, "txs", st.txs, "exec", st.execTime, "fsync", st.syncTime)
		}
		st.miniBlocks, st.txs, st.execTime, st.syncTime = 0, 0, 0, 0
		st.lastLog = time.Now()
	}
}

// Totals are a node's counters since it started.
type Totals struct {
	MiniBlocks, Txs uint64
	// Exec is the time spent executing mini-blocks (a sequencer) or applying
	// them (a follower: checks, log write, state commit); Sync the time spent
	// waiting for the disk.
	Exec, Sync time.Duration
}

// Stages is where a node's time went since it started, by pipeline stage.
// The stages run on different goroutines (RPC handlers, the mini-block loop,
// the sealer, the publisher), so they overlap and do not add up to wall time;
// divided by Totals.Txs they are each stage's cost per transaction.
type Stages struct {
	// Ingress is admitting sent transactions: decoding, sender recovery and
	// mempool checks (RPC handler goroutines).
	Ingress time.Duration
	// Execution is executing mini-blocks (a sequencer) or checking and
	// committing their diffs (a follower).
	Execution time.Duration
	// Sealing is signing and encoding each mini-block.
	Sealing time.Duration
	// Merklization is the sealer's work: folding diffs into the state trie,
	// deriving receipts, and hashing the state, transaction and receipt tries
	// at each block's close.
	Merklization time.Duration
	// Persistence is the synced mini-block log writes and block records.
	Persistence time.Duration
	// Publish is encoding and publishing the diff stream (zero without one).
	Publish time.Duration
}

// Stages returns where the node's time went since it started.
func (s *Sequencer) Stages() Stages {
	st := &s.stats
	out := Stages{
		Ingress: time.Duration(st.ingress.Load()), Execution: time.Duration(st.totalExec.Load()),
		Sealing: time.Duration(st.seal.Load()), Merklization: time.Duration(st.roots.Load()),
		Persistence: time.Duration(st.totalSync.Load() + st.blockStore.Load()),
	}
	if s.publisher != nil {
		out.Publish = s.publisher.Stats().Busy
	}
	return out
}

// Totals returns the node's counters since it started.
func (s *Sequencer) Totals() Totals {
	st := &s.stats
	return Totals{MiniBlocks: st.totalMinis.Load(), Txs: st.totalTxs.Load(), Exec: time.Duration(st.totalExec.Load()), Sync: time.Duration(st.totalSync.Load())}
}

// Hub is the node's event hub (what eth_subscribe and the diff stream read).
func (s *Sequencer) Hub() *rpc.Hub { return s.hub }

// poolState is the pending state the mempool validates against.
type poolState struct{ s *Sequencer }

func (p poolState) Nonce(addr common.Address) uint64 {
	v := p.s.state.View()
	defer v.Release()
	a, _ := v.Account(addr)
	return a.Nonce
}

func (p poolState) Balance(addr common.Address) *uint256.Int {
	v := p.s.state.View()
	defer v.Release()
	a, _ := v.Account(addr)
	return &a.Balance
}

var _ mempool.State = poolState{}

// waiters are eth_sendRawTransactionSync calls waiting for their receipt.
type waiters struct {
	mu sync.Mutex
	m  map[common.Hash][]chan waitResult
}

type waitResult struct {
	receipt *rpc.ReceiptInfo
	err     error
}

func newWaiters() *waiters { return &waiters{m: make(map[common.Hash][]chan waitResult)} }

func (w *waiters) empty() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.m) == 0
}

func (w *waiters) has(h common.Hash) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.m[h]) > 0
}

func (w *waiters) add(h common.Hash) chan waitResult {
	ch := make(chan waitResult, 1)
	w.mu.Lock()
	w.m[h] = append(w.m[h], ch)
	w.mu.Unlock()
	return ch
}

func (w *waiters) remove(h common.Hash, ch chan waitResult) {
	w.mu.Lock()
	defer w.mu.Unlock()
	list := w.m[h]
	for i, c := range list {
		if c == ch {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(w.m, h)
	} else {
		w.m[h] = list
	}
}

func (w *waiters) deliver(h common.Hash, r *rpc.ReceiptInfo) { w.send(h, waitResult{receipt: r}) }
func (w *waiters) fail(h common.Hash, err error)             { w.send(h, waitResult{err: err}) }

func (w *waiters) send(h common.Hash, r waitResult) {
	w.mu.Lock()
	list := w.m[h]
	delete(w.m, h)
	w.mu.Unlock()
	for _, ch := range list {
		ch <- r
	}
}

// timeIngress adds the time since start to the ingress stage.
func (st *loopStats) timeIngress(start time.Time) { st.ingress.Add(int64(time.Since(start))) }

// EngineStats returns the parallel engine's counters (re-executions among
// them); false when the node runs another executor.
func (s *Sequencer) EngineStats() (exec.ParallelStats, bool) {
	if p, ok := s.exec.(*exec.Parallel); ok {
		return p.Stats(), true
	}
	return exec.ParallelStats{}, false
}

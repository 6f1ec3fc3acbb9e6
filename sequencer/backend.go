package sequencer

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/state"
	"github.com/kestrel-l2/kestrel/mempool"
	"github.com/kestrel-l2/kestrel/rpc"
	"github.com/kestrel-l2/kestrel/store"
)

// backend serves the JSON-RPC handler set from the sequencer.
type backend struct{ s *Sequencer }

var (
	_ rpc.Backend           = (*backend)(nil)
	_ rpc.BatchSender       = (*backend)(nil)
	_ rpc.BaseFeeCalculator = (*backend)(nil)
	_ rpc.Readiness         = (*backend)(nil)
)

// Ready implements rpc.Readiness: the sequencer is ready while its mini-block
// loop runs, that is from Start until Stop begins or the loop halts on an error.
func (b *backend) Ready() error {
	s := b.s
	if !s.started.Load() {
		return errors.New("sequencer not started")
	}
	select {
	case <-s.stop:
		return errors.New("sequencer stopping")
	default:
	}
	if p := s.halted.Load(); p != nil {
		return fmt.Errorf("sequencer halted: %w", *p)
	}
	return nil
}

// NextBaseFee implements rpc.BaseFeeCalculator with the genesis EIP-1559 parameters.
func (b *backend) NextBaseFee(parent *types.Header) *big.Int {
	if parent.BaseFee == nil {
		return new(big.Int)
	}
	return b.s.genesis.NextBaseFee(parent.GasUsed, parent.GasLimit, parent.BaseFee)
}

func (b *backend) ChainID() *big.Int                { return new(big.Int).SetUint64(b.s.genesis.ChainID) }
func (b *backend) ChainConfig() *params.ChainConfig { return b.s.chainCf }
func (b *backend) ClientVersion() string            { return Version }
func (b *backend) HeadNumber() uint64               { return b.s.index.headNumber() }
func (b *backend) GasCap() uint64                   { return b.s.cfg.CallGasCap }
func (b *backend) SuggestTipCap(context.Context) *big.Int {
	return new(big.Int).SetUint64(b.s.cfg.SuggestedTip)
}

func (s *Sequencer) storeBlock(n uint64) (*store.BlockRecord, error) {
	st := s.store
	if st == nil {
		return nil, errors.New("store closed")
	}
	return st.Block(n)
}

// sealedBlock returns a sealed block with its transactions, from memory or the
// store.
func (s *Sequencer) sealedBlock(n uint64) (*sealed, error) {
	if n > s.index.headNumber() {
		return nil, rpc.ErrUnknownBlock
	}
	if b := s.index.block(n); b != nil && (b.txs != nil || b.lastMini == 0) {
		return b, nil
	}
	rec, err := s.storeBlock(n)
	if errors.Is(err, store.ErrNotFound) {
		return nil, rpc.ErrUnknownBlock
	}
	if err != nil {
		return nil, err
	}
	b := &sealed{header: rec.Header, hash: rec.Header.Hash(), sig: rec.Signature, firstMini: rec.FirstMini, lastMini: rec.LastMini}
	if rec.LastMini == 0 {
		return b, nil
	}
	if c, ok := s.storeBlocks.Get(n); ok {
		return c, nil
	}
	for i := rec.FirstMini; i <= rec.LastMini; i++ {
		mb, err := s.store.MiniBlock(i)
		if errors.Is(err, store.ErrNotFound) {
			// Before the snapshot this node was bootstrapped from.
			return nil, rpc.ErrPrunedHistory
		}
		if err != nil {
			return nil, fmt.Errorf("block %d: %w", n, err)
		}
		b.miniOffsets = append(b.miniOffsets, len(b.txs))
		b.txs = append(b.txs, mb.Txs...)
		b.senders = append(b.senders, mb.Senders...)
		b.receipts = append(b.receipts, mb.Receipts...)
	}
	s.storeBlocks.Add(n, b)
	return b, nil
}

// resolve turns a reference into a sealed block number, or reports pending.
func (s *Sequencer) resolve(ref rpc.BlockRef) (n uint64, pending bool, err error) {
	switch ref.Tag {
	case rpc.TagPending:
		return 0, true, nil
	case rpc.TagLatest, rpc.TagSafe, rpc.TagFinalized:
		return s.index.headNumber(), false, nil
	case rpc.TagEarliest:
		return 0, false, nil
	case rpc.TagNumber:
		// A number past the newest sealed block is unknown, as in go-ethereum,
		// even when it is the open block's: only the "pending" tag names that.
		if ref.Number > s.index.headNumber() {
			return 0, false, rpc.ErrUnknownBlock
		}
		return ref.Number, false, nil
	case rpc.TagHash:
		if n, ok := s.index.numberOf(ref.Hash); ok {
			return n, false, nil
		}
		n, err := s.store.BlockNumber(ref.Hash)
		if errors.Is(err, store.ErrNotFound) {
			return 0, false, rpc.ErrUnknownBlock
		}
		return n, false, err
	}
	return 0, false, fmt.Errorf("unknown block tag %d", ref.Tag)
}

// pendingHeader is the open block's header so far: the fields every sealed
// header has (chain.SealHeaderRoots) with the roots and bloom left zero (not
// final while the block is open) and the parent hash once the parent is
// sealed. As go-ethereum's pending block, it has no parent beacon root.
func (s *Sequencer) pendingHeader(p *pendingBlock) *types.Header {
	var gas uint64
	if n := len(p.receipts); n > 0 {
		gas = p.receipts[n-1].CumulativeGasUsed
	}
	var parent common.Hash
	if p.env.Number > 0 {
		if b := s.index.block(p.env.Number - 1); b != nil {
			parent = b.hash
		}
	}
	h := chain.SealHeaderRoots(p.env, parent, common.Hash{}, common.Hash{}, common.Hash{}, types.Bloom{}, gas)
	h.ParentBeaconRoot = nil
	return h
}

func (b *backend) BlockByRef(ctx context.Context, ref rpc.BlockRef) (*rpc.Block, error) {
	s := b.s
	n, pending, err := s.resolve(ref)
	if err != nil {
		return nil, err
	}
	if pending {
		p := s.index.getPending()
		h := s.pendingHeader(p)
		return &rpc.Block{Header: h, Txs: p.txs, Senders: p.senders,
			Receipts: chain.FullReceipts(p.env, common.Hash{}, p.txs, p.senders, p.receipts),
			Size:     types.NewBlockWithHeader(h).WithBody(types.Body{Transactions: p.txs, Withdrawals: []*types.Withdrawal{}}).Size()}, nil
	}
	sb, err := s.sealedBlock(n)
	if err != nil {
		return nil, err
	}
	env := envOf(sb.header)
	withdrawals := []*types.Withdrawal{}
	return &rpc.Block{Header: sb.header, Hash: sb.hash, Sealed: true, Txs: sb.txs, Senders: sb.senders,
		Receipts: chain.FullReceipts(env, sb.hash, sb.txs, sb.senders, sb.receipts),
		Size:     types.NewBlockWithHeader(sb.header).WithBody(types.Body{Transactions: sb.txs, Withdrawals: withdrawals}).Size()}, nil
}

func envOf(h *types.Header) chain.BlockEnv {
	return chain.BlockEnv{Number: h.Number.Uint64(), Time: h.Time, BaseFee: h.BaseFee, GasLimit: h.GasLimit, Coinbase: h.Coinbase, Random: h.MixDigest}
}

func (b *backend) HeaderByRef(ctx context.Context, ref rpc.BlockRef) (*types.Header, common.Hash, error) {
	s := b.s
	n, pending, err := s.resolve(ref)
	if err != nil {
		return nil, common.Hash{}, err
	}
	if pending {
		return s.pendingHeader(s.index.getPending()), common.Hash{}, nil
	}
	if sb := s.index.block(n); sb != nil {
		return sb.header, sb.hash, nil
	}
	rec, err := s.storeBlock(n)
	if errors.Is(err, store.ErrNotFound) {
		return nil, common.Hash{}, rpc.ErrUnknownBlock
	}
	if err != nil {
		return nil, common.Hash{}, err
	}
	return rec.Header, rec.Header.Hash(), nil
}

// reader returns a state reader for ref with the block env it belongs to.
func (s *Sequencer) reader(ref rpc.BlockRef) (state.Reader, chain.BlockEnv, func(), error) {
	n, pending, err := s.resolve(ref)
	if err != nil {
		return nil, chain.BlockEnv{}, nil, err
	}
	if pending {
		v := s.state.View()
		return v, s.index.getPending().env, v.Release, nil
	}
	if r, env, release, ok := s.undoReader(n); ok {
		return r, env, release, nil
	}
	var header *types.Header
	if sb := s.index.block(n); sb != nil {
		header = sb.header
	} else {
		rec, err := s.storeBlock(n)
		if errors.Is(err, store.ErrNotFound) {
			return nil, chain.BlockEnv{}, nil, rpc.ErrUnknownBlock
		}
		if err != nil {
			return nil, chain.BlockEnv{}, nil, err
		}
		header = rec.Header
	}
	r, err := s.merkle.Reader(header.Root, s.code)
	if errors.Is(err, state.ErrRootUnavailable) {
		return nil, chain.BlockEnv{}, nil, rpc.ErrStateUnavailable
	}
	if err != nil {
		return nil, chain.BlockEnv{}, nil, err
	}
	return r, envOf(header), func() {}, nil
}

// code reads contract code by hash; code is never removed from the flat state.
func (s *Sequencer) code(hash common.Hash) []byte {
	v := s.state.View()
	defer v.Release()
	return v.Code(hash)
}

func (b *backend) Balance(ctx context.Context, addr common.Address, ref rpc.BlockRef) (*uint256.Int, error) {
	r, _, release, err := b.s.reader(ref)
	if err != nil {
		return nil, err
	}
	defer release()
	a, _ := r.Account(addr)
	return &a.Balance, nil
}

func (b *backend) Nonce(ctx context.Context, addr common.Address, ref rpc.BlockRef) (uint64, error) {
	r, _, release, err := b.s.reader(ref)
	if err != nil {
		return 0, err
	}
	defer release()
	a, _ := r.Account(addr)
	return a.Nonce, nil
}

func (b *backend) Code(ctx context.Context, addr common.Address, ref rpc.BlockRef) ([]byte, error) {
	r, _, release, err := b.s.reader(ref)
	if err != nil {
		return nil, err
	}
	defer release()
	a, ok := r.Account(addr)
	if !ok {
		return nil, nil
	}
	return r.Code(a.CodeHash), nil
}

func (b *backend) Storage(ctx context.Context, addr common.Address, slot common.Hash, ref rpc.BlockRef) (common.Hash, error) {
	r, env, release, err := b.s.reader(ref)
	if err != nil {
		return common.Hash{}, err
	}
	defer release()
	if ref.Tag == rpc.TagPending && addr == params.HistoryStorageAddress {
		// The parent hash slot may still be waiting for the parent's root.
		sdb := state.NewStateDB(r)
		if pb := b.s.index.getPending(); pb != nil && !pb.parentDone {
			sdb.SetLazySlot(b.s.lazyParentSlot(env.Number))
		}
		return sdb.GetState(addr, slot), nil
	}
	return r.Storage(addr, slot), nil
}

func (b *backend) Proof(ctx context.Context, addr common.Address, slots []common.Hash, ref rpc.BlockRef) (*rpc.AccountResult, error) {
	s := b.s
	if ref.Tag == rpc.TagPending {
		return nil, errors.New("proofs are available for sealed blocks only; use \"latest\" or a block number")
	}
	h, _, err := b.HeaderByRef(ctx, ref)
	if err != nil {
		return nil, err
	}
	p, err := s.merkle.Proof(h.Root, addr, slots)
	if errors.Is(err, state.ErrRootUnavailable) {
		return nil, rpc.ErrStateUnavailable
	}
	if err != nil {
		return nil, err
	}
	res := &rpc.AccountResult{Address: addr, AccountProof: p.AccountProof, Balance: &p.Balance, CodeHash: p.CodeHash,
		Nonce: p.Nonce, StorageHash: p.StorageHash}
	// As go-ethereum (StateDB.GetCodeHash / GetStorageRoot): an account that
	// does not exist has the zero hash as its code hash and storage root.
	r, err := s.merkle.Reader(h.Root, s.code)
	if err != nil {
		return nil, err
	}
	if _, ok := r.Account(addr); !ok {
		res.CodeHash, res.StorageHash = common.Hash{}, common.Hash{}
	}
	for _, sp := range p.Storage {
		res.StorageProof = append(res.StorageProof, rpc.StorageResult{Key: sp.Key, Value: sp.Value, Proof: sp.Proof})
	}
	return res, nil
}

func (b *backend) SendRawTransaction(ctx context.Context, raw []byte) (common.Hash, error) {
	hashes, errs := b.SendRawTransactions(ctx, [][]byte{raw})
	return hashes[0], errs[0]
}

func (b *backend) SendRawTransactions(ctx context.Context, raws [][]byte) ([]common.Hash, []error) {
	if f := b.s.cfg.Follow; f != nil {
		return b.s.forward(ctx, raws)
	}
	defer b.s.stats.timeIngress(time.Now())
	pool := b.s.pool
	txs, errs := pool.DecodeBatch(raws)
	hashes := make([]common.Hash, len(raws))
	var ok []*mempool.Tx
	var pos []int
	for i, t := range txs {
		if errs[i] == nil {
			ok = append(ok, t)
			pos = append(pos, i)
			hashes[i] = t.Hash
		}
	}
	added := make([]common.Hash, 0, len(ok))
	for j, err := range pool.Add(ok) {
		errs[pos[j]] = err
		if err == nil {
			added = append(added, ok[j].Hash)
		}
	}
	b.s.hub.PublishPendingTxs(added)
	return hashes, errs
}

func (b *backend) SendRawTransactionSync(ctx context.Context, raw []byte, timeout time.Duration) (*rpc.ReceiptInfo, error) {
	if b.s.Following() {
		return b.s.forwardSync(ctx, raw, timeout)
	}
	start := time.Now()
	pool := b.s.pool
	txs, errs := pool.DecodeBatch([][]byte{raw})
	if errs[0] != nil {
		return nil, errs[0]
	}
	t := txs[0]
	// Register before admitting, so that a mini-block right after Add cannot be missed.
	ch := b.s.waiters.add(t.Hash)
	if err := pool.Add([]*mempool.Tx{t})[0]; err != nil {
		b.s.waiters.remove(t.Hash, ch)
		return nil, err
	}
	b.s.hub.PublishPendingTxs([]common.Hash{t.Hash})
	b.s.stats.timeIngress(start)
	return b.s.awaitReceipt(ctx, t.Hash, ch, timeout)
}

// awaitReceipt waits for the receipt a waiter registered for hash receives:
// the transaction's mini-block was made durable (sequencer) or applied
// (replica). The waiter is removed on timeout, cancellation or stop.
func (s *Sequencer) awaitReceipt(ctx context.Context, hash common.Hash, ch chan waitResult, timeout time.Duration) (*rpc.ReceiptInfo, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		return r.receipt, r.err
	case <-timer.C:
		s.waiters.remove(hash, ch)
		return nil, rpc.ErrSyncTimeout
	case <-ctx.Done():
		s.waiters.remove(hash, ch)
		return nil, ctx.Err()
	case <-s.stop:
		s.waiters.remove(hash, ch)
		return nil, errors.New(strings.ToLower(s.role()) + " stopping")
	}
}

// locate finds a transaction in a mini-block: the pending block, a recent sealed
// block, or the store's index.
func (s *Sequencer) locate(hash common.Hash) (blockNum uint64, idx int, found bool, err error) {
	if loc, ok := s.index.lookupTx(hash); ok {
		return loc.block, loc.index, true, nil
	}
	st := s.store
	if st == nil {
		return 0, 0, false, errors.New("store closed")
	}
	loc, err := st.TxLocationFull(hash)
	if errors.Is(err, store.ErrNotFound) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, err
	}
	mini, pos, number := loc.Mini, loc.Pos, loc.Block
	if !loc.HasBlock {
		mb, err := st.MiniBlock(mini)
		if err != nil {
			return 0, 0, false, err
		}
		number = mb.Env.Number
	}
	if number > s.index.headNumber() {
		// Written to the log a moment ago but not applied yet: not visible until
		// the loop makes it the pending state.
		return 0, 0, false, nil
	}
	sb, err := s.sealedBlock(number)
	if err != nil {
		return 0, 0, false, err
	}
	if k := int(mini - sb.firstMini); mini >= sb.firstMini && k < len(sb.miniOffsets) {
		if i := sb.miniOffsets[k] + int(pos); i < len(sb.txs) && sb.txs[i].Hash() == hash {
			return number, i, true, nil
		}
	}
	for i, tx := range sb.txs {
		if tx.Hash() == hash {
			return number, i, true, nil
		}
	}
	return 0, 0, false, fmt.Errorf("transaction %s indexed in mini-block %d but not in block %d", hash, mini, number)
}

func (b *backend) Transaction(ctx context.Context, hash common.Hash) (*rpc.TxInfo, error) {
	s := b.s
	n, idx, found, err := s.locate(hash)
	if err != nil {
		return nil, err
	}
	if !found {
		if s.pool == nil {
			return nil, nil
		}
		if t := s.pool.Get(hash); t != nil {
			return &rpc.TxInfo{Tx: t.Tx, Sender: t.Sender, Pending: true}, nil
		}
		return nil, nil
	}
	if p := s.index.unsealed(n); p != nil {
		// The open block, or one closed and not sealed yet: no hash so far.
		if idx < len(p.txs) {
			return &rpc.TxInfo{Tx: p.txs[idx], Sender: p.senders[idx], BlockNumber: n, Index: uint64(idx),
				BaseFee: p.env.BaseFee, Time: p.env.Time}, nil
		}
		return nil, nil
	}
	sb, err := s.sealedBlock(n)
	if err != nil {
		return nil, err
	}
	if idx >= len(sb.txs) {
		return nil, nil
	}
	return &rpc.TxInfo{Tx: sb.txs[idx], Sender: sb.senders[idx], BlockNumber: n, BlockHash: sb.hash, Sealed: true,
		Index: uint64(idx), BaseFee: sb.header.BaseFee}, nil
}

func (b *backend) Receipt(ctx context.Context, hash common.Hash) (*rpc.ReceiptInfo, error) {
	s := b.s
	n, idx, found, err := s.locate(hash)
	if err != nil || !found || n > s.index.headNumber() {
		return nil, err
	}
	sb, err := s.sealedBlock(n)
	if err != nil {
		return nil, err
	}
	if idx >= len(sb.txs) {
		return nil, nil
	}
	r := chain.DeriveReceipts(envOf(sb.header), sb.hash, sb.txs, sb.senders, sb.receipts, idx, idx+1)[0]
	return &rpc.ReceiptInfo{Receipt: r, Tx: sb.txs[idx], From: sb.senders[idx], Sealed: true}, nil
}

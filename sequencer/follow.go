package sequencer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/rpc"
	"github.com/kestrel-l2/kestrel/store"
)

// A node in follow mode (FollowConfig set) is a replica's chain core: the same
// store, flat state, tries, sealer, undo logs, recovery and RPC backend as the
// sequencer, fed with mini-blocks the sequencer signed instead of executing
// transactions. It seals every block from the applied diffs exactly as the
// sequencer does and accepts the block only when its header hash equals the
// header the sequencer signed; it never signs anything itself.

// FollowConfig makes a node follow another node's chain.
type FollowConfig struct {
	// Signer is the sequencer address every mini-block and header must be
	// signed by.
	Signer common.Address
	// Forward receives the transactions sent to this node.
	Forward Forwarder
}

// Forwarder sends raw transactions to the sequencer: the hash of each, or the
// sequencer's error for it.
type Forwarder interface {
	SendRawTransactions(ctx context.Context, raws [][]byte) ([]common.Hash, []error)
}

var (
	// ErrAlreadyApplied is returned for a mini-block or header the node already
	// has (a duplicate: skip it).
	ErrAlreadyApplied = errors.New("already applied")
	// ErrGap is returned for a mini-block past the next expected index (refetch
	// from the next one).
	ErrGap = errors.New("gap in the mini-block sequence")
	// ErrBusy is returned while the sealer's queue is nearly full (offer the
	// mini-block again shortly): the sealer may be waiting for a header.
	ErrBusy = errors.New("sealer busy")
	// ErrHeaderAhead is returned for a header too far ahead of the applied
	// mini-blocks to be held (offer it again later).
	ErrHeaderAhead = errors.New("header too far ahead of the applied mini-blocks")
	// ErrBadSignature is returned for a mini-block or header not signed by the
	// configured sequencer.
	ErrBadSignature = errors.New("not signed by the sequencer")
	// ErrMismatch halts a follower: a block sealed from the applied diffs is
	// not the block the sequencer signed.
	ErrMismatch = errors.New("sealed block differs from the sequencer's signed header")
	// ErrNotBootstrapped is returned by New in follow mode for a data directory
	// that holds no chain yet: bootstrap it from a snapshot first.
	ErrNotBootstrapped = errors.New("the data directory holds no chain; bootstrap it from a snapshot")
	errStopping        = errors.New("node stopping")
)

// maxHeadersAhead bounds the signed headers held for blocks not sealed yet.
const maxHeadersAhead = 64

// headerQueue holds signed headers that arrived before the node sealed their
// block.
type headerQueue struct {
	mu   sync.Mutex
	m    map[uint64]*store.BlockRecord
	wake chan struct{}
}

func newHeaderQueue() *headerQueue {
	return &headerQueue{m: make(map[uint64]*store.BlockRecord), wake: make(chan struct{})}
}

func (q *headerQueue) get(n uint64) (*store.BlockRecord, <-chan struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.m[n], q.wake
}

func (q *headerQueue) put(rec *store.BlockRecord) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.m[rec.Header.Number.Uint64()] = rec
	close(q.wake)
	q.wake = make(chan struct{})
}

// drop forgets headers up to n.
func (q *headerQueue) drop(n uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for k := range q.m {
		if k <= n {
			delete(q.m, k)
		}
	}
}

// Following reports whether the node follows another node's chain.
func (s *Sequencer) Following() bool { return s.cfg.Follow != nil }

// MiniBlockHead is the newest applied (or produced) mini-block index.
func (s *Sequencer) MiniBlockHead() uint64 { return s.miniHead.Load() }

// HeadNumber is the newest sealed block.
func (s *Sequencer) HeadNumber() uint64 { return s.index.headNumber() }

// ApplyMiniBlock applies the next mini-block of the followed chain: it checks
// that it continues the chain (index, block, position in block, the block's
// environment), logs it, applies its diff and hands it to the sealer. The
// caller has checked its signature (VerifyMiniBlock, which also returns raw, the
// log encoding; nil encodes it again). Calls must come from one
// goroutine at a time. A duplicate returns ErrAlreadyApplied and a later index
// ErrGap; neither changes anything. A mini-block that breaks the chain's links
// halts the node.
func (s *Sequencer) ApplyMiniBlock(mb *chain.MiniBlock, raw []byte) error {
	if !s.Following() {
		return errors.New("ApplyMiniBlock needs follow mode")
	}
	s.followMu.Lock()
	defer s.followMu.Unlock()
	if err := s.followable(); err != nil {
		return err
	}
	switch {
	case mb.Index <= s.lastIndex:
		return fmt.Errorf("%w: mini-block %d (applied up to %d)", ErrAlreadyApplied, mb.Index, s.lastIndex)
	case mb.Index > s.lastIndex+1:
		return fmt.Errorf("%w: next is %d, got %d", ErrGap, s.lastIndex+1, mb.Index)
	case len(s.sealEvents) > cap(s.sealEvents)-3:
		// Room for this mini-block and a block close, so that the lock is never
		// held while the sealer waits for a header that AddHeader must bring.
		return ErrBusy
	}
	start := time.Now()
	ob := s.open
	if ob.miniCount > 0 && mb.Env.Number == ob.env.Number+1 {
		// The block ended before its header told us where: close it now.
		if err := s.closeFollowed(); err != nil {
			return err
		}
		ob = s.open
	}
	if err := checkLink(ob, mb); err != nil {
		err = fmt.Errorf("mini-block %d does not continue the chain: %w", mb.Index, err)
		s.fail(err)
		return err
	}
	if ob.miniCount == 0 {
		ob.env, ob.openedAtMs = mb.Env, mb.TimestampMs
	}
	if raw == nil {
		var err error
		if raw, err = mb.MarshalBinary(); err != nil {
			return err
		}
	}
	s.applyMiniBlock(mb)
	// The sealer logs it (without a sync: the block's verified record syncs
	// the log) while this goroutine applies the next one.
	if !s.toSealer(sealEvent{mini: mb, raw: raw}) {
		return errStopping
	}
	s.publishMiniBlock(mb)
	s.answerWaiters(mb)
	s.m.RecordMiniBlock(len(mb.Txs), ob.gasUsed, time.Since(start), 0)
	s.stats.record(len(mb.Txs), time.Since(start), 0, s.log)
	if rec, _ := s.headers.get(ob.env.Number); rec != nil && rec.LastMini == mb.Index {
		return s.closeFollowed()
	}
	return nil
}

// checkLink checks that mb is the next mini-block of the open block ob.
func checkLink(ob *openBlock, mb *chain.MiniBlock) error {
	if mb.Env.Number != ob.env.Number {
		return fmt.Errorf("it belongs to block %d, the open block is %d", mb.Env.Number, ob.env.Number)
	}
	if mb.IndexInBlock != ob.miniCount {
		return fmt.Errorf("position %d in block %d, expected %d", mb.IndexInBlock, mb.Env.Number, ob.miniCount)
	}
	if ob.miniCount > 0 && !sameEnv(ob.env, mb.Env) {
		return fmt.Errorf("block %d's environment changed within the block", mb.Env.Number)
	}
	if mb.BeaconRootCall && mb.IndexInBlock != 0 {
		return fmt.Errorf("beacon-root system call at position %d", mb.IndexInBlock)
	}
	if mb.ParentHashCall && ob.parentDone {
		return fmt.Errorf("second parent-hash system call in block %d", mb.Env.Number)
	}
	return nil
}

func sameEnv(a, b chain.BlockEnv) bool {
	return a.Number == b.Number && a.Time == b.Time && a.BaseFee.Cmp(b.BaseFee) == 0 && a.GasLimit == b.GasLimit &&
		a.Coinbase == b.Coinbase && a.Random == b.Random
}

// VerifyMiniBlock checks a mini-block's signature against the followed
// sequencer and returns its log encoding (for ApplyMiniBlock). It is stateless
// and safe to call from any goroutine.
func (s *Sequencer) VerifyMiniBlock(mb *chain.MiniBlock) ([]byte, error) {
	signer, raw, err := mb.SignerAndEncoding()
	if err != nil {
		return nil, fmt.Errorf("%w: mini-block %d: %v", ErrBadSignature, mb.Index, err)
	}
	if signer != s.signer {
		return nil, fmt.Errorf("%w: mini-block %d signed by %s, expected %s", ErrBadSignature, mb.Index, signer, s.signer)
	}
	return raw, nil
}

// AddHeader takes the signed header of a block of the followed chain. The
// block is sealed when its last mini-block is applied; the sealed header must
// then equal this one. A header of a block already sealed returns
// ErrAlreadyApplied when it is the same, an error when it conflicts.
func (s *Sequencer) AddHeader(rec *store.BlockRecord) error {
	if !s.Following() {
		return errors.New("AddHeader needs follow mode")
	}
	if rec == nil || rec.Header == nil || rec.Header.Number == nil {
		return errors.New("empty header")
	}
	n := rec.Header.Number.Uint64()
	signer, err := (&chain.SignedHeader{Header: rec.Header, Signature: rec.Signature}).Signer()
	if err != nil {
		return fmt.Errorf("%w: header %d: %v", ErrBadSignature, n, err)
	}
	if signer != s.signer {
		return fmt.Errorf("%w: header %d signed by %s, expected %s", ErrBadSignature, n, signer, s.signer)
	}
	if rec.FirstMini == 0 || rec.LastMini < rec.FirstMini {
		return fmt.Errorf("header %d: bad mini-block range %d..%d", n, rec.FirstMini, rec.LastMini)
	}
	s.followMu.Lock()
	defer s.followMu.Unlock()
	if err := s.followable(); err != nil {
		return err
	}
	if head := s.index.headNumber(); n <= head {
		have, err := s.sealedBlock(n)
		if err != nil {
			return fmt.Errorf("%w: header %d (sealed up to %d)", ErrAlreadyApplied, n, head)
		}
		if have.hash != rec.Header.Hash() {
			return fmt.Errorf("signed header %d (%s) conflicts with the sealed block %s", n, rec.Header.Hash(), have.hash)
		}
		return fmt.Errorf("%w: header %d", ErrAlreadyApplied, n)
	}
	ob := s.open
	if n > ob.env.Number+maxHeadersAhead {
		return fmt.Errorf("%w: header %d, open block %d", ErrHeaderAhead, n, ob.env.Number)
	}
	s.headers.put(rec)
	if n == ob.env.Number && ob.miniCount > 0 && s.lastIndex == rec.LastMini && len(s.sealEvents) < cap(s.sealEvents) {
		return s.closeFollowed()
	}
	return nil
}

// followable reports why the node cannot take chain data now.
func (s *Sequencer) followable() error {
	if p := s.halted.Load(); p != nil {
		return fmt.Errorf("halted: %w", *p)
	}
	select {
	case <-s.stop:
		return errStopping
	default:
		return nil
	}
}

// closeFollowed closes the open block of a follower: the sealer seals it and
// compares it with the signed header.
func (s *Sequencer) closeFollowed() error {
	if !s.handOffBlock() {
		return errStopping
	}
	return nil
}

// awaitHeader returns the signed header of block n: from the store (blocks
// replayed at recovery) or from the stream, waiting for it.
func (s *Sequencer) awaitHeader(n uint64) (*store.BlockRecord, error) {
	for {
		rec, wake := s.headers.get(n)
		if rec != nil {
			return rec, nil
		}
		if rec, err := s.store.Block(n); err == nil {
			return rec, nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		select {
		case <-wake:
		case <-s.stop:
			return nil, errStopping
		}
	}
}

// checkSealed compares a header sealed from the applied diffs with the signed
// one and names what differs.
func checkSealed(got *types.Header, firstMini, lastMini uint64, want *store.BlockRecord) error {
	w := want.Header
	if got.Hash() == w.Hash() && firstMini == want.FirstMini && lastMini == want.LastMini {
		return nil
	}
	var diffs []string
	add := func(name string, a, b any) { diffs = append(diffs, fmt.Sprintf("%s %v, signed %v", name, a, b)) }
	if got.Root != w.Root {
		add("state root", got.Root, w.Root)
	}
	if got.TxHash != w.TxHash {
		add("transactions root", got.TxHash, w.TxHash)
	}
	if got.ReceiptHash != w.ReceiptHash {
		add("receipts root", got.ReceiptHash, w.ReceiptHash)
	}
	if got.ParentHash != w.ParentHash {
		add("parent hash", got.ParentHash, w.ParentHash)
	}
	if got.GasUsed != w.GasUsed {
		add("gas used", got.GasUsed, w.GasUsed)
	}
	if !bytes.Equal(got.Bloom[:], w.Bloom[:]) {
		diffs = append(diffs, "logs bloom differs")
	}
	if firstMini != want.FirstMini || lastMini != want.LastMini {
		add("mini-blocks", fmt.Sprintf("%d..%d", firstMini, lastMini), fmt.Sprintf("%d..%d", want.FirstMini, want.LastMini))
	}
	if len(diffs) == 0 {
		add("hash", got.Hash(), w.Hash())
	}
	return fmt.Errorf("%w: block %d: computed %s", ErrMismatch, w.Number, strings.Join(diffs, "; "))
}

// forward sends transactions to the sequencer and announces the accepted ones
// to this node's newPendingTransactions subscribers.
func (s *Sequencer) forward(ctx context.Context, raws [][]byte) ([]common.Hash, []error) {
	hashes, errs := s.cfg.Follow.Forward.SendRawTransactions(ctx, raws)
	var ok []common.Hash
	for i, err := range errs {
		if err == nil {
			ok = append(ok, hashes[i])
		}
	}
	s.hub.PublishPendingTxs(ok)
	return hashes, errs
}

// forwardSync forwards a transaction and answers once this node has applied
// the mini-block holding it, so that a wallet reading from this node right
// after sees its own write.
func (s *Sequencer) forwardSync(ctx context.Context, raw []byte, timeout time.Duration) (*rpc.ReceiptInfo, error) {
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(raw); err != nil {
		// The sequencer's answer names the problem as a wallet expects it.
		_, errs := s.forward(ctx, [][]byte{raw})
		if errs[0] == nil {
			return nil, err
		}
		return nil, errs[0]
	}
	// Register before forwarding, so that a mini-block applied right after the
	// sequencer admitted it cannot be missed.
	ch := s.waiters.add(tx.Hash())
	if _, errs := s.forward(ctx, [][]byte{raw}); errs[0] != nil {
		s.waiters.remove(tx.Hash(), ch)
		return nil, errs[0]
	}
	return s.awaitReceipt(ctx, tx.Hash(), ch, timeout)
}

// Halted is the error that stopped the node from working, nil while it works.
func (s *Sequencer) Halted() error {
	if p := s.halted.Load(); p != nil {
		return *p
	}
	return nil
}

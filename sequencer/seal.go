package sequencer

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/trie"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/state"
	"github.com/kestrel-l2/kestrel/rpc"
	"github.com/kestrel-l2/kestrel/store"
)

// sealEvent is what the loop tells the sealer: a durable mini-block, or the
// close of the block its mini-blocks belong to.
type sealEvent struct {
	mini  *chain.MiniBlock
	raw   []byte // a follower's mini-block to log (its encoding)
	close *blockClose
}

type blockClose struct {
	number    uint64
	firstMini uint64
	lastMini  uint64
}

// blockAcc is a block the sealer is building while its mini-blocks arrive: the
// tries are updated, receipts derived and encoded per mini-block, so that the
// close only hashes.
type blockAcc struct {
	env      chain.BlockEnv
	b        *state.Builder
	txs      []*types.Transaction
	senders  []common.Address
	stored   []*chain.Receipt
	full     []*types.Receipt
	txEnc    encodedList
	rcptEnc  encodedList
	lastMini uint64
}

// encodedList is a types.DerivableList of already encoded items.
type encodedList [][]byte

func (l encodedList) Len() int                           { return len(l) }
func (l encodedList) EncodeIndex(i int, w *bytes.Buffer) { w.Write(l[i]) }

func (s *Sequencer) newAcc(env chain.BlockEnv) (*blockAcc, error) {
	b, err := s.merkle.Begin()
	if err != nil {
		return nil, err
	}
	return &blockAcc{env: env, b: b}, nil
}

// add folds one mini-block's transactions, receipts and diff into the block.
func (a *blockAcc) add(txs []*types.Transaction, senders []common.Address, receipts []*chain.Receipt, diff *chain.StateDiff) error {
	if err := a.b.Add(diff); err != nil {
		return err
	}
	from := len(a.txs)
	a.txs = append(a.txs, txs...)
	a.senders = append(a.senders, senders...)
	a.stored = append(a.stored, receipts...)
	full := chain.DeriveReceipts(a.env, common.Hash{}, a.txs, a.senders, a.stored, from, len(a.txs))
	a.full = append(a.full, full...)
	var buf bytes.Buffer
	for i, tx := range txs {
		buf.Reset()
		types.Transactions{tx}.EncodeIndex(0, &buf)
		a.txEnc = append(a.txEnc, bytes.Clone(buf.Bytes()))
		buf.Reset()
		types.Receipts{full[i]}.EncodeIndex(0, &buf)
		a.rcptEnc = append(a.rcptEnc, bytes.Clone(buf.Bytes()))
	}
	return nil
}

// toSealer hands an event to the sealer; false when stopping.
func (s *Sequencer) toSealer(ev sealEvent) bool {
	select {
	case s.sealEvents <- ev:
		return true
	case <-s.stop:
		return false
	}
}

// sealLoop builds blocks from the loop's events and seals them in order, off
// the mini-block loop.
func (s *Sequencer) sealLoop() {
	defer s.wg.Done()
	fail := func(err error) {
		if !errors.Is(err, errStopping) {
			s.sealErr.Store(&err)
			s.fail(err)
		}
		for range s.sealEvents { // never block the loop on a dead sealer
		}
	}
	for ev := range s.sealEvents {
		switch {
		case ev.mini != nil:
			mb := ev.mini
			if s.sealAcc == nil {
				acc, err := s.newAcc(mb.Env)
				if err != nil {
					fail(err)
					return
				}
				s.sealAcc = acc
			}
			if s.sealAcc.env.Number != mb.Env.Number {
				fail(fmt.Errorf("sealer: mini-block %d of block %d arrived while building block %d", mb.Index, mb.Env.Number, s.sealAcc.env.Number))
				return
			}
			if ev.raw != nil {
				// A follower logs what it applied here, off its apply path;
				// the block record written at the block's close follows it.
				start := time.Now()
				if err := s.store.AppendMiniBlockNoSync(mb, ev.raw); err != nil {
					fail(fmt.Errorf("log mini-block %d: %w", mb.Index, err))
					return
				}
				s.stats.blockStore.Add(int64(time.Since(start)))
			}
			start := time.Now()
			if err := s.sealAcc.add(mb.Txs, mb.Senders, mb.Receipts, mb.Diff); err != nil {
				fail(fmt.Errorf("sealer: mini-block %d: %w", mb.Index, err))
				return
			}
			s.stats.roots.Add(int64(time.Since(start)))
		case ev.close != nil:
			acc := s.sealAcc
			s.sealAcc = nil
			if acc == nil || acc.env.Number != ev.close.number {
				fail(fmt.Errorf("sealer: close of block %d without its mini-blocks", ev.close.number))
				return
			}
			if err := s.finish(acc, ev.close.firstMini, ev.close.lastMini); err != nil {
				fail(err)
				return
			}
		}
	}
}

// finish hashes the block's tries, builds, signs and stores the header and makes
// the block the sealed head.
func (s *Sequencer) finish(a *blockAcc, firstMini, lastMini uint64) error {
	start := time.Now()
	root, err := a.b.Commit(a.env.Number)
	if err != nil {
		return fmt.Errorf("state root of block %d: %w", a.env.Number, err)
	}
	parent := s.index.block(a.env.Number - 1)
	if parent == nil {
		return fmt.Errorf("parent of block %d not sealed", a.env.Number)
	}
	var gasUsed uint64
	if n := len(a.stored); n > 0 {
		gasUsed = a.stored[n-1].CumulativeGasUsed
	}
	txRoot := types.DeriveSha(a.txEnc, trie.NewStackTrie(nil))
	receiptRoot := types.DeriveSha(a.rcptEnc, trie.NewStackTrie(nil))
	s.stats.roots.Add(int64(time.Since(start)))
	header := chain.SealHeaderRoots(a.env, parent.hash, root, txRoot, receiptRoot, types.MergeBloom(a.full), gasUsed)
	var sig []byte
	if s.Following() {
		// A follower never signs: its block must be the one the sequencer signed.
		want, err := s.awaitHeader(a.env.Number)
		if err != nil {
			return err
		}
		if err := checkSealed(header, firstMini, lastMini, want); err != nil {
			return err
		}
		sig = want.Signature
	} else {
		signed, err := chain.SignHeader(header, s.key)
		if err != nil {
			return err
		}
		sig = signed.Signature
	}
	storeStart := time.Now()
	rec := &store.BlockRecord{Header: header, Signature: sig, FirstMini: firstMini, LastMini: lastMini}
	if err := s.store.PutBlock(rec); err != nil {
		return fmt.Errorf("store block %d: %w", a.env.Number, err)
	}
	if s.Following() {
		// Verified: the block record and the mini-blocks logged without a sync
		// become durable together (a replica fetches anything later again).
		if err := s.store.Sync(); err != nil {
			return fmt.Errorf("sync block %d: %w", a.env.Number, err)
		}
		s.headers.drop(a.env.Number)
	}
	s.stats.blockStore.Add(int64(time.Since(storeStart)))
	s.index.addSealed(&sealed{header: header, hash: header.Hash(), sig: sig, firstMini: firstMini,
		lastMini: lastMini, txs: a.txs, senders: a.senders, receipts: a.stored})
	// "latest" is this block from now on: the loop stops recording for older ones.
	s.undo.prune(a.env.Number)
	s.hub.PublishHead(&rpc.HeadEvent{Header: header, Hash: header.Hash(), Signature: sig, FirstMini: firstMini, LastMini: lastMini})
	s.m.RecordBlock(a.env.Number, len(a.txs), header.GasUsed, time.Since(start))
	if s.pool != nil {
		s.m.RecordPool(s.pool.Stats())
	}
	s.log.Debug("Sealed block", "number", a.env.Number, "hash", header.Hash(), "txs", len(a.txs), "gas", header.GasUsed,
		"root", root, "elapsed", time.Since(start))
	return nil
}

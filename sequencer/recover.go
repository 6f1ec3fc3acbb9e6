package sequencer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/state"
	"github.com/kestrel-l2/kestrel/store"
)

// GenesisHeader is the header of block 0 of g, with the state root of its
// allocation.
func GenesisHeader(g *chain.Genesis, root common.Hash) *types.Header {
	env := chain.BlockEnv{Number: 0, Time: g.Timestamp, BaseFee: g.BaseFee, GasLimit: g.GasLimit, Coinbase: g.Coinbase}
	h := chain.SealHeader(env, common.Hash{}, root, nil, nil)
	h.Extra = g.ExtraData
	return h
}

// createChain initialises a new data directory with the genesis block.
func (s *Sequencer) createChain(genesisJSON []byte) error {
	s.state = state.New()
	s.merkle = state.NewMerkle(s.cfg.RetainRoots)
	diff := s.genesis.AllocDiff()
	s.state.Commit(0, diff)
	root, err := s.merkle.Apply(0, diff)
	if err != nil {
		return fmt.Errorf("genesis root: %w", err)
	}
	header := GenesisHeader(s.genesis, root)
	signed, err := chain.SignHeader(header, s.key)
	if err != nil {
		return err
	}
	if err := s.store.PutBlock(&store.BlockRecord{Header: header, Signature: signed.Signature}); err != nil {
		return err
	}
	v := s.state.View()
	err = s.writeSnapshot(0, v)
	v.Release()
	if err != nil {
		return err
	}
	if err := s.store.PutGenesis(genesisJSON); err != nil {
		return err
	}
	s.index.addSealed(&sealed{header: header, hash: header.Hash(), sig: signed.Signature})
	s.openNext(chain.BlockEnv{Number: 0, Time: header.Time, BaseFee: header.BaseFee, GasLimit: header.GasLimit}, 0)
	s.log.Info("Created chain", "genesis", header.Hash(), "root", root, "chainId", s.genesis.ChainID)
	return nil
}

// recoverChain rebuilds the state from the newest usable snapshot and replays the
// mini-block log after it, re-deriving any block record a crash lost. It ends
// with the last logged block open again, so that the loop continues it.
func (s *Sequencer) recoverChain(ctx context.Context) error {
	start := time.Now()
	metas, err := s.store.Snapshots()
	if err != nil {
		return err
	}
	var meta *store.SnapshotMeta
	var base *store.BlockRecord
	for i := len(metas) - 1; i >= 0; i-- {
		rec, err := s.store.Block(metas[i].Block)
		if errors.Is(err, store.ErrNotFound) {
			continue // the block was not sealed before a crash; use an older snapshot
		}
		if err != nil {
			return err
		}
		meta, base = &metas[i], rec
		break
	}
	if meta == nil {
		return errors.New("no usable state snapshot in the data directory")
	}
	s.state = state.New()
	s.merkle = state.NewMerkle(s.cfg.RetainRoots)
	full := &chain.StateDiff{}
	err = s.store.ReadSnapshot(meta.ID, func(a *store.SnapshotAccount) error {
		s.state.Restore(a.Address, state.Account{Nonce: a.Nonce, Balance: *a.Balance, CodeHash: a.CodeHash}, a.Code, a.Storage)
		ad := chain.AccountDiff{Address: a.Address, Nonce: a.Nonce, Balance: *a.Balance, CodeHash: a.CodeHash}
		if ad.CodeHash == (common.Hash{}) {
			ad.CodeHash = types.EmptyCodeHash
		}
		for k, v := range a.Storage {
			ad.Storage = append(ad.Storage, chain.SlotDiff{Key: k, Value: v})
		}
		full.Accounts = append(full.Accounts, ad)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read snapshot %d: %w", meta.ID, err)
	}
	s.state.SetIndex(meta.MiniIndex)
	full.Sort()
	root, err := s.merkle.Apply(meta.Block, full)
	if err != nil {
		return fmt.Errorf("rebuild tries: %w", err)
	}
	if root != base.Header.Root {
		return fmt.Errorf("snapshot %d state root %s does not match block %d root %s", meta.ID, root, meta.Block, base.Header.Root)
	}
	s.lastSnap = meta.Block
	s.lastIndex = meta.MiniIndex
	s.miniHead.Store(meta.MiniIndex) // the head even when nothing is replayed after the snapshot
	// Recent sealed headers for BLOCKHASH and the RPC.
	from := uint64(0)
	if meta.Block > 256 {
		from = meta.Block - 256
	}
	for n := from; n <= meta.Block; n++ {
		rec, err := s.store.Block(n)
		if err != nil {
			return fmt.Errorf("block %d: %w", n, err)
		}
		s.index.addSealed(&sealed{header: rec.Header, hash: rec.Header.Hash(), sig: rec.Signature, firstMini: rec.FirstMini, lastMini: rec.LastMini})
	}
	s.openNext(chain.BlockEnv{Number: base.Header.Number.Uint64(), Time: base.Header.Time, BaseFee: base.Header.BaseFee, GasLimit: base.Header.GasLimit}, base.Header.GasUsed)
	if s.Following() {
		// Only verified blocks are replayed: mini-blocks after the last block
		// whose signed header matched are fetched from the stream again.
		if err := s.dropUnverified(); err != nil {
			return err
		}
	}
	replayed := 0
	err = s.store.MiniBlocks(meta.MiniIndex+1, func(mb *chain.MiniBlock) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if mb.Index != s.lastIndex+1 {
			return fmt.Errorf("mini-block log gap: have %d, next is %d", s.lastIndex, mb.Index)
		}
		if signer, err := mb.Signer(); err != nil || signer != s.signer {
			return fmt.Errorf("mini-block %d not signed by this sequencer (%s): %v", mb.Index, s.signer, err)
		}
		if mb.Env.Number != s.open.env.Number {
			if mb.Env.Number != s.open.env.Number+1 || s.open.miniCount == 0 {
				return fmt.Errorf("mini-block %d belongs to block %d, expected %d", mb.Index, mb.Env.Number, s.open.env.Number)
			}
			if err := s.resealOpen(); err != nil {
				return err
			}
			s.open.env = mb.Env
		} else if s.open.miniCount == 0 {
			s.open.env = mb.Env // the block as it was opened before the crash
		}
		if mb.IndexInBlock != s.open.miniCount {
			return fmt.Errorf("mini-block %d has position %d in block %d, expected %d", mb.Index, mb.IndexInBlock, mb.Env.Number, s.open.miniCount)
		}
		if s.open.miniCount == 0 {
			s.open.openedAtMs = mb.TimestampMs
		}
		s.applyMiniBlock(mb)
		replayed++
		return nil
	})
	if err != nil {
		return fmt.Errorf("replay mini-block log: %w", err)
	}
	if s.open.miniCount > 0 {
		// The last logged block may have been sealed before the node stopped (it
		// stopped between the block's close and the next block's first
		// mini-block): a sealed block never changes, so seal it again, check it,
		// and continue with the next one.
		if _, err := s.store.Block(s.open.env.Number); err == nil {
			if err := s.resealOpen(); err != nil {
				return err
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	if err := s.store.Sync(); err != nil {
		return err
	}
	if s.open.miniCount > 0 {
		// The reopened block's mini-blocks so far, for the sealer to continue.
		if s.sealAcc, err = s.accFor(s.open); err != nil {
			return err
		}
	}
	s.log.Info("Recovered chain", "snapshotBlock", meta.Block, "replayedMiniBlocks", replayed, "head", s.index.headNumber(),
		"openBlock", s.open.env.Number, "miniBlock", s.lastIndex, "elapsed", time.Since(start))
	return nil
}

// dropUnverified deletes the logged mini-blocks after the last sealed (for a
// follower: verified) block.
func (s *Sequencer) dropUnverified() error {
	last, ok, err := s.store.LastBlock()
	if err != nil || !ok {
		return err
	}
	rec, err := s.store.Block(last)
	if err != nil {
		return err
	}
	// A snapshot of a block after the last verified one (written before a
	// crash let the block's check finish) is not trusted either.
	if n, err := s.store.UnlistSnapshotsAfter(last); err != nil {
		return fmt.Errorf("drop unverified snapshots: %w", err)
	} else if n > 0 {
		s.log.Warn("Dropped snapshots of unverified blocks", "after", last, "count", n)
	}
	keep := rec.LastMini
	if metas, err := s.store.Snapshots(); err == nil && len(metas) > 0 && metas[len(metas)-1].MiniIndex > keep {
		keep = metas[len(metas)-1].MiniIndex // a bootstrap snapshot: its block has no mini-blocks here
	}
	n, err := s.store.TruncateMiniBlocks(keep)
	if err != nil {
		return fmt.Errorf("drop unverified mini-blocks: %w", err)
	}
	if n > 0 {
		s.log.Info("Dropped mini-blocks of an unverified block; they are fetched again", "after", keep, "count", n, "block", last)
	}
	return nil
}

// resealOpen seals the open block synchronously during replay, checking the
// result against a stored record when one exists.
func (s *Sequencer) resealOpen() error {
	ob := s.open
	acc, err := s.accFor(ob)
	if err != nil {
		return err
	}
	stored, err := s.store.Block(ob.env.Number)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := s.finish(acc, ob.firstMini, ob.lastMini); err != nil {
		return err
	}
	if stored != nil {
		if got := s.index.block(ob.env.Number).hash; got != stored.Header.Hash() {
			return fmt.Errorf("replayed block %d hash %s differs from stored %s", ob.env.Number, got, stored.Header.Hash())
		}
	}
	s.openNext(ob.env, ob.gasUsed)
	return nil
}

// accFor builds the sealer's accumulator for a block from what it holds so far.
func (s *Sequencer) accFor(ob *openBlock) (*blockAcc, error) {
	acc, err := s.newAcc(ob.env)
	if err != nil {
		return nil, err
	}
	if err := acc.add(ob.txs, ob.senders, ob.receipts, chain.MergeDiffs(ob.diffs)); err != nil {
		return nil, err
	}
	return acc, nil
}

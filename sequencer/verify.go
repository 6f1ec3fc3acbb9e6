package sequencer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/exec"
	"github.com/kestrel-l2/kestrel/core/state"
	"github.com/kestrel-l2/kestrel/store"
)

// VerifyReport is what Verify found.
type VerifyReport struct {
	MiniBlocks   uint64
	Transactions uint64
	Blocks       uint64      // sealed blocks whose roots were recomputed and compared
	HeadRoot     common.Hash // state root after the last sealed block
	HeadBlock    uint64
	// ExecTime is the time spent executing mini-blocks and committing their
	// diffs to the flat state (no decoding, checks or roots).
	ExecTime time.Duration
}

// Verify re-executes the whole mini-block log of a data directory from genesis
// with the reference executor and checks that every receipt and state diff is
// byte-identical to the logged one and that every stored block header is the one
// the re-execution derives (state root included). The store must not be open
// elsewhere.
func Verify(ctx context.Context, dataDir string) (*VerifyReport, error) {
	st, err := store.Open(dataDir+"/chain", store.Options{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	gj, err := st.Genesis()
	if err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	g := new(chain.Genesis)
	if err := json.Unmarshal(gj, g); err != nil {
		return nil, err
	}
	cfg := g.ChainConfig()
	flat, merkle := state.New(), state.NewMerkle(2)
	gd := g.AllocDiff()
	flat.Commit(0, gd)
	root, err := merkle.Apply(0, gd)
	if err != nil {
		return nil, err
	}
	genesis, err := st.Block(0)
	if err != nil {
		return nil, fmt.Errorf("block 0: %w", err)
	}
	if want := GenesisHeader(g, root); want.Hash() != genesis.Header.Hash() {
		return nil, fmt.Errorf("genesis header %s, derived %s", genesis.Header.Hash(), want.Hash())
	}
	hashes := map[uint64]common.Hash{0: genesis.Header.Hash()}
	getHash := func(n uint64) common.Hash { return hashes[n] }
	rep := &VerifyReport{HeadBlock: 0, HeadRoot: root}

	type blockAcc struct {
		env      chain.BlockEnv
		txs      []*chain.MiniBlock
		diffs    []*chain.StateDiff
		first    uint64
		last     uint64
		gasUsed  uint64
		received bool
	}
	var cur *blockAcc
	seal := func(b *blockAcc) error {
		rec, err := st.Block(b.env.Number)
		if errors.Is(err, store.ErrNotFound) {
			return nil // the open block when the node stopped
		}
		if err != nil {
			return err
		}
		root, err := merkle.Apply(b.env.Number, chain.MergeDiffs(b.diffs))
		if err != nil {
			return err
		}
		var txs []*types.Transaction
		var senders []common.Address
		var receipts []*chain.Receipt
		for _, mb := range b.txs {
			txs = append(txs, mb.Txs...)
			senders = append(senders, mb.Senders...)
			receipts = append(receipts, mb.Receipts...)
		}
		full := chain.FullReceipts(b.env, common.Hash{}, txs, senders, receipts)
		header := chain.SealHeader(b.env, hashes[b.env.Number-1], root, txs, full)
		if header.Hash() != rec.Header.Hash() {
			return fmt.Errorf("block %d: derived header %s (root %s), stored %s (root %s)", b.env.Number, header.Hash(), root, rec.Header.Hash(), rec.Header.Root)
		}
		if rec.FirstMini != b.first || rec.LastMini != b.last {
			return fmt.Errorf("block %d: stored mini-block range %d-%d, log has %d-%d", b.env.Number, rec.FirstMini, rec.LastMini, b.first, b.last)
		}
		hashes[b.env.Number] = header.Hash()
		rep.Blocks++
		rep.HeadBlock, rep.HeadRoot = b.env.Number, root
		return nil
	}
	var last uint64
	err = st.MiniBlocks(1, func(mb *chain.MiniBlock) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if mb.Index != last+1 {
			return fmt.Errorf("gap in the log after mini-block %d (next %d)", last, mb.Index)
		}
		last = mb.Index
		if cur == nil || mb.Env.Number != cur.env.Number {
			if cur != nil {
				if err := seal(cur); err != nil {
					return err
				}
			}
			cur = &blockAcc{env: mb.Env, first: mb.Index}
		}
		req := &exec.Request{GasUsed: cur.gasUsed, BeaconRoot: mb.BeaconRootCall}
		if mb.ParentHashCall {
			h := mb.ParentHash
			if h != hashes[mb.Env.Number-1] {
				return fmt.Errorf("mini-block %d stored parent hash %s, block %d is %s", mb.Index, h, mb.Env.Number-1, hashes[mb.Env.Number-1])
			}
			req.ParentHash = &h
		} else if !cur.received {
			parent := hashes[mb.Env.Number-1]
			req.Lazy = parentSlot(mb.Env.Number, func() common.Hash { return parent })
		}
		if mb.ParentHashCall {
			cur.received = true
		}
		for i, tx := range mb.Txs {
			req.Txs = append(req.Txs, exec.Tx{Tx: tx, Sender: mb.Senders[i]})
		}
		env := &exec.Env{Config: cfg, Block: mb.Env, GetHash: vm.GetHashFunc(getHash)}
		execStart := time.Now()
		res, err := exec.Sequential{}.Execute(ctx, flat.Head(), env, req)
		execTime := time.Since(execStart)
		if err != nil {
			return fmt.Errorf("mini-block %d: %w", mb.Index, err)
		}
		if len(res.Rejected) > 0 {
			return fmt.Errorf("mini-block %d: transaction %s fails on re-execution: %v", mb.Index, res.Rejected[0].Tx.Tx.Hash(), res.Rejected[0].Err)
		}
		if err := sameEncoding("receipts", res.Receipts, mb.Receipts); err != nil {
			return fmt.Errorf("mini-block %d: %w", mb.Index, err)
		}
		da, err := res.Diff.MarshalBinary()
		if err != nil {
			return err
		}
		db, err := mb.Diff.MarshalBinary()
		if err != nil {
			return err
		}
		if !bytes.Equal(da, db) {
			return fmt.Errorf("mini-block %d: re-executed state diff differs from the log", mb.Index)
		}
		commitStart := time.Now()
		flat.Commit(mb.Index, mb.Diff)
		rep.ExecTime += execTime + time.Since(commitStart)
		cur.txs = append(cur.txs, mb)
		cur.diffs = append(cur.diffs, mb.Diff)
		cur.last = mb.Index
		cur.gasUsed = res.GasUsed
		rep.MiniBlocks++
		rep.Transactions += uint64(len(mb.Txs))
		return nil
	})
	if err != nil {
		return rep, err
	}
	if cur != nil {
		if err := seal(cur); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func sameEncoding(what string, a, b any) error {
	ea, err := rlp.EncodeToBytes(a)
	if err != nil {
		return err
	}
	eb, err := rlp.EncodeToBytes(b)
	if err != nil {
		return err
	}
	if !bytes.Equal(ea, eb) {
		return fmt.Errorf("re-executed %s differ from the log", what)
	}
	return nil
}

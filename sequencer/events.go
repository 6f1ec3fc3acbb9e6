package sequencer

import (
	"context"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/rpc"
)

// The sequencer feeds eth_subscribe through rpc.EventSource: the loop publishes
// each durable mini-block, the sealer each sealed header and the RPC backend each
// admitted transaction; subscribers behind the hub's window replay mini-blocks
// from the store.

var errStopIter = errors.New("stop iteration")

// publishMiniBlock hands a durable mini-block to subscribers. The pending block
// set by applyMiniBlock holds the block's transactions up to this mini-block's.
func (s *Sequencer) publishMiniBlock(mb *chain.MiniBlock) {
	p := s.index.getPending()
	s.hub.PublishMiniBlock(&rpc.MiniBlockEvent{Mini: mb, BlockTxs: p.txs, BlockSenders: p.senders, BlockReceipts: p.receipts})
}

func (b *backend) Hub() *rpc.Hub         { return b.s.hub }
func (b *backend) MiniBlockHead() uint64 { return b.s.miniHead.Load() }

// MiniBlockEvents reads durable mini-blocks from the store. Events need the
// block's earlier transactions (for transaction and log positions), so reading
// starts at the first mini-block of from's block.
func (b *backend) MiniBlockEvents(ctx context.Context, from uint64, max int) ([]*rpc.MiniBlockEvent, error) {
	s := b.s
	head := s.miniHead.Load()
	if from == 0 || from > head || max <= 0 {
		return nil, nil
	}
	first, err := s.store.MiniBlock(from)
	if err != nil {
		return nil, fmt.Errorf("read mini-block %d: %w", from, err)
	}
	var (
		out      []*rpc.MiniBlockEvent
		txs      []*types.Transaction
		senders  []common.Address
		receipts []*chain.Receipt
	)
	err = s.store.MiniBlocks(from-uint64(first.IndexInBlock), func(mb *chain.MiniBlock) error {
		if mb.Index > head || len(out) >= max {
			return errStopIter
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if mb.IndexInBlock == 0 {
			// A new block: fresh slices, earlier events keep their prefixes.
			txs, senders, receipts = nil, nil, nil
		}
		txs = append(txs, mb.Txs...)
		senders = append(senders, mb.Senders...)
		receipts = append(receipts, mb.Receipts...)
		if mb.Index >= from {
			out = append(out, &rpc.MiniBlockEvent{Mini: mb, BlockTxs: txs[:len(txs):len(txs)],
				BlockSenders: senders[:len(senders):len(senders)], BlockReceipts: receipts[:len(receipts):len(receipts)]})
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopIter) {
		return nil, err
	}
	return out, nil
}

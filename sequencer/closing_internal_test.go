package sequencer

import (
	"context"
	"io"
	"log/slog"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/kestrel-l2/kestrel/core/chain"
)

// TestTransactionWhileBlockSeals: between the loop handing a block to the
// sealer (the next block is pending) and the sealer making it the head, the
// block's transactions are indexed but the block is neither pending nor sealed.
// A lookup in that window must find the transaction, not fail with "header not
// found" (a wallet polling eth_getTransactionByHash hit exactly that).
func TestTransactionWhileBlockSeals(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.RPC.Addr = "127.0.0.1:0"
	cfg.SnapshotEvery = 0
	s, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })

	head := s.index.headNumber()
	n := head + 1
	tx := types.NewTx(&types.LegacyTx{Nonce: 7, To: &common.Address{1}, Value: big.NewInt(1), Gas: 21000, GasPrice: big.NewInt(1)})
	sender := common.Address{2}
	env := chain.BlockEnv{Number: n, Time: 1234, BaseFee: big.NewInt(9)}
	s.index.setPending(&pendingBlock{env: env, txs: []*types.Transaction{tx}, senders: []common.Address{sender}}, []*types.Transaction{tx}, 0)

	b := &backend{s}
	check := func(when string) {
		t.Helper()
		info, err := b.Transaction(context.Background(), tx.Hash())
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if info == nil || info.Tx.Hash() != tx.Hash() || info.BlockNumber != n || info.Sealed || info.Sender != sender || info.Time != env.Time {
			t.Fatalf("%s: got %+v", when, info)
		}
	}
	check("pending")

	// Hand-off: the next block opens while block n waits for its seal.
	s.index.setPending(&pendingBlock{env: chain.BlockEnv{Number: n + 1, Time: 1235, BaseFee: big.NewInt(9)}}, nil, 0)
	check("closed, not sealed")
	// Mini-blocks of the next block do not drop it either.
	s.index.setPending(&pendingBlock{env: chain.BlockEnv{Number: n + 1, Time: 1235, BaseFee: big.NewInt(9)}}, nil, 0)
	check("closed, next block growing")

	// Sealing makes it a sealed block and forgets the closed copy.
	s.index.addSealed(&sealed{header: &types.Header{Number: new(big.Int).SetUint64(n), BaseFee: big.NewInt(9), Time: env.Time},
		hash: common.Hash{3}, txs: []*types.Transaction{tx}, senders: []common.Address{sender}, lastMini: 1})
	if p := s.index.unsealed(n); p != nil {
		t.Fatalf("block %d still held as unsealed after its seal", n)
	}
	info, err := b.Transaction(context.Background(), tx.Hash())
	if err != nil || info == nil || !info.Sealed || info.BlockHash != (common.Hash{3}) {
		t.Fatalf("sealed: %+v, %v", info, err)
	}
}

package sequencer

import (
	"context"
	"io"
	"log/slog"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/kestrel-l2/kestrel/core/chain"
)

// TestGenesisAllocDropped: once the chain is built the node keeps only the
// genesis parameters (a large allocation is hundreds of MB of heap), both when
// it creates the chain and when it reopens it; the caller's genesis is left
// as it was, and the state still holds the allocation.
func TestGenesisAllocDropped(t *testing.T) {
	g := chain.DevGenesis()
	funded := common.HexToAddress("0x1234")
	g.Alloc[funded] = chain.Account{Balance: big.NewInt(777)}
	n := len(g.Alloc)
	dir := t.TempDir()
	for _, phase := range []string{"create", "reopen"} {
		cfg := DefaultConfig()
		cfg.DataDir = dir
		cfg.RPC.Addr = "127.0.0.1:0"
		cfg.Genesis = g
		s, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatalf("%s: %v", phase, err)
		}
		if got := s.Genesis(); got.Alloc != nil || got.ChainID != g.ChainID || got.GasLimit != g.GasLimit || s.cfg.Genesis != nil {
			t.Errorf("%s: node keeps the allocation (%d accounts) or lost parameters: %+v", phase, len(got.Alloc), got)
		}
		if len(g.Alloc) != n {
			t.Errorf("%s: caller's genesis changed: %d accounts, want %d", phase, len(g.Alloc), n)
		}
		v := s.state.View()
		acct, ok := v.Account(funded)
		v.Release()
		if !ok || acct.Balance.Uint64() != 777 {
			t.Errorf("%s: funded account holds %v (present %v), want 777", phase, acct.Balance, ok)
		}
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

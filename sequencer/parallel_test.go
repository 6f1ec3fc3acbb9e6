package sequencer_test

import (
	"context"
	"io"
	"math/big"
	"net/http"
	"regexp"
	"strconv"
	"testing"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/kestrel-l2/kestrel/core/exec"
	"github.com/kestrel-l2/kestrel/sequencer"
)

// TestParallelEngineChainVerifies runs the sequencer on the parallel engine
// (forced, for every mini-block) under bursts of transfers between the dev
// accounts, then re-executes the whole log with the sequential reference
// engine: every receipt, diff and block root must be identical.
func TestParallelEngineChainVerifies(t *testing.T) {
	dir := t.TempDir()
	var parallel float64
	t.Run("run", func(t *testing.T) {
		seq, ec, _ := startSequencer(t, dir, func(c *sequencer.Config) {
			c.Exec = exec.ParallelConfig{Mode: exec.ModeParallel, MinTxs: 1}
			c.MetricsAddr = "127.0.0.1:0"
		})
		ctx := context.Background()
		wallets := make([]*wallet, 8)
		for i := range wallets {
			wallets[i] = devWallet(i)
		}
		var last []*types.Transaction
		for round := range 6 {
			last = last[:0]
			for i, w := range wallets {
				to := wallets[(i+round+1)%len(wallets)].addr
				tx := w.dynamic(t, &to, big.NewInt(int64(1000+round)), 21000, nil)
				if err := ec.SendTransaction(ctx, tx); err != nil {
					t.Fatalf("send: %v", err)
				}
				last = append(last, tx)
			}
		}
		for _, tx := range last {
			if r := waitReceipt(t, ec, tx.Hash()); r.Status != 1 {
				t.Fatalf("receipt %s: status %d", tx.Hash(), r.Status)
			}
		}
		resp, err := http.Get("http://" + seq.MetricsAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := regexp.MustCompile(`(?m)^kestrel_exec_parallel_requests_total (\S+)$`).FindSubmatch(body)
		if m == nil {
			t.Fatalf("no parallel engine metric in\n%s", body)
		}
		parallel, _ = strconv.ParseFloat(string(m[1]), 64)
	})
	if parallel == 0 {
		t.Fatal("no mini-block ran on the parallel engine")
	}
	rep, err := sequencer.Verify(context.Background(), dir)
	if err != nil {
		t.Fatalf("verify the parallel engine's chain: %v", err)
	}
	if rep.Transactions < 48 {
		t.Fatalf("verified %d transactions, want 48", rep.Transactions)
	}
	t.Logf("%d mini-blocks ran on the parallel engine; verified %+v", int(parallel), rep)
}

package sequencer_test

import (
	"context"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/kestrel-l2/kestrel/sequencer"
)

// TestTraceCallAtTxIndex: debug_traceCall with txIndex sees the block's state
// before that transaction (replayed from the parent), without it the block's
// end; the prestate tracer shows the sender's nonce at each point.
func TestTraceCallAtTxIndex(t *testing.T) {
	_, ec, rc := startSequencer(t, t.TempDir(), func(c *sequencer.Config) { c.BlockInterval = time.Second })
	ctx := context.Background()
	alice := devWallet(0)
	to := common.Address{0xbe, 0xef}
	// Three transfers from alice, sent together: they land in one block.
	var hashes []common.Hash
	for range 3 {
		tx := alice.dynamic(t, &to, big.NewInt(1), 21000, nil)
		if err := ec.SendTransaction(ctx, tx); err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, tx.Hash())
	}
	var block *big.Int
	var first uint
	for i, h := range hashes {
		r := waitReceipt(t, ec, h)
		if i == 0 {
			block, first = r.BlockNumber, r.TransactionIndex
		} else if r.BlockNumber.Cmp(block) != 0 {
			t.Skipf("the transfers spread over blocks %v and %v", block, r.BlockNumber)
		}
	}
	nonceAt := func(blockTag any, cfg map[string]any) uint64 {
		t.Helper()
		cfg["tracer"] = "prestateTracer"
		var pre map[common.Address]struct {
			Nonce uint64 `json:"nonce"`
		}
		var raw json.RawMessage
		call := map[string]any{"from": alice.addr, "to": to, "value": "0x1"}
		if err := rc.CallContext(ctx, &raw, "debug_traceCall", call, blockTag, cfg); err != nil {
			t.Fatalf("debug_traceCall %v %v: %v", blockTag, cfg, err)
		}
		if err := json.Unmarshal(raw, &pre); err != nil {
			t.Fatalf("prestate %s: %v", raw, err)
		}
		return pre[alice.addr].Nonce
	}
	tag := hexutil.EncodeBig(block)
	// Alice's nonces before her transfers were 0, 1, 2 (dev account 0 sent nothing else).
	for k := range 3 {
		if got := nonceAt(tag, map[string]any{"txIndex": hexutil.Uint(first + uint(k))}); got != uint64(k) {
			t.Errorf("txIndex %d: nonce %d, want %d", first+uint(k), got, k)
		}
	}
	if got := nonceAt(tag, map[string]any{}); got != 3 {
		t.Errorf("block end: nonce %d, want 3", got)
	}
	var raw json.RawMessage
	err := rc.CallContext(ctx, &raw, "debug_traceCall", map[string]any{"from": alice.addr, "to": to}, tag, map[string]any{"txIndex": "0x3e8"})
	if err == nil {
		t.Fatal("txIndex out of range accepted")
	}
}

package sequencer_test

import (
	"context"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/kestrel-l2/kestrel/sequencer"
)

type miniNote struct {
	Index        hexutil.Uint64 `json:"index"`
	BlockNumber  hexutil.Uint64 `json:"blockNumber"`
	Transactions []struct {
		Hash common.Hash `json:"hash"`
	} `json:"transactions"`
	Receipts []map[string]any `json:"receipts"`
	raw      json.RawMessage
}

// collectMinis reads mini-block notifications until every hash in want was seen,
// checking that indices follow each other from first.
func collectMinis(t *testing.T, ch chan json.RawMessage, sub *gethrpc.ClientSubscription, first uint64, want map[common.Hash]bool) []miniNote {
	t.Helper()
	var out []miniNote
	timeout := time.After(20 * time.Second)
	next := first
	for len(want) > 0 {
		select {
		case raw := <-ch:
			var n miniNote
			if err := json.Unmarshal(raw, &n); err != nil {
				t.Fatalf("notification %s: %v", raw, err)
			}
			n.raw = raw
			if uint64(n.Index) != next {
				t.Fatalf("mini-block %d arrived where %d was due", n.Index, next)
			}
			next++
			for _, tx := range n.Transactions {
				delete(want, tx.Hash)
			}
			out = append(out, n)
		case err := <-sub.Err():
			t.Fatalf("subscription: %v", err)
		case <-timeout:
			t.Fatalf("%d transactions never arrived in a mini-block", len(want))
		}
	}
	return out
}

func sendTransfers(t *testing.T, ec *ethclient.Client, w *wallet, n int) map[common.Hash]bool {
	t.Helper()
	hashes := make(map[common.Hash]bool)
	to := common.Address{0xbe, 0xef}
	for range n {
		tx := w.dynamic(t, &to, big.NewInt(1), 21000, nil)
		if err := ec.SendTransaction(context.Background(), tx); err != nil {
			t.Fatal(err)
		}
		hashes[tx.Hash()] = true
	}
	return hashes
}

// TestMiniBlockSubscription follows the miniBlocks feed of a real sequencer over
// WebSocket: live, after a dropped socket (fromIndex), and after a restart of
// the sequencer, when the replay comes from the store and must print exactly
// what the live feed printed.
func TestMiniBlockSubscription(t *testing.T) {
	dir := t.TempDir()
	seq, ec, _ := startSequencer(t, dir, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ws, err := gethrpc.DialContext(ctx, "ws://"+seq.RPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	wec := ethclient.NewClient(ws)
	heads := make(chan *types.Header, 64)
	hsub, err := wec.SubscribeNewHead(ctx, heads)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan json.RawMessage, 1024)
	sub, err := ws.EthSubscribe(ctx, ch, "miniBlocks", map[string]any{"fromIndex": 1})
	if err != nil {
		t.Fatal(err)
	}
	w := devWallet(1)
	live := collectMinis(t, ch, sub, 1, sendTransfers(t, ec, w, 30))

	// Receipts in the feed equal eth_getTransactionReceipt's but for the block hash.
	for _, n := range live {
		for i, tx := range n.Transactions {
			r := waitReceipt(t, ec, tx.Hash)
			got := n.Receipts[i]
			if got["blockHash"] != nil {
				t.Fatalf("mini-block receipt with a block hash: %v", got)
			}
			if got["transactionIndex"] != hexutil.Uint64(r.TransactionIndex).String() ||
				got["cumulativeGasUsed"] != hexutil.Uint64(r.CumulativeGasUsed).String() ||
				got["gasUsed"] != hexutil.Uint64(r.GasUsed).String() || got["status"] != "0x1" ||
				got["blockNumber"] != hexutil.Uint64(r.BlockNumber.Uint64()).String() {
				t.Fatalf("feed receipt %v differs from %+v", got, r)
			}
		}
	}
	// newHeads: sealed headers with the hashes eth_getBlockByNumber gives.
	select {
	case h := <-heads:
		b, err := ec.HeaderByNumber(ctx, h.Number)
		if err != nil || b.Hash() != h.Hash() {
			t.Fatalf("newHeads %d hash %s, block %v %v", h.Number, h.Hash(), b, err)
		}
	case err := <-hsub.Err():
		t.Fatal(err)
	case <-ctx.Done():
		t.Fatal("no newHeads notification")
	}

	// Drop the socket, let mini-blocks go by, reconnect from the next index.
	lastSeen := uint64(live[len(live)-1].Index)
	ws.Close()
	missed := sendTransfers(t, ec, w, 10)
	for h := range missed {
		waitReceipt(t, ec, h)
	}
	ws2, err := gethrpc.DialContext(ctx, "ws://"+seq.RPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	ch2 := make(chan json.RawMessage, 1024)
	sub2, err := ws2.EthSubscribe(ctx, ch2, "miniBlocks", map[string]any{"fromIndex": hexutil.Uint64(lastSeen + 1)})
	if err != nil {
		t.Fatal(err)
	}
	again := collectMinis(t, ch2, sub2, lastSeen+1, missed)
	ws2.Close()

	// Restart: the hub is empty, the replay comes from the store.
	if err := seq.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	seq2, _, _ := startSequencer(t, dir, func(c *sequencer.Config) {})
	ws3, err := gethrpc.DialContext(ctx, "ws://"+seq2.RPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer ws3.Close()
	ch3 := make(chan json.RawMessage, 1024)
	sub3, err := ws3.EthSubscribe(ctx, ch3, "miniBlocks", map[string]any{"fromIndex": 1})
	if err != nil {
		t.Fatal(err)
	}
	all := append(live, again...)
	want := make(map[common.Hash]bool)
	for _, n := range all {
		for _, tx := range n.Transactions {
			want[tx.Hash] = true
		}
	}
	replayed := collectMinis(t, ch3, sub3, 1, want)
	for i, n := range all {
		if string(replayed[i].raw) != string(n.raw) {
			t.Fatalf("mini-block %d replayed from the store differs from the live feed:\nlive:   %s\nreplay: %s", n.Index, n.raw, replayed[i].raw)
		}
	}
}

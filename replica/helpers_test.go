package replica_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/replica"
	"github.com/kestrel-l2/kestrel/sequencer"
	"github.com/kestrel-l2/kestrel/stream"
)

// logBuffer collects log lines, for tests that check what was logged.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	t  *testing.T
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if testing.Verbose() {
		l.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLogger(t *testing.T) (*slog.Logger, *logBuffer) {
	lb := &logBuffer{t: t}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelInfo})), lb
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startSequencer runs a sequencer with the embedded stream server on a free
// port, snapshots every few blocks and short blocks.
func startSequencer(t *testing.T, dir string, mutate func(*sequencer.Config)) *sequencer.Sequencer {
	t.Helper()
	cfg := sequencer.DefaultConfig()
	cfg.DataDir = dir
	cfg.RPC.Addr = "127.0.0.1:0"
	cfg.BlockInterval = 200 * time.Millisecond
	cfg.SnapshotEvery = 4
	sc := stream.DefaultConfig()
	sc.Listen = "127.0.0.1:0"
	cfg.Stream = &sc
	if mutate != nil {
		mutate(&cfg)
	}
	log, _ := newLogger(t)
	seq, err := sequencer.New(context.Background(), cfg, log.With("node", "sequencer"))
	if err != nil {
		t.Fatalf("new sequencer: %v", err)
	}
	if err := seq.Start(context.Background()); err != nil {
		t.Fatalf("start sequencer: %v", err)
	}
	t.Cleanup(func() {
		if err := seq.Stop(context.Background()); err != nil {
			t.Errorf("stop sequencer: %v", err)
		}
	})
	return seq
}

func replicaConfig(seq *sequencer.Sequencer, dir string) replica.Config {
	cfg := replica.DefaultConfig()
	cfg.Node.DataDir = dir
	cfg.Node.RPC.Addr = "127.0.0.1:0"
	cfg.Node.SnapshotEvery = 4
	cfg.Stream.URL = seq.StreamURL()
	cfg.SequencerRPC = "http://" + seq.RPCAddr()
	cfg.SequencerAddress = seq.Signer()
	return cfg
}

// startReplica starts a replica of seq; the returned stop function is also
// registered as a cleanup (stopping twice is harmless).
func startReplica(t *testing.T, cfg replica.Config, log *slog.Logger) *replica.Replica {
	t.Helper()
	if log == nil {
		log, _ = newLogger(t)
	}
	r, err := replica.New(context.Background(), cfg, log.With("node", "replica"))
	if err != nil {
		t.Fatalf("new replica: %v", err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatalf("start replica: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Stop(context.Background()); err != nil {
			t.Errorf("stop replica: %v", err)
		}
	})
	return r
}

func dial(t *testing.T, addr string) *gethrpc.Client {
	t.Helper()
	c, err := gethrpc.Dial("http://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// waitApplied waits until the replica has sealed block n.
func waitSealed(t *testing.T, r *replica.Replica, n uint64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for r.Node().HeadNumber() < n {
		if time.Now().After(deadline) {
			t.Fatalf("replica sealed block %d, want %d (stats %+v)", r.Node().HeadNumber(), n, r.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wallet signs dev-chain transactions with a tracked nonce.
type wallet struct {
	key   *ecdsa.PrivateKey
	addr  common.Address
	nonce uint64
}

func devWallet(i int) *wallet {
	a := chain.DevAccounts()[i]
	return &wallet{key: a.Key, addr: a.Address}
}

var chainID = big.NewInt(chain.DevChainID)

func (w *wallet) tx(t *testing.T, to *common.Address, value *big.Int, gas uint64, data []byte) []byte {
	t.Helper()
	tx, err := types.SignNewTx(w.key, types.LatestSignerForChainID(chainID), &types.DynamicFeeTx{ChainID: chainID, Nonce: w.nonce,
		GasTipCap: big.NewInt(params.GWei), GasFeeCap: big.NewInt(10 * params.GWei), Gas: gas, To: to, Value: value, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	w.nonce++
	raw, err := tx.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// send submits raw transactions to a node and fails on any refusal.
func send(t *testing.T, c *gethrpc.Client, raws ...[]byte) []common.Hash {
	t.Helper()
	out := make([]common.Hash, len(raws))
	for i, raw := range raws {
		if err := c.Call(&out[i], "eth_sendRawTransaction", hexutil.Encode(raw)); err != nil {
			t.Fatalf("send transaction %d: %v", i, err)
		}
	}
	return out
}

// rawCall returns the JSON answer (result or error) of one request.
func rawCall(c *gethrpc.Client, method string, args ...any) string {
	var out json.RawMessage
	if err := c.CallContext(context.Background(), &out, method, args...); err != nil {
		return "error: " + err.Error()
	}
	return string(out)
}

// compareNodes sends the same read requests to both nodes at block n and
// reports every difference.
//
// History before from (the block a replica bootstrapped at) is not kept by b:
// it must answer those blocks with go-ethereum's pruned-history error, and the
// transactions in them are left out of the comparison.
func compareNodes(t *testing.T, a, b *gethrpc.Client, from, n uint64, addrs []common.Address, txs []common.Hash) {
	t.Helper()
	bn := hexutil.EncodeUint64(n)
	type req struct {
		method string
		args   []any
	}
	reqs := []req{{"eth_getBlockByNumber", []any{bn, true}}, {"eth_getBlockReceipts", []any{bn}}}
	for i := uint64(0); i <= n; i++ {
		if i > 0 && i < from {
			if got := rawCall(b, "eth_getBlockByNumber", hexutil.EncodeUint64(i), true); got != "error: pruned history unavailable" {
				t.Errorf("block %d before the bootstrap block %d: %.200s", i, from, got)
			}
			continue
		}
		reqs = append(reqs, req{"eth_getBlockByNumber", []any{hexutil.EncodeUint64(i), true}})
	}
	var kept []common.Hash
	for _, h := range txs {
		var r struct {
			BlockNumber hexutil.Uint64 `json:"blockNumber"`
		}
		if err := a.Call(&r, "eth_getTransactionReceipt", h); err != nil {
			t.Fatal(err)
		}
		if uint64(r.BlockNumber) >= from {
			kept = append(kept, h)
		}
	}
	txs = kept
	for _, addr := range addrs {
		reqs = append(reqs,
			req{"eth_getBalance", []any{addr, bn}},
			req{"eth_getTransactionCount", []any{addr, bn}},
			req{"eth_getCode", []any{addr, bn}},
			req{"eth_getStorageAt", []any{addr, "0x0", bn}},
			req{"eth_getProof", []any{addr, []string{"0x0", "0x1"}, bn}},
		)
	}
	for _, h := range txs {
		reqs = append(reqs, req{"eth_getTransactionByHash", []any{h}}, req{"eth_getTransactionReceipt", []any{h}})
	}
	diffs := 0
	for _, r := range reqs {
		x, y := rawCall(a, r.method, r.args...), rawCall(b, r.method, r.args...)
		if x != y {
			diffs++
			if diffs <= 5 {
				t.Errorf("%s%v differs:\n sequencer: %.400s\n replica:   %.400s", r.method, r.args, x, y)
			}
		}
	}
	if diffs > 0 {
		t.Fatalf("%d of %d answers differ", diffs, len(reqs))
	}
	t.Logf("%d answers equal at block %d", len(reqs), n)
}

// randomAddr is a fresh address derived from a seed.
func randomAddr(seed string, i int) common.Address {
	return common.BytesToAddress(crypto.Keccak256([]byte(fmt.Sprintf("%s/%d", seed, i))))
}

// blockHash reads a block's hash from a node.
func blockHash(t *testing.T, c *gethrpc.Client, n uint64) common.Hash {
	t.Helper()
	var h struct {
		Hash common.Hash `json:"hash"`
	}
	if err := c.Call(&h, "eth_getBlockByNumber", hexutil.EncodeUint64(n), false); err != nil {
		t.Fatal(err)
	}
	return h.Hash
}

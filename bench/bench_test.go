package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// Correctness tests run tiny workloads and assert outcomes only, never timings.

func smallWorkload(t testing.TB, kind Kind, txs, extra, senders int) *Workload {
	t.Helper()
	w, err := Generate(WorkloadConfig{Kind: kind, Txs: txs, Extra: extra, Senders: senders, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestWorkloadDeterministic(t *testing.T) {
	a := smallWorkload(t, KindERC20, 50, 10, 7)
	b := smallWorkload(t, KindERC20, 50, 10, 7)
	for i := range a.Txs {
		if !bytes.Equal(a.Txs[i].Raw, b.Txs[i].Raw) {
			t.Fatalf("tx %d differs between two generations", i)
		}
	}
	// Sender i mod 7, nonces rising by one per round.
	if tx := a.Txs[15]; tx.Sender != 1 || tx.Nonce != 2 {
		t.Fatalf("tx 15: sender %d nonce %d", tx.Sender, tx.Nonce)
	}
	if len(a.Throughput()) != 50 || len(a.Extra()) != 10 {
		t.Fatal("split")
	}
}

func TestBaseline(t *testing.T) {
	for _, kind := range Kinds {
		t.Run(string(kind), func(t *testing.T) {
			w := smallWorkload(t, kind, 200, 0, 20)
			for _, root := range []bool{false, true} {
				res, sdb, err := RunBaseline(w, w.Throughput(), BaselineOptions{BlockTxs: 64, Root: root})
				if err != nil {
					t.Fatal(err)
				}
				if res.Txs != 200 || res.Blocks != 4 || (root && (res.FinalRoot == nil || *res.FinalRoot == common.Hash{})) {
					t.Fatalf("result %+v", res)
				}
				if err := CheckBaselineState(w, w.Throughput(), sdb); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return nil
}

func TestKestrelEndToEnd(t *testing.T) {
	for _, kind := range Kinds {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			w := smallWorkload(t, kind, 200, 100, 20)
			ctx := context.Background()
			node, err := StartNode(ctx, w, NodeOptions{Dir: t.TempDir(), BlockInterval: 200 * time.Millisecond, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := node.Stop(); err != nil {
					t.Error(err)
				}
			}()
			// Small batches over several connections exercise the concurrent path.
			tr, err := RunThroughput(ctx, node.URL(), w, w.Throughput(), SendOptions{Conns: 3, Batch: 16})
			if err != nil {
				t.Fatal(err)
			}
			if tr.Txs != 200 || tr.TxPerSec <= 0 || tr.VerifiedStates != 40 {
				t.Fatalf("throughput result %+v", tr)
			}
			checkReceipts(t, node.URL(), w.Throughput())

			lr, err := RunLatency(ctx, node.URL(), w.Extra(), LatencyOptions{Rate: 200})
			if err != nil {
				t.Fatal(err)
			}
			if lr.OK != 100 || lr.Errors != 0 || lr.P50 <= 0 || lr.Max < lr.P99 {
				t.Fatalf("latency result %+v", lr)
			}
			checkReceipts(t, node.URL(), w.Extra())
		})
	}
}

// checkReceipts waits for every transaction's receipt (blocks seal after the
// mini-blocks) and asserts status 1.
func checkReceipts(t *testing.T, url string, txs []RawTx) {
	t.Helper()
	c, err := newRPCClient(url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	deadline := time.Now().Add(15 * time.Second)
	pending := txs
	for len(pending) > 0 {
		calls := make([]rpcCall, len(pending))
		for i, tx := range pending {
			calls[i] = rpcCall{"eth_getTransactionReceipt", []any{tx.Hash}}
		}
		rs, err := c.batch(calls)
		if err != nil {
			t.Fatal(err)
		}
		var next []RawTx
		for i, r := range rs {
			if r.Error != nil {
				t.Fatalf("receipt %s: %v", pending[i].Hash, r.Error)
			}
			if string(r.Result) == "null" {
				next = append(next, pending[i])
				continue
			}
			var rec struct {
				Status hexutil.Uint64 `json:"status"`
			}
			if err := json.Unmarshal(r.Result, &rec); err != nil || rec.Status != 1 {
				t.Fatalf("receipt of %s: %s", pending[i].Hash, r.Result)
			}
		}
		pending = next
		if len(pending) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d receipts missing", len(pending))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func TestRunReport(t *testing.T) {
	if testing.Short() {
		t.Skip("covered piecewise by the other tests")
	}
	dir := t.TempDir()
	var progress bytes.Buffer
	rep, err := Run(context.Background(), Options{Txs: 100, Senders: 10, Seed: 3, Rate: 100, Duration: 300 * time.Millisecond,
		Runs: 2, Dir: dir, BlockInterval: 200 * time.Millisecond, CPUProfile: dir + "/cpu.pprof", Progress: &progress})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if len(rep.Workloads) != 2 || len(rep.Workloads[0].Runs) != 2 || rep.Workloads[1].Median.KestrelTxPerSec <= 0 {
		t.Fatalf("report %+v", rep)
	}
	var table bytes.Buffer
	rep.WriteTable(&table)
	if !strings.Contains(table.String(), "erc20") {
		t.Fatal(table.String())
	}
	paths, err := rep.WriteFiles(dir + "/report")
	if err != nil || len(paths) != 2 {
		t.Fatal(paths, err)
	}
	for _, k := range Kinds {
		if _, err := os.Stat(dir + "/cpu-" + string(k) + ".pprof"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMedian(t *testing.T) {
	if Median([]float64{3, 1, 2}) != 2 || Median([]float64{4, 1, 2, 3}) != 2.5 || Median(nil) != 0 {
		t.Fatal("median")
	}
}

// Benchmarks: each iteration processes the whole workload (KESTREL_BENCH_TXS,
// default 20000, from 1000 senders). The tx/s metric covers only the measured
// phase; ns/op also includes per-iteration setup (building the baseline's
// pre-state, starting a node). `kestrel bench` is the full report with medians
// and the latency phase.

func benchTxs() int {
	if n, err := strconv.Atoi(os.Getenv("KESTREL_BENCH_TXS")); err == nil && n > 0 {
		return n
	}
	return 20_000
}

var (
	benchMu        sync.Mutex
	benchWorkloads = map[Kind]*Workload{}
)

func benchWorkload(b *testing.B, kind Kind) *Workload {
	benchMu.Lock()
	defer benchMu.Unlock()
	if w := benchWorkloads[kind]; w != nil && w.Config.Txs == benchTxs() {
		return w
	}
	w := smallWorkload(b, kind, benchTxs(), 0, 1000)
	benchWorkloads[kind] = w
	return w
}

func benchBaseline(b *testing.B, kind Kind, root bool) {
	w := benchWorkload(b, kind)
	var txs int
	var elapsed time.Duration
	b.ResetTimer()
	for range b.N {
		res, _, err := RunBaseline(w, w.Throughput(), BaselineOptions{Root: root})
		if err != nil {
			b.Fatal(err)
		}
		txs += res.Txs
		elapsed += res.Elapsed
	}
	b.ReportMetric(float64(txs)/elapsed.Seconds(), "tx/s")
}

func benchKestrel(b *testing.B, kind Kind) {
	w := benchWorkload(b, kind)
	var txs int
	var elapsed time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		node, err := StartNode(context.Background(), w, NodeOptions{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := RunThroughput(context.Background(), node.URL(), w, w.Throughput(), SendOptions{})
		b.StopTimer()
		if serr := node.Stop(); serr != nil {
			b.Error(serr)
		}
		if err != nil {
			b.Fatal(err)
		}
		txs += res.Txs
		elapsed += res.Elapsed
		b.StartTimer()
	}
	b.ReportMetric(float64(txs)/elapsed.Seconds(), "tx/s")
}

func BenchmarkGethBaselineETH(b *testing.B)           { benchBaseline(b, KindETH, false) }
func BenchmarkGethBaselineETHWithRoot(b *testing.B)   { benchBaseline(b, KindETH, true) }
func BenchmarkGethBaselineERC20(b *testing.B)         { benchBaseline(b, KindERC20, false) }
func BenchmarkGethBaselineERC20WithRoot(b *testing.B) { benchBaseline(b, KindERC20, true) }
func BenchmarkKestrelE2EETH(b *testing.B)             { benchKestrel(b, KindETH) }
func BenchmarkKestrelE2EERC20(b *testing.B)           { benchKestrel(b, KindERC20) }

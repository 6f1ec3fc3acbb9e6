package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/kestrel-l2/kestrel/core/exec"
)

// Engine benchmark tests run a few hundred transactions and check the report's
// shape and arithmetic, never its timings.

var lineRE = regexp.MustCompile(`^engine (\S+): kestrel (\d+) tx/s, geth (\d+) tx/s, ratio (\d+\.\d\d)$`)

func TestRunEngineReport(t *testing.T) {
	txs, runs := 300, 2
	if testing.Short() {
		txs, runs = 150, 1
	}
	dir := t.TempDir()
	var progress bytes.Buffer
	rep, err := RunEngine(context.Background(), EngineOptions{Txs: txs, BlockTxs: 60, Runs: runs, Seed: 3,
		CPUProfile: filepath.Join(dir, "cpu.pprof"), Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Workloads) != len(EngineKinds) || rep.Machine.NumCPU < 1 || rep.Machine.GoVersion == "" {
		t.Fatalf("report %+v", rep)
	}
	for i, w := range rep.Workloads {
		if w.Workload != EngineName(EngineKinds[i]) || w.Txs != txs || w.Blocks != (txs+59)/60 || w.Senders != 60 || len(w.Runs) != runs {
			t.Fatalf("%s: %+v", w.Workload, w)
		}
		if w.GasUsed == 0 || w.StateRoot == (common.Hash{}) || w.StateRoot == types.EmptyRootHash {
			t.Fatalf("%s: gas %d root %s", w.Workload, w.GasUsed, w.StateRoot)
		}
		for _, r := range w.Runs {
			for _, tm := range []EngineTiming{r.Geth, r.Sequential, r.Parallel, r.ParallelNoInference, r.ParallelProcs1, r.ParallelProcs2} {
				if tm.Elapsed <= 0 || tm.TxPerSec <= 0 || tm.MgasPerSec <= 0 {
					t.Fatalf("%s run %d: timing %+v", w.Workload, r.Run, tm)
				}
				// Gas per transaction is the same in every engine.
				if got := tm.MgasPerSec * 1e6 / tm.TxPerSec; math.Abs(got-float64(w.GasUsed)/float64(txs)) > 1e-6*got {
					t.Fatalf("%s: %.3f gas per tx, want %d/%d", w.Workload, got, w.GasUsed, txs)
				}
			}
			if r.ParallelProcs1.GOMAXPROCS != 1 || r.ParallelProcs2.GOMAXPROCS != 2 || r.ParallelProcs1.Workers != 1 || r.ParallelProcs2.Workers != 2 {
				t.Fatalf("%s: scaling runs %+v %+v", w.Workload, r.ParallelProcs1, r.ParallelProcs2)
			}
			if r.Parallel.Parallel == nil || r.ParallelNoInference.Parallel == nil || r.Geth.Parallel != nil {
				t.Fatalf("%s: parallel counters missing or misplaced", w.Workload)
			}
		}
		if len(w.Profiles) != 3 {
			t.Fatalf("%s: profiles %+v", w.Workload, w.Profiles)
		}
		for _, p := range w.Profiles {
			if st, err := os.Stat(p.Path); err != nil || st.Size() == 0 {
				t.Fatalf("profile %s: %v", p.Path, err)
			}
		}
	}
	// Mix: 70% ERC-20, 20% ETH, 10% swaps.
	mix := rep.Workloads[slices.Index(EngineKinds, KindMix)]
	if k := mix.TxKinds; k["erc20"] != txs*7/10 || k["transfers"] != txs*2/10 || k["hotswap"] != txs/10 {
		t.Fatalf("mix kinds %v", k)
	}
	if runtime := rep.Machine.GOMAXPROCS; runtime < 1 {
		t.Fatal("GOMAXPROCS not recorded")
	}
	if !strings.Contains(progress.String(), "(c) parallel, GOMAXPROCS 2") {
		t.Fatalf("progress:\n%s", progress.String())
	}

	// The JSON report parses back to the same figures.
	path := filepath.Join(dir, "engine.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back EngineReport
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Workloads) != len(rep.Workloads) || back.Workloads[1].Median != rep.Workloads[1].Median ||
		back.Workloads[2].StateRoot != rep.Workloads[2].StateRoot || back.Settings != rep.Settings {
		t.Fatal("JSON round trip changed the report")
	}
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil || generic["machine"] == nil {
		t.Fatalf("JSON: %v", err)
	}

	// The table ends with one line per workload, whose ratio is X/Y.
	var table bytes.Buffer
	rep.WriteTable(&table)
	lines := strings.Split(strings.TrimSpace(table.String()), "\n")
	last := lines[len(lines)-len(EngineKinds):]
	for i, l := range last {
		m := lineRE.FindStringSubmatch(l)
		if m == nil || m[1] != rep.Workloads[i].Workload {
			t.Fatalf("last lines:\n%s", strings.Join(last, "\n"))
		}
		x, _ := strconv.ParseFloat(m[2], 64)
		y, _ := strconv.ParseFloat(m[3], 64)
		z, _ := strconv.ParseFloat(m[4], 64)
		// Z comes from the unrounded medians; X and Y are rounded to integers.
		if y == 0 || math.Abs(z-x/y) > 0.0051+x/y*1e-3 {
			t.Fatalf("%q: ratio %v, X/Y %v", l, z, x/y)
		}
		med := rep.Workloads[i].Median
		if want := fmt.Sprintf("%.2f", med.ParallelTxPerSec/med.GethTxPerSec); m[4] != want {
			t.Fatalf("%q: ratio %s, want %s", l, m[4], want)
		}
	}
}

func timing(txPerSec float64, reExec uint64) EngineTiming {
	return EngineTiming{TxPerSec: txPerSec, MgasPerSec: txPerSec / 1000, Parallel: &ParallelCounters{Executions: 100 + reExec, ReExecutions: reExec}}
}

// TestSummarizeEngine checks medians and ratios on made-up runs.
func TestSummarizeEngine(t *testing.T) {
	runs := []EngineRun{
		{Geth: timing(100, 0), Sequential: timing(150, 0), Parallel: timing(300, 5), ParallelNoInference: timing(250, 40), ParallelProcs1: timing(160, 0), ParallelProcs2: timing(290, 3)},
		{Geth: timing(80, 0), Sequential: timing(120, 0), Parallel: timing(330, 7), ParallelNoInference: timing(200, 60), ParallelProcs1: timing(140, 0), ParallelProcs2: timing(300, 9)},
		{Geth: timing(120, 0), Sequential: timing(90, 0), Parallel: timing(210, 1), ParallelNoInference: timing(260, 50), ParallelProcs1: timing(150, 0), ParallelProcs2: timing(240, 2)},
	}
	s := summarizeEngine(runs)
	want := EngineSummary{
		GethTxPerSec: 100, GethMgasPerSec: 0.1, SequentialTxPerSec: 120, SequentialMgasPerSec: 0.12,
		ParallelTxPerSec: 300, ParallelMgasPerSec: 0.3, ParallelNoInferenceTxPerSec: 250,
		ParallelVsGeth: 3, ParallelVsSequential: 2.5, SequentialVsGeth: 1.2,
		Executions: 105, ReExecutions: 5, ExecutionsNoInference: 150, ReExecutionsNoInference: 50,
		Procs1TxPerSec: 150, Procs2TxPerSec: 290, Speedup1To2: 290.0 / 150,
	}
	if s != want {
		t.Fatalf("summary\n got %+v\nwant %+v", s, want)
	}
	rep := &EngineReport{Workloads: []EngineWorkload{{Workload: "hotswap", Median: EngineSummary{ParallelTxPerSec: 12345.6, GethTxPerSec: 23456.4, ParallelVsGeth: 12345.6 / 23456.4}}}}
	if got := rep.Lines()[0]; got != "engine hotswap: kestrel 12346 tx/s, geth 23456 tx/s, ratio 0.53" {
		t.Fatal(got)
	}
	if summarizeEngine([]EngineRun{{}}).ParallelVsGeth != 0 {
		t.Fatal("ratio over a zero baseline")
	}
}

// TestEngineChecksCatchDifferences: the comparisons used after the timed runs
// notice a changed receipt or diff.
func TestEngineChecksCatchDifferences(t *testing.T) {
	w, err := Generate(EngineWorkloadConfig(KindMix, 40, 20, 5))
	if err != nil {
		t.Fatal(err)
	}
	in, geth, seq := gethAndSequential(t, w, 20)
	again, err := runKestrel(context.Background(), in, exec.Sequential{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := sameResults(seq.results, again.results); err != nil {
		t.Fatal(err)
	}
	again.results[1].Diff.Accounts[0].Nonce++
	if err := sameResults(seq.results, again.results); err == nil {
		t.Fatal("changed diff not noticed")
	}
	again.results[1].Diff.Accounts[0].Nonce--
	again.results[0].Receipts[3].Logs = nil
	if err := sameResults(seq.results, again.results); err == nil {
		t.Fatal("changed receipt not noticed")
	}
	if err := sameReceipts(geth.receipts, again.results); err == nil {
		t.Fatal("geth vs kestrel: changed logs not noticed")
	}
	geth.receipts[5].GasUsed++
	if err := sameReceipts(geth.receipts, seq.results); err == nil {
		t.Fatal("geth vs kestrel: changed gas not noticed")
	}
	pre, post, err := kestrelRoot(in, seq.results)
	if err != nil || pre != geth.preRoot || post != geth.root {
		t.Fatalf("roots: kestrel %s %s, geth %s %s (%v)", pre, post, geth.preRoot, geth.root, err)
	}
}

// TestWorkloadHotSwapAndMix: swap minimums chain through the reserves, mix
// follows its pattern, and distinct senders and recipients hold per block.
func TestWorkloadHotSwapAndMix(t *testing.T) {
	w, err := Generate(EngineWorkloadConfig(KindMix, 100, 50, 9))
	if err != nil {
		t.Fatal(err)
	}
	swaps, dir := 0, true
	for i, tx := range w.Txs {
		if tx.Kind != MixKind(KindMix, i) {
			t.Fatalf("tx %d kind %s", i, tx.Kind)
		}
		if tx.Kind == KindHotSwap {
			if tx.ZeroForOne != dir || tx.MinOut == nil || tx.MinOut.Sign() <= 0 || tx.To != -1 || tx.Pool != w.Pool {
				t.Fatalf("swap %d: %+v", i, tx)
			}
			dir = !dir
			swaps++
		}
	}
	if swaps != 10 {
		t.Fatalf("%d swaps", swaps)
	}
	for first := 0; first < len(w.Txs); first += 50 {
		senders, recipients := map[int]bool{}, map[int]bool{}
		for _, tx := range w.Txs[first : first+50] {
			if senders[tx.Sender] || (tx.To >= 0 && recipients[tx.To]) {
				t.Fatalf("block at %d repeats a sender or recipient", first)
			}
			senders[tx.Sender] = true
			recipients[tx.To] = true
		}
	}
	alloc := w.Alloc()
	for _, a := range []common.Address{w.Token, w.Token0, w.Token1, w.Pool} {
		if len(alloc[a].Code) == 0 {
			t.Fatalf("%s not deployed in the alloc", a)
		}
	}
	if _, err := ParseEngineKinds("transfers"); err != nil {
		t.Fatal(err)
	}
	if k, err := ParseEngineKinds("all"); err != nil || len(k) != 7 || k[3] != KindSwaps || k[6] != KindMix {
		t.Fatal(k, err)
	}
	for _, k := range []Kind{KindSwaps, KindNFT, KindDeploy} {
		if got, err := ParseEngineKinds(string(k)); err != nil || len(got) != 1 || got[0] != k {
			t.Fatal(k, got, err)
		}
	}
	if _, err := ParseEngineKinds("swap"); err == nil {
		t.Fatal("unknown workload accepted")
	}
}

// BenchmarkEngine runs every workload (KESTREL_BENCH_TXS transactions, default
// 2000, in one block) through each engine: each iteration executes the whole
// workload from a fresh pre-state; tx/s covers execution alone, ns/op includes
// building the pre-state. `kestrel bench engine` is the full report.
func BenchmarkEngine(b *testing.B) {
	txs := 2000
	if n, err := strconv.Atoi(os.Getenv("KESTREL_BENCH_TXS")); err == nil && n > 0 {
		txs = n
	}
	for _, kind := range EngineKinds {
		w, err := Generate(EngineWorkloadConfig(kind, txs, txs, 1))
		if err != nil {
			b.Fatal(err)
		}
		in, err := prepareEngine(w, txs)
		if err != nil {
			b.Fatal(err)
		}
		engines := []struct {
			name string
			run  func() (*engineOutput, error)
		}{
			{EngineGeth, func() (*engineOutput, error) { return runGeth(in, "", false) }},
			{EngineSequential, func() (*engineOutput, error) { return runKestrel(context.Background(), in, exec.Sequential{}, "") }},
			{EngineParallel, func() (*engineOutput, error) {
				return runParallel(context.Background(), in, exec.ParallelConfig{}, 0, "")
			}},
		}
		for _, e := range engines {
			b.Run(EngineName(kind)+"/"+e.name, func(b *testing.B) {
				var elapsed time.Duration
				for range b.N {
					out, err := e.run()
					if err != nil {
						b.Fatal(err)
					}
					elapsed += out.timing.Elapsed
				}
				b.ReportMetric(float64(txs*b.N)/elapsed.Seconds(), "tx/s")
			})
		}
	}
}

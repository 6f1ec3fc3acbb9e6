package bench

import (
	"bytes"
	"context"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	gethOnce sync.Once
	gethBin  string
	gethErr  error
)

// testGeth is the geth binary for tests: $KESTREL_BENCH_GETH, else bin/geth
// at the repository root (`make geth`, which `make test` runs first), else
// one built into a temporary directory from this module.
func testGeth(t *testing.T) string {
	t.Helper()
	gethOnce.Do(func() {
		if p := os.Getenv("KESTREL_BENCH_GETH"); p != "" {
			gethBin = p
			return
		}
		if p, err := filepath.Abs("../bin/geth"); err == nil && fileExists(p) {
			gethBin = p
			return
		}
		dir, err := os.MkdirTemp("", "kestrel-test-geth-")
		if err != nil {
			gethErr = err
			return
		}
		gethBin = filepath.Join(dir, "geth")
		out, err := exec.Command("go", "build", "-o", gethBin, "github.com/ethereum/go-ethereum/cmd/geth").CombinedOutput()
		if err != nil {
			gethErr = err
			t.Logf("go build geth: %s", out)
		}
	})
	if gethErr != nil {
		t.Fatalf("no geth binary: %v", gethErr)
	}
	return gethBin
}

// tinySuite is every phase on tiny workloads.
func tinySuite(t *testing.T) SuiteOptions {
	o := DefaultSuiteOptions(true)
	o.MemoryAccounts = 20_000
	o.EngineKinds, o.EngineTxs, o.EngineBlockTx, o.EngineRuns = []Kind{KindETH, KindNFT}, 120, 60, 1
	o.ScalingKind, o.Cores = KindERC20, []int{1, 2}
	o.E2E = E2EOptions{Kinds: []Kind{KindERC20}, Txs: 300, Senders: 30, Rate: 100, Duration: time.Second, ReadDuration: 100 * time.Millisecond, Runs: 1, Replicas: 1,
		Conns: 2, Batch: 100, Geth: testGeth(t)}
	r := QuickRPCOptions()
	r.Accounts, r.Txs, r.Duration, r.Warmup, r.WSMax, r.Methods = 200, 40, 100*time.Millisecond, 0, 0, []string{"balance", "receipt"}
	o.RPC = r
	o.Dir = t.TempDir()
	return o
}

// TestSuiteReport runs every phase of `kestrel bench` on tiny workloads,
// the end-to-end one against a real geth --dev process: the files are
// written and read back, every headline ratio is the ratio of the figures it
// names, and a report compared with itself shows no change. No speed is
// asserted.
func TestSuiteReport(t *testing.T) {
	o := tinySuite(t)
	o.E2E.Profile = filepath.Join(t.TempDir(), "e2e.pprof")
	var log bytes.Buffer
	o.Progress = NewLiveProgress(&log, false, len(o.Phases))
	rep, err := RunSuite(context.Background(), o)
	o.Progress.Close()
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	out := t.TempDir()
	if err := rep.WriteFiles(out); err != nil {
		t.Fatal(err)
	}
	back, err := ReadSuiteReport(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Figures) != len(rep.Figures) || len(back.Figures) == 0 {
		t.Fatalf("report.json has %d figures, the run %d", len(back.Figures), len(rep.Figures))
	}
	keys := map[string]bool{}
	for _, f := range back.Figures {
		keys[f.Key] = true
		if f.Kestrel <= 0 {
			t.Errorf("%s: Kestrel figure %v", f.Key, f.Kestrel)
		}
		if f.BaselineName == "" {
			continue
		}
		want := f.Kestrel / f.Baseline
		if f.LowerBetter {
			want = f.Baseline / f.Kestrel
		}
		if f.Baseline <= 0 || math.Abs(f.Ratio-want) > 1e-9*want {
			t.Errorf("%s: ratio %v, Kestrel %v, baseline %v: want %v", f.Key, f.Ratio, f.Kestrel, f.Baseline, want)
		}
	}
	for _, k := range []string{"memory.account", "engine.transfers", "engine.nft", "scaling.erc20.1", "scaling.erc20.2",
		"e2e.erc20", "e2e.erc20.p99", "e2e.erc20.cpu", "e2e.erc20.visible.p99", "e2e.erc20.lag.p99", "e2e.erc20.stream", "e2e.erc20.reads.sequencer", "e2e.erc20.reads.replica", "rpc.balance", "rpc.receipt"} {
		if !keys[k] {
			t.Errorf("no figure %s", k)
		}
	}
	// The end-to-end CPU profile: a gzipped profile per workload.
	if prof, err := os.ReadFile(o.E2E.Profile + "-erc20"); err != nil || len(prof) < 2 || prof[0] != 0x1f || prof[1] != 0x8b {
		t.Errorf("e2e CPU profile: %d bytes, %v", len(prof), err)
	}
	// The end-to-end figures: both targets measured, the stage split filled.
	w := back.E2E[0]
	if w.Median.GethTxPerSec <= 0 || w.Median.KestrelTxPerSec <= 0 || w.Runs[0].Geth == nil || w.Runs[0].Geth.Latency == nil {
		t.Fatalf("e2e %+v", w.Median)
	}
	for _, s := range StageNames {
		if w.Median.Stages[s] <= 0 {
			t.Errorf("stage %s: %v µs/tx", s, w.Median.Stages[s])
		}
	}
	if m := back.Memory; m == nil || m.KestrelRoot != m.GethRoot || m.KestrelPerAccount <= 0 {
		t.Errorf("memory %+v", back.Memory)
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Headline figures", "## End to end", "### Stage split", "## Scaling", "## Engine", "## RPC", "## Memory", "three largest"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	wantPlots := []string{"throughput-vs-cores.png", "latency-cdf-erc20.png", "throughput-over-time-erc20.png"}
	if strings.Join(back.Plots, ",") != strings.Join(wantPlots, ",") {
		t.Errorf("plots %v, want %v", back.Plots, wantPlots)
	}
	for _, p := range wantPlots {
		f, err := os.Open(filepath.Join(out, p))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Dx() < 400 {
			t.Errorf("%s: %v", p, err)
		}
		if !strings.Contains(string(md), "]("+p+")") {
			t.Errorf("report.md does not show %s", p)
		}
	}
	if !strings.Contains(log.String(), "== e2e") {
		t.Errorf("progress log:\n%s", log.String())
	}

	// Compared with itself: no change. With Kestrel's figures doubled: +100%,
	// better exactly where higher is better.
	cs, onlyA, onlyB := CompareReports(back, back)
	if len(cs) != len(back.Figures) || len(onlyA)+len(onlyB) != 0 {
		t.Fatalf("self-comparison: %d pairs, only %v %v", len(cs), onlyA, onlyB)
	}
	for _, c := range cs {
		if c.Change != 0 || c.Better {
			t.Errorf("%s changed against itself: %+v", c.Key, c)
		}
	}
	doubled := *back
	doubled.Figures = append([]Figure(nil), back.Figures...)
	for i := range doubled.Figures {
		doubled.Figures[i].Kestrel *= 2
	}
	doubled.Figures = doubled.Figures[1:]
	cs, onlyA, _ = CompareReports(back, &doubled)
	if len(onlyA) != 1 || onlyA[0] != back.Figures[0].Key {
		t.Errorf("only in A: %v", onlyA)
	}
	for _, c := range cs {
		if math.Abs(c.Change-1) > 1e-9 || c.Better == c.LowerBetter {
			t.Errorf("%s: %+v", c.Key, c)
		}
	}
	var buf bytes.Buffer
	WriteComparison(&buf, back, &doubled, "a.json", "b.json")
	if !strings.Contains(buf.String(), "+100.0%") || !strings.Contains(buf.String(), "only in A: "+back.Figures[0].Key) {
		t.Errorf("comparison:\n%s", buf.String())
	}
}

func TestAmdahl(t *testing.T) {
	// Perfect scaling: no serial part; 100 cores give 100 times one core.
	s, at := amdahl([]ScalingPoint{{Cores: 1, TxPerSec: 10, Speedup: 1}, {Cores: 4, TxPerSec: 40, Speedup: 4}})
	if math.Abs(s) > 1e-12 || math.Abs(at-1000) > 1e-9 {
		t.Errorf("perfect: %v %v", s, at)
	}
	// No scaling at all: all serial.
	s, at = amdahl([]ScalingPoint{{Cores: 1, TxPerSec: 10, Speedup: 1}, {Cores: 2, TxPerSec: 10, Speedup: 1}})
	if s != 1 || at != 10 {
		t.Errorf("serial: %v %v", s, at)
	}
	// Half serial: speedup at 2 cores is 1/(0.5+0.25) = 4/3.
	s, at = amdahl([]ScalingPoint{{Cores: 1, TxPerSec: 30, Speedup: 1}, {Cores: 2, TxPerSec: 40, Speedup: 4.0 / 3}})
	if math.Abs(s-0.5) > 1e-12 || math.Abs(at-30/(0.5+0.005)) > 1e-9 {
		t.Errorf("half: %v %v", s, at)
	}
	if s, at := amdahl([]ScalingPoint{{Cores: 2, TxPerSec: 10}}); s != 0 || at != 0 {
		t.Errorf("one point: %v %v", s, at)
	}
}

func TestRateOverAndCDF(t *testing.T) {
	// 1,000 tx/s for 10 s, sampled every 100 ms.
	var s Series
	for i := 1; i <= 100; i++ {
		s.X, s.Y = append(s.X, float64(i)/10), append(s.Y, float64(i*100))
	}
	r := rateOver("x", s)
	if len(r.X) == 0 {
		t.Fatal("no rate points")
	}
	for i, y := range r.Y {
		if math.Abs(y-1000) > 1e-6 {
			t.Fatalf("rate at %v: %v", r.X[i], y)
		}
	}
	c := CDF("c", []float64{3, 1, 2, 4})
	if !slices.Equal(c.X, []float64{1, 2, 3, 4}) || !slices.Equal(c.Y, []float64{0.25, 0.5, 0.75, 1}) {
		t.Errorf("cdf %v %v", c.X, c.Y)
	}
}

func TestTopStagesAndPhases(t *testing.T) {
	got := TopStages(map[string]float64{"ingress": 5, "execution": 9, "publish": 1, "sealing": 0, "merklization": 5}, 3)
	if strings.Join(got, "; ") != "execution 9.0 µs; ingress 5.0 µs; merklization 5.0 µs" {
		t.Errorf("top stages %q", got)
	}
	if p, err := ParsePhases("e2e, memory,e2e"); err != nil || strings.Join(p, ",") != "e2e,memory" {
		t.Errorf("phases %v %v", p, err)
	}
	if _, err := ParsePhases("engine,disk"); err == nil || !strings.Contains(err.Error(), `"disk"`) {
		t.Errorf("bad phase: %v", err)
	}
}

func TestLiveProgress(t *testing.T) {
	var buf bytes.Buffer
	p := NewLiveProgress(&buf, true, 3)
	p.Phase("e2e")
	p.Task("kestrel closed loop", 1000, "tx")
	p.mu.Lock()
	p.done, p.taskAt = 250, time.Now().Add(-time.Second)
	line := p.Status(time.Now())
	p.mu.Unlock()
	if !strings.HasPrefix(line, "[1/3] kestrel closed loop: 250/1000 tx, 250 tx/s, ETA 3s") {
		t.Errorf("status %q", line)
	}
	p.Write([]byte("a log line\n"))
	p.Close()
	// On a terminal the status is erased before a log line and drawn again
	// after it.
	if s := buf.String(); !strings.Contains(s, "\r\033[Ka log line\n") || !strings.HasSuffix(s, "\n") {
		t.Errorf("output %q", s)
	}
}

func TestProcCPUAndRSS(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	end := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(end) {
	}
	if c := procCPU(os.Getpid()); c < 10*time.Millisecond {
		t.Errorf("own CPU %v", c)
	}
	if r := procPeakRSS(os.Getpid()); r < 1<<20 {
		t.Errorf("own peak RSS %d", r)
	}
	// A 256 MiB peak, given back: the reset brings the high-water mark down.
	big := make([]byte, 256<<20)
	for i := range big {
		big[i] = 1
	}
	peak := procPeakRSS(os.Getpid())
	big = nil
	debug.FreeOSMemory()
	resetPeakRSS()
	if after := procPeakRSS(os.Getpid()); after+128<<20 > peak {
		t.Errorf("peak RSS %d MiB after the reset, %d MiB before", after>>20, peak>>20)
	}
}

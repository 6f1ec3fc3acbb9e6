package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Options configure a full benchmark (see Run).
type Options struct {
	Kinds []Kind
	// Txs is the throughput transactions per run and workload; Senders and
	// Recipients the accounts (Recipients 0: as many as Senders); Seed derives
	// everything.
	Txs, Senders, Recipients int
	Seed                     uint64
	// Rate (tx/s) and Duration are the latency phase's offered load; Rate 0 skips
	// the phase.
	Rate     int
	Duration time.Duration
	// Runs repeats everything; medians are reported.
	Runs int
	// BlockTxs is the baseline's block size.
	BlockTxs int
	// Conns and Batch shape the throughput sender.
	Conns, Batch int
	// RPCURL targets an external node instead of starting one in-process.
	RPCURL string
	// Dir is where in-process nodes keep their data (os.TempDir() if empty).
	Dir string
	// MiniBlockInterval and BlockInterval of in-process nodes (sequencer defaults
	// if zero).
	MiniBlockInterval, BlockInterval time.Duration
	// CPUProfile writes a CPU profile of the first run's Kestrel throughput phase,
	// and of its latency phase to the same name with "-latency" before the
	// extension (the workload name is inserted too when several run).
	CPUProfile string
	// NodeLogger receives in-process nodes' logs (discarded if nil).
	NodeLogger *slog.Logger
	// Progress receives progress lines (discarded if nil).
	Progress io.Writer
}

// RunResult is one run of one workload.
type RunResult struct {
	Run          int               `json:"run"`
	Baseline     *BaselineResult   `json:"gethBaseline"`
	BaselineRoot *BaselineResult   `json:"gethBaselineWithRoot"`
	Kestrel      *ThroughputResult `json:"kestrel"`
	Latency      *LatencyResult    `json:"latency,omitempty"`
	// LoadAvg is /proc/loadavg when the run started: other work on the machine
	// skews every figure.
	LoadAvg string `json:"loadAvg,omitempty"`
}

// Summary holds the medians over runs of one workload.
type Summary struct {
	BaselineTxPerSec     float64 `json:"gethTxPerSec"`
	BaselineRootTxPerSec float64 `json:"gethWithRootTxPerSec"`
	KestrelTxPerSec      float64 `json:"kestrelTxPerSec"`
	KestrelAdmitTxPerSec float64 `json:"kestrelAdmitTxPerSec"`
	// Ratio is KestrelTxPerSec / BaselineTxPerSec; RatioRoot against the baseline
	// with roots.
	Ratio     float64 `json:"ratio"`
	RatioRoot float64 `json:"ratioWithRoot"`
	// Transactions per CPU-second of the whole process (medians): the baseline
	// uses one goroutine (plus GC), Kestrel every core, and in-process its
	// figure includes the bench client.
	BaselineTxPerCPUSec float64 `json:"gethTxPerCpuSec"`
	KestrelTxPerCPUSec  float64 `json:"kestrelTxPerCpuSec"`
	// Latency medians (ms) and the achieved rate; LatErrors is the total over runs.
	LatP50Ms    float64 `json:"syncP50Ms"`
	LatP90Ms    float64 `json:"syncP90Ms"`
	LatP99Ms    float64 `json:"syncP99Ms"`
	LatMaxMs    float64 `json:"syncMaxMs"`
	LatAchieved float64 `json:"syncAchievedTxPerSec"`
	LatErrors   int     `json:"syncErrors"`
}

// WorkloadReport is everything measured for one workload.
type WorkloadReport struct {
	Kind       Kind        `json:"workload"`
	Txs        int         `json:"txs"`
	Senders    int         `json:"senders"`
	Recipients int         `json:"recipients"`
	LatencyTxs int         `json:"latencyTxs"`
	Runs       []RunResult `json:"runs"`
	Median     Summary     `json:"median"`
	Profile    string      `json:"cpuProfile,omitempty"`
	ProfileTop string      `json:"cpuProfileTop,omitempty"`
	// LatencyProfile is the CPU profile of the first run's latency phase.
	LatencyProfile    string `json:"latencyCpuProfile,omitempty"`
	LatencyProfileTop string `json:"latencyCpuProfileTop,omitempty"`
}

// Report is a whole benchmark.
type Report struct {
	Started    time.Time        `json:"started"`
	GoVersion  string           `json:"goVersion"`
	OS         string           `json:"os"`
	NumCPU     int              `json:"numCPU"`
	GOMAXPROCS int              `json:"gomaxprocs"`
	LoadAvg    string           `json:"loadAvgAtStart,omitempty"`
	Target     string           `json:"target"`
	Settings   map[string]any   `json:"settings"`
	Workloads  []WorkloadReport `json:"workloads"`
	external   bool
}

func (o *Options) defaults() error {
	if len(o.Kinds) == 0 {
		o.Kinds = Kinds
	}
	if o.Txs <= 0 || o.Senders <= 0 {
		return errors.New("txs and senders must be positive")
	}
	if o.Runs <= 0 {
		o.Runs = 1
	}
	if o.Rate < 0 || (o.Rate > 0 && o.Duration <= 0) {
		return errors.New("latency rate must not be negative and needs a positive duration")
	}
	if o.BlockTxs <= 0 {
		o.BlockTxs = DefaultBlockTxs
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return nil
}

func (o *Options) latencyTxs() int {
	if o.Rate == 0 {
		return 0
	}
	return int(float64(o.Rate) * o.Duration.Seconds())
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Run measures every workload Runs times: the go-ethereum baseline without and
// with per-block state roots, then Kestrel end to end (throughput, then the
// latency phase) on a fresh in-process node (or the external one).
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	rep := &Report{Started: time.Now(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH,
		NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), LoadAvg: loadAvg(), Target: "in-process sequencer",
		Settings: map[string]any{"txs": o.Txs, "senders": o.Senders, "recipients": o.Recipients, "seed": o.Seed,
			"rate": o.Rate, "duration": o.Duration.String(), "runs": o.Runs, "blockTxs": o.BlockTxs, "conns": o.Conns,
			"batch": o.Batch, "miniBlockInterval": o.MiniBlockInterval.String(), "blockInterval": o.BlockInterval.String()}}
	var ext *External
	if o.RPCURL != "" {
		ext = NewExternal(o.RPCURL)
		rep.Target, rep.external = o.RPCURL, true
	}
	for _, kind := range o.Kinds {
		wr, err := runWorkload(ctx, o, kind, ext)
		if err != nil {
			return rep, fmt.Errorf("%s: %w", kind, err)
		}
		rep.Workloads = append(rep.Workloads, *wr)
	}
	return rep, nil
}

func runWorkload(ctx context.Context, o Options, kind Kind, ext *External) (*WorkloadReport, error) {
	cfg := WorkloadConfig{Kind: kind, Txs: o.Txs, Extra: o.latencyTxs(), Senders: o.Senders, Recipients: o.Recipients, Seed: o.Seed}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	wr := &WorkloadReport{Kind: kind, Txs: o.Txs, Senders: cfg.Senders, Recipients: cfg.Recipients, LatencyTxs: cfg.Extra}
	var w *Workload
	for run := 1; run <= o.Runs; run++ {
		if w == nil || ext != nil {
			rcfg := cfg
			if ext != nil {
				fmt.Fprintf(o.Progress, "[%s] preparing accounts on %s\n", kind, ext.URL)
				var err error
				if rcfg, err = ext.Prepare(ctx, cfg); err != nil {
					return nil, err
				}
			}
			fmt.Fprintf(o.Progress, "[%s] signing %d transactions from %d senders\n", kind, cfg.Txs+cfg.Extra, cfg.Senders)
			var err error
			if w, err = Generate(rcfg); err != nil {
				return nil, err
			}
		}
		rr := RunResult{Run: run, LoadAvg: loadAvg()}
		for _, root := range []bool{false, true} {
			runtime.GC()
			res, sdb, err := RunBaseline(w, w.Throughput(), BaselineOptions{BlockTxs: o.BlockTxs, Root: root})
			if err != nil {
				return nil, fmt.Errorf("baseline: %w", err)
			}
			if err := CheckBaselineState(w, w.Throughput(), sdb); err != nil {
				return nil, fmt.Errorf("baseline state: %w", err)
			}
			fmt.Fprintf(o.Progress, "[%s] run %d: geth baseline (root=%v): %d txs in %v = %.0f tx/s\n", kind, run, root, res.Txs, res.Elapsed.Round(time.Millisecond), res.TxPerSec)
			if root {
				rr.BaselineRoot = res
			} else {
				rr.Baseline = res
			}
		}
		runtime.GC()
		url := o.RPCURL
		var node *Node
		if ext == nil {
			var err error
			node, err = StartNode(ctx, w, NodeOptions{Dir: o.Dir, MiniBlockInterval: o.MiniBlockInterval, BlockInterval: o.BlockInterval, Logger: o.NodeLogger})
			if err != nil {
				return nil, fmt.Errorf("start node: %w", err)
			}
			url = node.URL()
		}
		err := func() error {
			sopts := SendOptions{Conns: o.Conns, Batch: o.Batch}
			if run == 1 && o.CPUProfile != "" {
				sopts.Profile = profilePath(o.CPUProfile, kind, len(o.Kinds) > 1)
				if err := os.MkdirAll(filepath.Dir(sopts.Profile), 0o755); err != nil {
					return err
				}
				wr.Profile = sopts.Profile
			}
			tr, err := RunThroughput(ctx, url, w, w.Throughput(), sopts)
			if err != nil {
				return fmt.Errorf("kestrel throughput: %w", err)
			}
			rr.Kestrel = tr
			fmt.Fprintf(o.Progress, "[%s] run %d: kestrel e2e: %d txs durable in %v = %.0f tx/s (admitted in %v, %d retries, %d polls)\n",
				kind, run, tr.Txs, tr.Elapsed.Round(time.Millisecond), tr.TxPerSec, tr.Admitted.Round(time.Millisecond), tr.Retries, tr.Polls)
			if cfg.Extra > 0 {
				// Measure latency in steady state: wait until every block of the
				// throughput backlog is sealed (its roots computed), then a second.
				if err := waitSealed(ctx, url); err != nil {
					return fmt.Errorf("wait for the backlog to seal: %w", err)
				}
				time.Sleep(time.Second)
				lopts := LatencyOptions{Rate: o.Rate}
				if run == 1 && o.CPUProfile != "" {
					lopts.Profile = profilePath(o.CPUProfile, kind, len(o.Kinds) > 1)
					lopts.Profile = strings.TrimSuffix(lopts.Profile, filepath.Ext(lopts.Profile)) + "-latency" + filepath.Ext(lopts.Profile)
					wr.LatencyProfile = lopts.Profile
				}
				lr, err := RunLatency(ctx, url, w.Extra(), lopts)
				if err != nil {
					return fmt.Errorf("kestrel latency: %w", err)
				}
				rr.Latency = lr
				fmt.Fprintf(o.Progress, "[%s] run %d: sync send at %d tx/s: p50 %v p90 %v p99 %v max %v, achieved %.0f tx/s, %d errors %s\n",
					kind, run, o.Rate, ms(lr.P50), ms(lr.P90), ms(lr.P99), ms(lr.Max), lr.Achieved, lr.Errors, summarizeErrors(lr.ErrorSamples))
			}
			return nil
		}()
		if node != nil {
			if serr := node.Stop(); serr != nil && err == nil {
				err = fmt.Errorf("stop node: %w", serr)
			}
		}
		if err != nil {
			return nil, err
		}
		wr.Runs = append(wr.Runs, rr)
	}
	wr.Median = summarize(wr.Runs)
	if wr.Profile != "" {
		wr.ProfileTop = profileTop(wr.Profile)
	}
	if wr.LatencyProfile != "" {
		wr.LatencyProfileTop = profileTop(wr.LatencyProfile)
	}
	return wr, nil
}

// ProfileInfo is one written CPU profile.
type ProfileInfo struct{ Phase, Path, Top string }

// Profiles lists the workload's CPU profiles.
func (w *WorkloadReport) Profiles() []ProfileInfo {
	var out []ProfileInfo
	if w.Profile != "" {
		out = append(out, ProfileInfo{"Kestrel throughput phase", w.Profile, w.ProfileTop})
	}
	if w.LatencyProfile != "" {
		out = append(out, ProfileInfo{"Kestrel sync-send latency phase", w.LatencyProfile, w.LatencyProfileTop})
	}
	return out
}

func profilePath(base string, kind Kind, several bool) string {
	if !several {
		return base
	}
	ext := filepath.Ext(base)
	return strings.TrimSuffix(base, ext) + "-" + string(kind) + ext
}

// Median is the median of xs (the mean of the middle two for an even count).
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func summarize(runs []RunResult) Summary {
	var b, br, k, ka, p50, p90, p99, pmax, ach, bc, kc []float64
	var s Summary
	for _, r := range runs {
		b = append(b, r.Baseline.TxPerSec)
		br = append(br, r.BaselineRoot.TxPerSec)
		k = append(k, r.Kestrel.TxPerSec)
		ka = append(ka, r.Kestrel.AdmitTxPerSec)
		bc = append(bc, r.Baseline.TxPerCPUSec)
		kc = append(kc, r.Kestrel.TxPerCPUSec)
		if l := r.Latency; l != nil {
			p50, p90, p99, pmax = append(p50, msf(l.P50)), append(p90, msf(l.P90)), append(p99, msf(l.P99)), append(pmax, msf(l.Max))
			ach = append(ach, l.Achieved)
			s.LatErrors += l.Errors
		}
	}
	s.BaselineTxPerSec, s.BaselineRootTxPerSec, s.KestrelTxPerSec, s.KestrelAdmitTxPerSec = Median(b), Median(br), Median(k), Median(ka)
	s.BaselineTxPerCPUSec, s.KestrelTxPerCPUSec = Median(bc), Median(kc)
	if s.BaselineTxPerSec > 0 {
		s.Ratio = s.KestrelTxPerSec / s.BaselineTxPerSec
	}
	if s.BaselineRootTxPerSec > 0 {
		s.RatioRoot = s.KestrelTxPerSec / s.BaselineRootTxPerSec
	}
	s.LatP50Ms, s.LatP90Ms, s.LatP99Ms, s.LatMaxMs, s.LatAchieved = Median(p50), Median(p90), Median(p99), Median(pmax), Median(ach)
	return s
}

// goTool finds the go command for pprof.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// profileTop is `go tool pprof -top` of the profile (15 nodes), plus the share of
// the bench's own client goroutines, or "" when go is not available.
func profileTop(path string) string {
	gobin := goTool()
	if gobin == "" {
		return ""
	}
	out, err := exec.Command(gobin, "tool", "pprof", "-top", "-nodecount=15", path).CombinedOutput()
	if err != nil {
		return ""
	}
	top := string(out)
	client := "none sampled"
	if tags, err := exec.Command(gobin, "tool", "pprof", "-tags", path).CombinedOutput(); err == nil {
		for _, line := range strings.Split(string(tags), "\n") {
			if l := strings.TrimSpace(line); strings.HasPrefix(l, "bench: Total ") {
				client = strings.TrimPrefix(l, "bench: Total ")
			}
		}
	}
	top += "\nBench client goroutines (pprof label bench=client): " + client + "\n"
	return top
}

// WriteTable prints the summary table and every run.
func (r *Report) WriteTable(out io.Writer) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\ttxs\tgeth tx/s\tgeth+root tx/s\tkestrel e2e tx/s\tratio\tratio vs +root\tsync p50\tsync p99\tsync achieved/offered\tsync errors\t")
	for _, w := range r.Workloads {
		m := w.Median
		lat := "-\t-\t-\t-"
		if w.LatencyTxs > 0 {
			lat = fmt.Sprintf("%.1fms\t%.1fms\t%.0f/%s\t%d", m.LatP50Ms, m.LatP99Ms, m.LatAchieved, r.settingRate(), m.LatErrors)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.0f\t%.2fx\t%.2fx\t%s\t\n", w.Kind, w.Txs, m.BaselineTxPerSec, m.BaselineRootTxPerSec,
			m.KestrelTxPerSec, m.Ratio, m.RatioRoot, lat)
	}
	tw.Flush()
	for _, w := range r.Workloads {
		fmt.Fprintf(out, "%s: transactions per CPU-second of this process (median): geth %.0f, kestrel %.0f (%s)\n",
			w.Kind, w.Median.BaselineTxPerCPUSec, w.Median.KestrelTxPerCPUSec, r.cpuScope())
	}
	fmt.Fprintln(out, "\nAll runs (medians above):")
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\trun\tgeth tx/s\tgeth+root tx/s\tkestrel e2e tx/s\tadmitted tx/s\tgeth tx/CPU-s\tkestrel tx/CPU-s\tretries\tsync p50\tsync p90\tsync p99\tsync max\tachieved\terrors\tload avg\t")
	for _, w := range r.Workloads {
		for _, run := range w.Runs {
			lat := "-\t-\t-\t-\t-\t-"
			if l := run.Latency; l != nil {
				lat = fmt.Sprintf("%s\t%s\t%s\t%s\t%.0f\t%d", ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max), l.Achieved, l.Errors)
			}
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%d\t%s\t%s\t\n", w.Kind, run.Run, run.Baseline.TxPerSec, run.BaselineRoot.TxPerSec,
				run.Kestrel.TxPerSec, run.Kestrel.AdmitTxPerSec, run.Baseline.TxPerCPUSec, run.Kestrel.TxPerCPUSec, run.Kestrel.Retries, lat, loadShort(run.LoadAvg))
		}
	}
	tw.Flush()
}

// loadShort is the 1-minute load average of a /proc/loadavg line.
func loadShort(l string) string {
	if f := strings.Fields(l); len(f) > 0 {
		return f[0]
	}
	return "-"
}

// cpuScope says what the Kestrel CPU figure covers.
func (r *Report) cpuScope() string {
	if r.external {
		return "bench client only: the node is external"
	}
	return "in-process node and bench client together"
}

func (r *Report) settingRate() string { return fmt.Sprint(r.Settings["rate"]) }

// Markdown renders the report.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Kestrel benchmark\n\n")
	fmt.Fprintf(&b, "- started: %s\n- target: %s\n- %s, %s, %d CPUs (GOMAXPROCS %d), load average at start: %s\n",
		r.Started.Format(time.RFC3339), r.Target, r.GoVersion, r.OS, r.NumCPU, r.GOMAXPROCS, r.LoadAvg)
	keys := make([]string, 0, len(r.Settings))
	for k := range r.Settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b.WriteString("- settings:")
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, r.Settings[k])
	}
	b.WriteString("\n\n")
	b.WriteString("geth: go-ethereum's StateDB (in-memory trie database) with core.ApplyTransactionWithEVM, one goroutine, decoding and sender recovery included; " +
		"\"+root\" adds IntermediateRoot per block. kestrel: sequencer fed through JSON-RPC batches, timed from the first send until every transaction is in a durable mini-block. " +
		"Sync: eth_sendRawTransactionSync, open loop, latency from each call's scheduled slot.\n\n")
	b.WriteString("| workload | txs | geth tx/s | geth+root tx/s | kestrel e2e tx/s | ratio | ratio vs +root | sync p50 | sync p99 | sync achieved/offered | sync errors |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, w := range r.Workloads {
		m := w.Median
		lat := "- | - | - | -"
		if w.LatencyTxs > 0 {
			lat = fmt.Sprintf("%.1f ms | %.1f ms | %.0f/%s | %d", m.LatP50Ms, m.LatP99Ms, m.LatAchieved, r.settingRate(), m.LatErrors)
		}
		fmt.Fprintf(&b, "| %s | %d | %.0f | %.0f | %.0f | %.2fx | %.2fx | %s |\n", w.Kind, w.Txs, m.BaselineTxPerSec, m.BaselineRootTxPerSec,
			m.KestrelTxPerSec, m.Ratio, m.RatioRoot, lat)
	}
	b.WriteString("\nMedians of the runs below. Transactions per CPU-second of the process (medians):")
	for _, w := range r.Workloads {
		fmt.Fprintf(&b, " %s: geth %.0f, kestrel %.0f (%s);", w.Kind, w.Median.BaselineTxPerCPUSec, w.Median.KestrelTxPerCPUSec, r.cpuScope())
	}
	b.WriteString("\n\n## All runs\n\n")
	b.WriteString("| workload | run | geth tx/s | geth+root tx/s | kestrel e2e tx/s | admitted tx/s | geth tx/CPU-s | kestrel tx/CPU-s | retries | sync p50 | sync p90 | sync p99 | sync max | achieved | errors | load avg at start |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, w := range r.Workloads {
		for _, run := range w.Runs {
			lat := "- | - | - | - | - | -"
			if l := run.Latency; l != nil {
				lat = fmt.Sprintf("%s | %s | %s | %s | %.0f | %d", ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max), l.Achieved, l.Errors)
				if l.Errors > 0 {
					lat += " (" + summarizeErrors(l.ErrorSamples) + ")"
				}
			}
			fmt.Fprintf(&b, "| %s | %d | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %d | %s | %s |\n", w.Kind, run.Run, run.Baseline.TxPerSec, run.BaselineRoot.TxPerSec,
				run.Kestrel.TxPerSec, run.Kestrel.AdmitTxPerSec, run.Baseline.TxPerCPUSec, run.Kestrel.TxPerCPUSec, run.Kestrel.Retries, lat, run.LoadAvg)
		}
	}
	for _, w := range r.Workloads {
		for _, p := range w.Profiles() {
			fmt.Fprintf(&b, "\n## CPU profile, %s, %s (run 1)\n\n%s\n", w.Kind, p.Phase, p.Path)
			if p.Top != "" {
				fmt.Fprintf(&b, "\n```\n%s```\n", p.Top)
			}
		}
	}
	return b.String()
}

// WriteFiles writes base.json and base.md (base loses a .json or .md extension).
func (r *Report) WriteFiles(base string) ([]string, error) {
	if ext := filepath.Ext(base); ext == ".json" || ext == ".md" {
		base = strings.TrimSuffix(base, ext)
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	paths := []string{base + ".json", base + ".md"}
	if err := os.WriteFile(paths[0], append(js, '\n'), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(paths[1], []byte(r.Markdown()), 0o644); err != nil {
		return nil, err
	}
	return paths, nil
}

// waitSealed waits until the newest sealed block reaches the block that was
// pending when it was called.
func waitSealed(ctx context.Context, url string) error {
	c, err := newRPCClient(url, 1)
	if err != nil {
		return err
	}
	defer c.close()
	var pending struct {
		Number hexutil.Uint64 `json:"number"`
	}
	if err := c.call(&pending, "eth_getBlockByNumber", "pending", false); err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var head hexutil.Uint64
		if err := c.call(&head, "eth_blockNumber"); err != nil {
			return err
		}
		if head >= pending.Number {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("head %d did not reach block %d", head, pending.Number)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

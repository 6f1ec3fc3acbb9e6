package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kestrel-l2/kestrel/core/exec"
)

// The suite's phases (`kestrel bench --phases`), in run order.
const (
	PhaseEngine  = "engine"
	PhaseScaling = "scaling"
	PhaseE2E     = "e2e"
	PhaseRPC     = "rpc"
	PhaseMemory  = "memory"
)

// SuitePhases lists every phase in run order. Memory goes first: its figure
// is a difference of live heap sizes, which is cleanest before the other
// phases have run.
var SuitePhases = []string{PhaseMemory, PhaseEngine, PhaseScaling, PhaseE2E, PhaseRPC}

// SuiteOptions configure the whole benchmark (`kestrel bench`).
type SuiteOptions struct {
	Quick  bool
	Phases []string
	Seed   uint64
	// Engine phase.
	EngineKinds              []Kind
	EngineTxs, EngineBlockTx int
	EngineRuns               int
	// Scaling phase: the parallel engine on ScalingKind at each GOMAXPROCS in
	// Cores.
	ScalingKind Kind
	Cores       []int
	// End-to-end phase.
	E2E E2EOptions
	// RPC phase.
	RPC RPCOptions
	// Memory phase: funded accounts.
	MemoryAccounts int
	Dir            string
	Logger         *slog.Logger
	Progress       *LiveProgress
}

// DefaultSuiteOptions are the full run's settings; quick ones are small
// enough for a smoke test (a minute or two).
func DefaultSuiteOptions(quick bool) SuiteOptions {
	o := SuiteOptions{
		Quick: quick, Phases: SuitePhases, Seed: 1,
		EngineKinds: EngineKinds, EngineTxs: DefaultEngineTxs, EngineBlockTx: DefaultEngineBlockTxs, EngineRuns: DefaultEngineRuns,
		ScalingKind: KindERC20, Cores: coresUpTo(runtime.NumCPU()),
		E2E: E2EOptions{Kinds: []Kind{KindETH, KindERC20}, Txs: 100_000, Senders: 10_000, Rate: 1_000, Duration: 10 * time.Second,
			ReadDuration: 2 * time.Second, Runs: 3, Replicas: 2, Conns: 4, Batch: 500},
		RPC:            DefaultRPCOptions(),
		MemoryAccounts: 1_000_000,
	}
	if quick {
		o.EngineTxs, o.EngineBlockTx, o.EngineRuns = 2_000, 1_000, 1
		o.E2E.Txs, o.E2E.Senders, o.E2E.Rate, o.E2E.Duration, o.E2E.Runs = 4_000, 400, 200, 2*time.Second, 1
		o.E2E.ReadDuration = 300 * time.Millisecond
		o.RPC = QuickRPCOptions()
		o.MemoryAccounts = 50_000
	}
	return o
}

// coresUpTo is 1, 2, 4, … up to n, and n itself.
func coresUpTo(n int) []int {
	var out []int
	for c := 1; c < n; c *= 2 {
		out = append(out, c)
	}
	return append(out, n)
}

// EngineTargets are the parallel-engine issue's targets for (c)/(a), the
// parallel engine over go-ethereum's sequential processing, by workload.
var EngineTargets = map[string]float64{"transfers": 2.5, "erc20": 2, "mix": 1.6, "hotswap": 0.9}

// Figure is one headline figure: Kestrel's value, its baseline's measured in
// the same run, and their ratio (Kestrel over baseline, or baseline over
// Kestrel where lower is better, so that above 1 always favours Kestrel).
type Figure struct {
	Key      string  `json:"key"`
	Name     string  `json:"name"`
	Unit     string  `json:"unit"`
	Kestrel  float64 `json:"kestrel"`
	Baseline float64 `json:"baseline,omitempty"`
	// BaselineName says what the baseline is ("" when there is none).
	BaselineName string  `json:"baselineName,omitempty"`
	Ratio        float64 `json:"ratio,omitempty"`
	LowerBetter  bool    `json:"lowerIsBetter,omitempty"`
	// Target is the target, and Met whether this run meets it.
	Target string `json:"target,omitempty"`
	Met    *bool  `json:"met,omitempty"`
}

// ScalingPoint is the parallel engine at one GOMAXPROCS.
type ScalingPoint struct {
	Cores      int     `json:"cores"`
	TxPerSec   float64 `json:"txPerSec"`
	MgasPerSec float64 `json:"mgasPerSec"`
	// Speedup is TxPerSec over the 1-core figure; VsGeth over go-ethereum's
	// sequential processing (one core) of the same blocks.
	Speedup float64 `json:"speedup"`
	VsGeth  float64 `json:"vsGeth"`
}

// ScalingReport is the scaling curve.
type ScalingReport struct {
	Workload     string         `json:"workload"`
	Txs          int            `json:"txs"`
	GethTxPerSec float64        `json:"gethTxPerSec"`
	Points       []ScalingPoint `json:"points"`
	// Projection is the throughput at the design's 100 cores if the speedup
	// from the last two points continued (Amdahl's law fitted to them); only a
	// projection, printed as such.
	SerialFraction float64 `json:"serialFraction"`
	Projected100   float64 `json:"projected100CoresTxPerSec"`
}

// SuiteReport is everything `kestrel bench` measured.
type SuiteReport struct {
	Version  int            `json:"version"`
	Started  time.Time      `json:"started"`
	Elapsed  time.Duration  `json:"elapsedNs"`
	Machine  EngineMachine  `json:"machine"`
	Quick    bool           `json:"quick"`
	Phases   []string       `json:"phases"`
	Settings map[string]any `json:"settings"`
	Figures  []Figure       `json:"figures"`
	Engine   *EngineReport  `json:"engine,omitempty"`
	Scaling  *ScalingReport `json:"scaling,omitempty"`
	E2E      []E2EWorkload  `json:"e2e,omitempty"`
	RPC      *RPCReport     `json:"rpc,omitempty"`
	Memory   *MemoryResult  `json:"memory,omitempty"`
	Plots    []string       `json:"plots,omitempty"`
	Notes    []string       `json:"notes,omitempty"`
}

// SuiteReportVersion is the report.json format version.
const SuiteReportVersion = 1

func (o *SuiteOptions) has(phase string) bool { return slices.Contains(o.Phases, phase) }

// ParsePhases turns "all" or a comma-separated list into phases.
func ParsePhases(s string) ([]string, error) {
	if s == "" || s == "all" {
		return SuitePhases, nil
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if !slices.Contains(SuitePhases, p) {
			return nil, fmt.Errorf("unknown phase %q (want %s or all)", p, strings.Join(SuitePhases, ", "))
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// RunSuite runs the selected phases. The report holds what was measured up to
// an error, which is returned with it.
func RunSuite(ctx context.Context, o SuiteOptions) (*SuiteReport, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Progress == nil {
		o.Progress = NewLiveProgress(io.Discard, false, len(o.Phases))
		defer o.Progress.Close()
	}
	rep := &SuiteReport{Version: SuiteReportVersion, Started: time.Now(), Quick: o.Quick, Phases: o.Phases,
		Machine: EngineMachine{GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, NumCPU: runtime.NumCPU(),
			CPUModel: cpuModel(), GOMAXPROCS: runtime.GOMAXPROCS(0), GCPercent: gcPercent(), LoadAvg: loadAvg()},
		Settings: map[string]any{
			"seed": o.Seed, "engineTxs": o.EngineTxs, "engineBlockTxs": o.EngineBlockTx, "engineRuns": o.EngineRuns,
			"scalingWorkload": o.ScalingKind, "cores": o.Cores, "e2eTxs": o.E2E.Txs, "e2eSenders": o.E2E.Senders,
			"e2eRate": o.E2E.Rate, "e2eDuration": o.E2E.Duration.String(), "e2eRuns": o.E2E.Runs, "replicas": o.E2E.Replicas,
			"gethBinary": o.E2E.Geth, "rpcAccounts": o.RPC.Accounts, "rpcRuns": o.RPC.Runs, "memoryAccounts": o.MemoryAccounts,
		}}
	defer func() { rep.Elapsed = time.Since(rep.Started) }()
	say := func(format string, args ...any) { fmt.Fprintf(o.Progress, format+"\n", args...) }
	var err error
	for _, phase := range o.Phases {
		if err = ctx.Err(); err != nil {
			break
		}
		o.Progress.Phase(phase)
		say("== %s", phase)
		switch phase {
		case PhaseEngine:
			rep.Engine, err = RunEngine(ctx, EngineOptions{Kinds: o.EngineKinds, Txs: o.EngineTxs, BlockTxs: o.EngineBlockTx,
				Runs: o.EngineRuns, Seed: o.Seed, Progress: o.Progress})
		case PhaseScaling:
			rep.Scaling, err = RunScaling(ctx, o.ScalingKind, o.EngineTxs, o.EngineBlockTx, o.EngineRuns, o.Seed, o.Cores, o.Progress)
		case PhaseE2E:
			e := o.E2E
			e.Seed, e.Dir, e.Logger, e.Progress = o.Seed, o.Dir, o.Logger, o.Progress
			if e.Geth == "" {
				rep.Notes = append(rep.Notes, "End to end: no geth binary, so no geth --dev baseline in this run.")
			}
			rep.E2E, err = RunE2E(ctx, e)
		case PhaseRPC:
			r := o.RPC
			r.Seed, r.Dir, r.NodeLogger, r.Progress = o.Seed, o.Dir, o.Logger, o.Progress
			rep.RPC, err = RunRPC(ctx, r)
		case PhaseMemory:
			o.Progress.Task(fmt.Sprintf("memory: %d accounts", o.MemoryAccounts), 0, "")
			rep.Memory, err = MeasureMemory(o.MemoryAccounts, o.Seed)
			if rep.Memory != nil {
				say("[memory] %d accounts: kestrel %.0f B/account (flat state + trie), geth %.0f B/account", o.MemoryAccounts,
					rep.Memory.KestrelPerAccount, rep.Memory.GethPerAccount)
			}
		}
		if err != nil {
			err = fmt.Errorf("%s: %w", phase, err)
			break
		}
	}
	rep.Figures = rep.headlines()
	return rep, err
}

// RunScaling runs the parallel engine on one workload at each core count
// (GOMAXPROCS, as many workers), and go-ethereum's sequential processing once
// per run for the ratio. Medians over runs.
func RunScaling(ctx context.Context, kind Kind, txs, blockTxs, runs int, seed uint64, cores []int, progress io.Writer) (*ScalingReport, error) {
	w, err := Generate(EngineWorkloadConfig(kind, txs, blockTxs, seed))
	if err != nil {
		return nil, err
	}
	in, err := prepareEngine(w, blockTxs)
	if err != nil {
		return nil, err
	}
	rep := &ScalingReport{Workload: EngineName(kind), Txs: in.txs}
	var geth []float64
	perCores := make([][]float64, len(cores))
	mgas := make([][]float64, len(cores))
	for run := 1; run <= runs; run++ {
		g, err := runGeth(in, "", false)
		if err != nil {
			return nil, err
		}
		geth = append(geth, g.timing.TxPerSec)
		for i, c := range cores {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			out, err := runParallel(ctx, in, exec.ParallelConfig{}, c, "")
			if err != nil {
				return nil, fmt.Errorf("%d cores: %w", c, err)
			}
			perCores[i] = append(perCores[i], out.timing.TxPerSec)
			mgas[i] = append(mgas[i], out.timing.MgasPerSec)
			fmt.Fprintf(progress, "[scaling %s] run %d: %d cores: %.0f tx/s\n", rep.Workload, run, c, out.timing.TxPerSec)
		}
	}
	rep.GethTxPerSec = Median(geth)
	for i, c := range cores {
		rep.Points = append(rep.Points, ScalingPoint{Cores: c, TxPerSec: Median(perCores[i]), MgasPerSec: Median(mgas[i])})
	}
	for i := range rep.Points {
		rep.Points[i].Speedup = ratio(rep.Points[i].TxPerSec, rep.Points[0].TxPerSec)
		rep.Points[i].VsGeth = ratio(rep.Points[i].TxPerSec, rep.GethTxPerSec)
	}
	rep.SerialFraction, rep.Projected100 = amdahl(rep.Points)
	return rep, nil
}

// amdahl fits Amdahl's law, speedup(n) = 1 / (s + (1-s)/n), to the last
// point with more than one core and projects the throughput at 100 cores. It
// returns zeros when no such point exists or the fit is meaningless.
func amdahl(pts []ScalingPoint) (serial, at100 float64) {
	if len(pts) < 2 || pts[0].Cores != 1 || pts[0].TxPerSec <= 0 {
		return 0, 0
	}
	p := pts[len(pts)-1]
	n := float64(p.Cores)
	if n <= 1 || p.Speedup <= 0 {
		return 0, 0
	}
	// 1/S = s + (1-s)/n  =>  s = (1/S - 1/n) / (1 - 1/n)
	serial = (1/p.Speedup - 1/n) / (1 - 1/n)
	serial = min(max(serial, 0), 1)
	return serial, pts[0].TxPerSec / (serial + (1-serial)/100)
}

// headlines extracts the report's headline figures.
func (r *SuiteReport) headlines() []Figure {
	var out []Figure
	if r.Engine != nil {
		for _, w := range r.Engine.Workloads {
			m := w.Median
			f := Figure{Key: "engine." + w.Workload, Name: "engine " + w.Workload + " (parallel, all cores)", Unit: "tx/s",
				Kestrel: m.ParallelTxPerSec, Baseline: m.GethTxPerSec, BaselineName: "go-ethereum sequential", Ratio: m.ParallelVsGeth}
			if t, ok := EngineTargets[w.Workload]; ok {
				f.Target, f.Met = fmt.Sprintf("≥%g× go-ethereum", t), boolPtr(m.ParallelVsGeth >= t)
			}
			out = append(out, f)
			if m.Speedup1To2 > 0 {
				f := Figure{Key: "engine." + w.Workload + ".speedup", Name: "engine " + w.Workload + " speedup, GOMAXPROCS 1 → 2", Unit: "×",
					Kestrel: m.Speedup1To2}
				if w.Workload == "transfers" || w.Workload == "erc20" {
					f.Target, f.Met = "≥1.7× on independent workloads", boolPtr(m.Speedup1To2 >= 1.7)
				}
				out = append(out, f)
			}
			out = append(out, Figure{Key: "engine." + w.Workload + ".mgas", Name: "engine " + w.Workload + " gas", Unit: "Mgas/s",
				Kestrel: m.ParallelMgasPerSec, Baseline: m.GethMgasPerSec, BaselineName: "go-ethereum sequential", Ratio: ratio(m.ParallelMgasPerSec, m.GethMgasPerSec)})
		}
	}
	if s := r.Scaling; s != nil {
		for _, p := range s.Points {
			out = append(out, Figure{Key: fmt.Sprintf("scaling.%s.%d", s.Workload, p.Cores), Name: fmt.Sprintf("engine %s at %d cores", s.Workload, p.Cores),
				Unit: "tx/s", Kestrel: p.TxPerSec, Baseline: s.GethTxPerSec, BaselineName: "go-ethereum sequential (1 core)", Ratio: p.VsGeth})
		}
	}
	for _, w := range r.E2E {
		m := w.Median
		f := Figure{Key: "e2e." + w.Workload, Name: "end to end " + w.Workload + " through the RPC (closed loop)", Unit: "tx/s",
			Kestrel: m.KestrelTxPerSec, Baseline: m.GethTxPerSec, Target: "≥3× geth --dev"}
		if m.GethTxPerSec > 0 {
			f.BaselineName, f.Ratio, f.Met = "geth --dev", m.Ratio, boolPtr(m.Ratio >= 3)
		}
		out = append(out, f)
		lower := func(key, name, unit string, k, g float64) {
			f := Figure{Key: key, Name: name, Unit: unit, Kestrel: k, LowerBetter: true}
			if g > 0 {
				f.Baseline, f.BaselineName, f.Ratio = g, "geth --dev", ratio(g, k)
			}
			out = append(out, f)
		}
		lower("e2e."+w.Workload+".p50", "send → sync-send answer p50 "+w.Workload, "ms", m.KestrelP50Ms, m.GethP50Ms)
		lower("e2e."+w.Workload+".p99", "send → sync-send answer p99 "+w.Workload, "ms", m.KestrelP99Ms, m.GethP99Ms)
		lower("e2e."+w.Workload+".cpu", "CPU per transaction "+w.Workload, "µs", m.KestrelCPUPerTxUs, m.GethCPUPerTxUs)
		reads := func(key, name string, k float64) {
			if k <= 0 {
				return
			}
			f := Figure{Key: key, Name: name, Unit: "req/s", Kestrel: k}
			if m.GethReads > 0 {
				f.Baseline, f.BaselineName, f.Ratio = m.GethReads, "geth --dev", ratio(k, m.GethReads)
			}
			out = append(out, f)
		}
		reads("e2e."+w.Workload+".reads.sequencer", "eth_getBalance on the sequencer after "+w.Workload, m.SequencerReads)
		reads("e2e."+w.Workload+".reads.replica", "eth_getBalance on a replica after "+w.Workload, m.ReplicaReads)
		lower("e2e."+w.Workload+".visible.p99", "send → visible on a replica p99 "+w.Workload, "ms", m.VisibleP99Ms, 0)
		lower("e2e."+w.Workload+".lag.p99", "replica lag p99 "+w.Workload, "ms", m.LagP99Ms, 0)
		lower("e2e."+w.Workload+".stream", "stream bytes per transaction "+w.Workload, "B", m.StreamBytesPerTx, 0)
	}
	if r.RPC != nil {
		for _, m := range r.RPC.Methods {
			f := Figure{Key: "rpc." + m.Key, Name: "RPC " + m.Name, Unit: "req/s", Kestrel: m.Median.KestrelReqPerSec,
				Baseline: m.Median.GethReqPerSec, BaselineName: "go-ethereum RPC", Ratio: m.Median.Ratio, Met: m.Median.TargetMet}
			if m.Target > 0 {
				f.Target = fmt.Sprintf("≥%g× go-ethereum", m.Target)
			}
			out = append(out, f)
		}
	}
	if m := r.Memory; m != nil {
		out = append(out, Figure{Key: "memory.account", Name: fmt.Sprintf("memory per funded account at %d accounts", m.Accounts), Unit: "B",
			Kestrel: m.KestrelPerAccount, Baseline: m.GethPerAccount, BaselineName: "go-ethereum StateDB + in-memory trie database",
			Ratio: ratio(m.GethPerAccount, m.KestrelPerAccount), LowerBetter: true, Target: "≤400 B at 1M accounts",
			Met: boolPtr(m.KestrelPerAccount <= 400)})
	}
	return out
}

// WriteJSON writes the report.
func (r *SuiteReport) WriteJSON(path string) error { return writeJSON(path, r) }

// ReadSuiteReport reads a report.json.
func ReadSuiteReport(path string) (*SuiteReport, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r SuiteReport
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: not a bench report: %w", path, err)
	}
	if r.Version != SuiteReportVersion {
		return nil, fmt.Errorf("%s: report version %d, this kestrel reads version %d", path, r.Version, SuiteReportVersion)
	}
	return &r, nil
}

// fmtNum prints a figure with sensible precision.
func fmtNum(v float64) string {
	switch {
	case v == 0:
		return "–"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func fmtRatio(f Figure) string {
	if f.Ratio == 0 {
		return "–"
	}
	s := fmt.Sprintf("%.2f×", f.Ratio)
	if f.LowerBetter {
		s += " (lower is better)"
	}
	return s
}

func fmtMet(f Figure) string {
	switch {
	case f.Target == "":
		return ""
	case f.Met == nil:
		return f.Target
	case *f.Met:
		return f.Target + ": met"
	}
	return f.Target + ": **missed**"
}

// WriteTable prints the headline figures.
func (r *SuiteReport) WriteTable(out io.Writer) {
	fmt.Fprintf(out, "Kestrel bench, %s, %d cores (%s), %s\n\n", r.Started.Format(time.RFC3339), r.Machine.NumCPU, r.Machine.CPUModel, r.Machine.GoVersion)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tunit\tkestrel\tbaseline\tratio\ttarget")
	for _, f := range r.Figures {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Name, f.Unit, fmtNum(f.Kestrel), fmtNum(f.Baseline), fmtRatio(f), strings.ReplaceAll(fmtMet(f), "**", ""))
	}
	tw.Flush()
}

// WriteFiles writes report.json, report.md and the plots into dir.
func (r *SuiteReport) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	r.Plots = nil
	var errs []error
	for _, p := range r.plots() {
		if err := p.draw(filepath.Join(dir, p.file)); err != nil {
			errs = append(errs, err)
			continue
		}
		r.Plots = append(r.Plots, p.file)
	}
	errs = append(errs, r.WriteJSON(filepath.Join(dir, "report.json")))
	errs = append(errs, os.WriteFile(filepath.Join(dir, "report.md"), []byte(r.Markdown()), 0o644))
	return errors.Join(errs...)
}

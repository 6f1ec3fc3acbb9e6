package bench

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// suitePlot is one PNG of the report.
type suitePlot struct {
	file, title string
	draw        func(path string) error
}

// rateOver turns cumulative counts sampled over time into a rate per second
// over a sliding window of half a second (a tenth of a second for runs
// shorter than five seconds).
func rateOver(name string, s Series) Series {
	out := Series{Name: name}
	window := 0.5
	if n := len(s.X); n == 0 || s.X[n-1] < 5 {
		window = 0.1
	}
	j := 0
	for i := range s.X {
		for j < i && s.X[i]-s.X[j] > window+0.01 {
			j++
		}
		if i == j {
			continue
		}
		out.X = append(out.X, s.X[i])
		out.Y = append(out.Y, (s.Y[i]-s.Y[j])/(s.X[i]-s.X[j]))
	}
	return out
}

// plots lists the plots the report has data for.
func (r *SuiteReport) plots() []suitePlot {
	var out []suitePlot
	if s := r.Scaling; s != nil && len(s.Points) > 0 {
		k := Series{Name: "Kestrel parallel engine"}
		g := Series{Name: "go-ethereum sequential (1 core)"}
		for _, p := range s.Points {
			k.X, k.Y = append(k.X, float64(p.Cores)), append(k.Y, p.TxPerSec)
			g.X, g.Y = append(g.X, float64(p.Cores)), append(g.Y, s.GethTxPerSec)
		}
		title := fmt.Sprintf("Throughput vs cores: %s, %d txs", s.Workload, s.Txs)
		out = append(out, suitePlot{"throughput-vs-cores.png", title, func(path string) error {
			return LinePlot(path, title, "cores (GOMAXPROCS)", "tx/s", []Series{k, g})
		}})
	}
	for _, w := range r.E2E {
		if len(w.Runs) == 0 {
			continue
		}
		run := w.Runs[0]
		var cdf, over []Series
		named := func(name string, s Series) Series { s.Name = name; return s }
		if len(run.Kestrel.LatencyCDF.X) > 0 {
			cdf = append(cdf, named("Kestrel", run.Kestrel.LatencyCDF))
		}
		over = append(over, rateOver("Kestrel", run.Kestrel.Over))
		if g := run.Geth; g != nil {
			if len(g.LatencyCDF.X) > 0 {
				cdf = append(cdf, named("geth --dev", g.LatencyCDF))
			}
			over = append(over, rateOver("geth --dev", g.Over))
		}
		if len(cdf) > 0 {
			title := fmt.Sprintf("Latency CDF: %s, send → sync-send answer at %d tx/s", w.Workload, w.Rate)
			out = append(out, suitePlot{"latency-cdf-" + w.Workload + ".png", title, func(path string) error {
				return LinePlot(path, title, "latency (ms)", "share of transactions", cdf)
			}})
		}
		title := fmt.Sprintf("Throughput over time: %s, %d txs closed loop", w.Workload, w.Txs)
		out = append(out, suitePlot{"throughput-over-time-" + w.Workload + ".png", title, func(path string) error {
			return LinePlot(path, title, "seconds", "tx/s included", over)
		}})
	}
	return out
}

// Markdown renders the report.
func (r *SuiteReport) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Kestrel bench report\n\n")
	mode := "full"
	if r.Quick {
		mode = "quick (small workloads: a smoke test, not figures to quote)"
	}
	fmt.Fprintf(&b, "- Started %s, took %v; mode: %s; phases: %s\n", r.Started.Format(time.RFC3339), r.Elapsed.Round(time.Second), mode, strings.Join(r.Phases, ", "))
	fmt.Fprintf(&b, "- Machine: %d cores (%s), %s, %s, GOMAXPROCS %d, GC percent %d, load average at start %s\n",
		r.Machine.NumCPU, r.Machine.CPUModel, r.Machine.OS, r.Machine.GoVersion, r.Machine.GOMAXPROCS, r.Machine.GCPercent, r.Machine.LoadAvg)
	fmt.Fprintf(&b, "- Every ratio is against a baseline measured in this run; above 1 favours Kestrel (for lower-is-better figures the ratio is baseline ÷ Kestrel). Medians over runs.\n")
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	b.WriteString("\n## Headline figures\n\n| figure | unit | Kestrel | baseline | ratio | target |\n|---|---|---:|---:|---:|---|\n")
	for _, f := range r.Figures {
		base := fmtNum(f.Baseline)
		if f.BaselineName != "" {
			base += " (" + f.BaselineName + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", f.Name, f.Unit, fmtNum(f.Kestrel), base, fmtRatio(f), fmtMet(f))
	}
	if len(r.E2E) > 0 {
		b.WriteString("\n## End to end\n\n")
		b.WriteString("Load generator → JSON-RPC (batched `eth_sendRawTransaction`, closed loop at saturation) → node. Kestrel: a sequencer with its embedded NATS stream and replicas, in the bench process; done when every sender's nonce at `pending` (the newest durable mini-block) is final. geth: a `geth --dev` process on the same genesis; done at `latest`. Then `eth_sendRawTransactionSync` open loop at the given rate.\n\n")
		b.WriteString("| workload | Kestrel tx/s | geth tx/s | ratio | Kestrel Mgas/s | geth Mgas/s | sync p50/p90/p99 ms Kestrel | geth | replica visible p50/p99 ms | lag p50/p99 ms | stream B/tx | re-exec/block | CPU µs/tx Kestrel / geth |\n|---|---:|---:|---:|---:|---:|---|---|---|---|---:|---:|---|\n")
		for _, w := range r.E2E {
			m := w.Median
			fmt.Fprintf(&b, "| %s | %s | %s | %.2f× | %s | %s | %s / %s / %s | %s / %s / %s | %s / %s | %s / %s | %s | %s | %s / %s |\n", w.Workload,
				fmtNum(m.KestrelTxPerSec), fmtNum(m.GethTxPerSec), m.Ratio, fmtNum(m.KestrelMgasPerSec), fmtNum(m.GethMgasPerSec),
				fmtNum(m.KestrelP50Ms), fmtNum(m.KestrelP90Ms), fmtNum(m.KestrelP99Ms), fmtNum(m.GethP50Ms), fmtNum(m.GethP90Ms), fmtNum(m.GethP99Ms),
				fmtNum(m.VisibleP50Ms), fmtNum(m.VisibleP99Ms), fmtNum(m.LagP50Ms), fmtNum(m.LagP99Ms), fmtNum(m.StreamBytesPerTx),
				fmtNum(m.ReExecPerBlock), fmtNum(m.KestrelCPUPerTxUs), fmtNum(m.GethCPUPerTxUs))
		}
		b.WriteString("\n### Stage split (sequencer, µs per transaction, closed loop)\n\nStages run on different goroutines and overlap; each is its own cost per transaction.\n\n| workload |")
		for _, s := range StageNames {
			b.WriteString(" " + s + " |")
		}
		b.WriteString(" three largest |\n|---|" + strings.Repeat("---:|", len(StageNames)) + "---|\n")
		for _, w := range r.E2E {
			fmt.Fprintf(&b, "| %s |", w.Workload)
			for _, s := range StageNames {
				fmt.Fprintf(&b, " %s |", fmtNum(w.Median.Stages[s]))
			}
			fmt.Fprintf(&b, " %s |\n", strings.Join(TopStages(w.Median.Stages, 3), ", "))
		}
		fmt.Fprintf(&b, "\nPeak RSS: ")
		for i, w := range r.E2E {
			if i > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "%s Kestrel bench process %.0f MiB (sequencer, replicas, NATS, workload), geth %.0f MiB", w.Workload,
				float64(w.Median.KestrelPeakRSS)/(1<<20), float64(w.Median.GethPeakRSS)/(1<<20))
		}
		b.WriteString(".\n")
	}
	if s := r.Scaling; s != nil {
		fmt.Fprintf(&b, "\n## Scaling (parallel engine, %s, %d txs)\n\n| cores | tx/s | Mgas/s | speedup vs 1 core | vs go-ethereum |\n|---:|---:|---:|---:|---:|\n", s.Workload, s.Txs)
		for _, p := range s.Points {
			fmt.Fprintf(&b, "| %d | %s | %s | %.2f× | %.2f× |\n", p.Cores, fmtNum(p.TxPerSec), fmtNum(p.MgasPerSec), p.Speedup, p.VsGeth)
		}
		if s.Projected100 > 0 {
			fmt.Fprintf(&b, "\nAmdahl's law fitted to the last point gives a serial fraction of %.2f and a *projection* of %s tx/s at 100 cores; measured on more cores (a 16-core host) the curve replaces the projection.\n",
				s.SerialFraction, fmtNum(s.Projected100))
		}
	}
	section := func(title string, write func(io.Writer)) {
		var buf bytes.Buffer
		write(&buf)
		fmt.Fprintf(&b, "\n## %s\n\n```text\n%s```\n", title, buf.String())
	}
	if r.Engine != nil {
		section("Engine (execution only, same blocks)", r.Engine.WriteTable)
	}
	if r.RPC != nil {
		section("RPC read load (sequencer vs go-ethereum's RPC on the same state)", r.RPC.WriteTable)
	}
	if m := r.Memory; m != nil {
		fmt.Fprintf(&b, "\n## Memory\n\n%d funded accounts: Kestrel's flat state and trie hold %.0f B per account (%.0f MiB, built in %v); go-ethereum's StateDB committed to an in-memory trie database %.0f B per account (%.0f MiB, %v). State roots equal: %s.\n",
			m.Accounts, m.KestrelPerAccount, float64(m.KestrelBytes)/(1<<20), m.KestrelBuild.Round(time.Millisecond),
			m.GethPerAccount, float64(m.GethBytes)/(1<<20), m.GethBuild.Round(time.Millisecond), m.KestrelRoot)
	}
	if len(r.Plots) > 0 {
		b.WriteString("\n## Plots\n\n")
		for _, p := range r.Plots {
			fmt.Fprintf(&b, "![%s](%s)\n\n", p, p)
		}
	}
	return b.String()
}

// TopStages names the n stages with the largest cost, largest first.
func TopStages(stages map[string]float64, n int) []string {
	names := make([]string, 0, len(stages))
	for k, v := range stages {
		if v > 0 {
			names = append(names, k)
		}
	}
	sort.Slice(names, func(i, j int) bool {
		if stages[names[i]] != stages[names[j]] {
			return stages[names[i]] > stages[names[j]]
		}
		return names[i] < names[j]
	})
	if len(names) > n {
		names = names[:n]
	}
	for i, s := range names {
		names[i] = fmt.Sprintf("%s %.1f µs", s, stages[s])
	}
	return names
}

// Comparison is one figure in two reports.
type Comparison struct {
	Figure
	B float64 `json:"b"`
	// Change is B over A (Kestrel's value), minus one; Better says whether
	// the change is an improvement given the figure's direction.
	Change float64 `json:"change"`
	Better bool    `json:"better"`
}

// CompareReports pairs the figures two reports share, in a's order, and
// lists the keys only one of them has.
func CompareReports(a, b *SuiteReport) (out []Comparison, onlyA, onlyB []string) {
	bk := map[string]Figure{}
	for _, f := range b.Figures {
		bk[f.Key] = f
	}
	seen := map[string]bool{}
	for _, f := range a.Figures {
		seen[f.Key] = true
		g, ok := bk[f.Key]
		if !ok {
			onlyA = append(onlyA, f.Key)
			continue
		}
		c := Comparison{Figure: f, B: g.Kestrel}
		if f.Kestrel != 0 {
			c.Change = g.Kestrel/f.Kestrel - 1
		}
		c.Better = (c.Change > 0) != f.LowerBetter && c.Change != 0
		out = append(out, c)
	}
	for _, f := range b.Figures {
		if !seen[f.Key] {
			onlyB = append(onlyB, f.Key)
		}
	}
	return out, onlyA, onlyB
}

// WriteComparison prints CompareReports' table.
func WriteComparison(w io.Writer, a, b *SuiteReport, nameA, nameB string) {
	cs, onlyA, onlyB := CompareReports(a, b)
	fmt.Fprintf(w, "A: %s (%s, %d cores)\nB: %s (%s, %d cores)\n\n", nameA, a.Started.Format(time.RFC3339), a.Machine.NumCPU,
		nameB, b.Started.Format(time.RFC3339), b.Machine.NumCPU)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tunit\tA\tB\tchange\t")
	for _, c := range cs {
		mark := ""
		switch {
		case math.Abs(c.Change) < 0.05:
			mark = "≈"
		case c.Better:
			mark = "better"
		default:
			mark = "worse"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%+.1f%%\t%s\n", c.Name, c.Unit, fmtNum(c.Kestrel), fmtNum(c.B), 100*c.Change, mark)
	}
	tw.Flush()
	if len(onlyA) > 0 {
		fmt.Fprintf(w, "\nonly in A: %s\n", strings.Join(onlyA, ", "))
	}
	if len(onlyB) > 0 {
		fmt.Fprintf(w, "only in B: %s\n", strings.Join(onlyB, ", "))
	}
}

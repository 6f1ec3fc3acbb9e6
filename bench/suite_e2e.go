package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/kestrel-l2/kestrel/sequencer"
)

// E2EOptions configure the end-to-end phase of the suite: the same
// pre-signed transactions sent through JSON-RPC to Kestrel (a sequencer with
// its diff stream and replicas, in this process) and to a `geth --dev`
// process, closed loop at saturation and then open loop at Rate.
type E2EOptions struct {
	Kinds []Kind
	// Txs per closed-loop run, from Senders accounts.
	Txs, Senders int
	// Rate (tx/s) and Duration are the open-loop latency phase (Rate 0: skip).
	Rate     int
	Duration time.Duration
	// ReadDuration is the closed-loop eth_getBalance load run against each
	// node after the sending phases (0: skip).
	ReadDuration time.Duration
	Runs         int
	Replicas     int
	// Conns and Batch shape the closed-loop sender.
	Conns, Batch int
	// Geth is the geth binary ("": skip the baseline).
	Geth string
	Dir  string
	Seed uint64
	// Profile, when set, receives a CPU profile of this process during each
	// workload's first Kestrel closed loop, as Profile-WORKLOAD.
	Profile string
	Logger  *slog.Logger
	// Progress receives log lines and the live status.
	Progress *LiveProgress
}

// E2ESide is one target's figures in one run.
type E2ESide struct {
	TxPerSec   float64       `json:"txPerSec"`
	MgasPerSec float64       `json:"mgasPerSec"`
	Elapsed    time.Duration `json:"elapsedNs"`
	// CPUPerTxUs is CPU time per transaction during the closed-loop phase, in
	// microseconds: for Kestrel the whole bench process (sequencer, replicas,
	// NATS and load generator); for geth its process plus the load generator.
	CPUPerTxUs float64 `json:"cpuPerTxUs"`
	// PeakRSS is the peak resident set of the process holding the node (for
	// Kestrel: the bench process, with its replicas and workload).
	PeakRSS uint64 `json:"peakRssBytes"`
	// Open loop: send -> eth_sendRawTransactionSync answer.
	Latency *LatencyResult `json:"latency,omitempty"`
	// Over is cumulative transactions included against seconds since the
	// closed-loop phase began.
	Over Series `json:"overTime"`
	// Reads is closed-loop eth_getBalance on the node's state after the run
	// (for Kestrel, the sequencer).
	Reads *RPCLoad `json:"reads,omitempty"`
	// LatencyCDF is the open-loop latencies' distribution (ms, share).
	LatencyCDF Series `json:"latencyCdf"`
}

// KestrelExtras are the figures only Kestrel has.
type KestrelExtras struct {
	// VisibleP50/P99: open-loop send -> the transaction applied on a replica
	// (every replica, pooled), in ms.
	VisibleP50Ms float64 `json:"replicaVisibleP50Ms"`
	VisibleP99Ms float64 `json:"replicaVisibleP99Ms"`
	// Lag: a mini-block durable on the sequencer -> applied on a replica, in
	// the open-loop phase, in ms.
	LagP50Ms float64 `json:"replicaLagP50Ms"`
	LagP99Ms float64 `json:"replicaLagP99Ms"`
	// StreamBytesPerTx is mini-block message bytes per transaction.
	StreamBytesPerTx float64 `json:"streamBytesPerTx"`
	// ReExecPerBlock is the parallel engine's re-executions per sealed block.
	ReExecPerBlock float64 `json:"reExecutionsPerBlock"`
	// Stages is the sequencer's time per transaction by stage, in µs.
	Stages map[string]float64 `json:"stageUsPerTx"`
	// ReplicaReads is the read load on the first replica.
	ReplicaReads *RPCLoad `json:"replicaReads,omitempty"`
}

// E2ERun is one run of one workload on both targets.
type E2ERun struct {
	Run     int           `json:"run"`
	Kestrel E2ESide       `json:"kestrel"`
	Extras  KestrelExtras `json:"kestrelExtras"`
	Geth    *E2ESide      `json:"geth,omitempty"`
}

// E2ESummary holds medians over runs.
type E2ESummary struct {
	KestrelTxPerSec   float64            `json:"kestrelTxPerSec"`
	GethTxPerSec      float64            `json:"gethTxPerSec"`
	Ratio             float64            `json:"ratio"`
	KestrelMgasPerSec float64            `json:"kestrelMgasPerSec"`
	GethMgasPerSec    float64            `json:"gethMgasPerSec"`
	KestrelCPUPerTxUs float64            `json:"kestrelCpuPerTxUs"`
	GethCPUPerTxUs    float64            `json:"gethCpuPerTxUs"`
	KestrelP50Ms      float64            `json:"kestrelSyncP50Ms"`
	KestrelP90Ms      float64            `json:"kestrelSyncP90Ms"`
	KestrelP99Ms      float64            `json:"kestrelSyncP99Ms"`
	GethP50Ms         float64            `json:"gethSyncP50Ms"`
	GethP90Ms         float64            `json:"gethSyncP90Ms"`
	GethP99Ms         float64            `json:"gethSyncP99Ms"`
	VisibleP50Ms      float64            `json:"replicaVisibleP50Ms"`
	VisibleP99Ms      float64            `json:"replicaVisibleP99Ms"`
	LagP50Ms          float64            `json:"replicaLagP50Ms"`
	LagP99Ms          float64            `json:"replicaLagP99Ms"`
	StreamBytesPerTx  float64            `json:"streamBytesPerTx"`
	ReExecPerBlock    float64            `json:"reExecutionsPerBlock"`
	Stages            map[string]float64 `json:"stageUsPerTx"`
	KestrelPeakRSS    uint64             `json:"kestrelPeakRssBytes"`
	GethPeakRSS       uint64             `json:"gethPeakRssBytes"`
	// Closed-loop eth_getBalance requests/s on the run's final state.
	SequencerReads float64 `json:"sequencerReadsPerSec"`
	ReplicaReads   float64 `json:"replicaReadsPerSec"`
	GethReads      float64 `json:"gethReadsPerSec"`
}

// E2EWorkload is everything measured for one workload.
type E2EWorkload struct {
	Workload string     `json:"workload"`
	Txs      int        `json:"txs"`
	Senders  int        `json:"senders"`
	Rate     int        `json:"openLoopRate"`
	Runs     []E2ERun   `json:"runs"`
	Median   E2ESummary `json:"median"`
}

// StageNames are the stage split's stages in report order.
var StageNames = []string{"ingress", "execution", "sealing", "merklization", "persistence", "publish"}

func (o *E2EOptions) say(format string, args ...any) {
	fmt.Fprintf(o.Progress, format+"\n", args...)
}

// RunE2E runs the end-to-end phase for every workload.
func RunE2E(ctx context.Context, o E2EOptions) ([]E2EWorkload, error) {
	var out []E2EWorkload
	for _, kind := range o.Kinds {
		wr, err := runE2EWorkload(ctx, o, kind)
		if err != nil {
			return out, fmt.Errorf("e2e %s: %w", kind, err)
		}
		out = append(out, *wr)
	}
	return out, nil
}

func runE2EWorkload(ctx context.Context, o E2EOptions, kind Kind) (*E2EWorkload, error) {
	extra := 0
	if o.Rate > 0 {
		extra = int(float64(o.Rate) * o.Duration.Seconds())
	}
	cfg := WorkloadConfig{Kind: kind, Txs: o.Txs, Extra: extra, Senders: o.Senders, Seed: o.Seed}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	o.say("[e2e %s] signing %d transactions from %d senders", kind, cfg.Txs+cfg.Extra, cfg.Senders)
	w, err := Generate(cfg)
	if err != nil {
		return nil, err
	}
	wr := &E2EWorkload{Workload: string(kind), Txs: o.Txs, Senders: cfg.Senders, Rate: o.Rate}
	for run := 1; run <= o.Runs; run++ {
		er := E2ERun{Run: run}
		runtime.GC()
		if err := runKestrelE2E(ctx, o, w, &er); err != nil {
			return nil, fmt.Errorf("kestrel run %d: %w", run, err)
		}
		if o.Geth != "" {
			runtime.GC()
			side, err := runGethE2E(ctx, o, w)
			if err != nil {
				return nil, fmt.Errorf("geth --dev run %d: %w", run, err)
			}
			er.Geth = side
		}
		wr.Runs = append(wr.Runs, er)
	}
	wr.Median = summarizeE2E(wr.Runs)
	return wr, nil
}

func runKestrelE2E(ctx context.Context, o E2EOptions, w *Workload, er *E2ERun) error {
	kind := w.Config.Kind
	// The peak RSS figure is this run's: earlier phases' memory goes back to
	// the OS and the kernel's high-water mark starts again from here.
	debug.FreeOSMemory()
	resetPeakRSS()
	c, err := startCluster(ctx, w, ReplicaOptions{Dir: o.Dir, Logger: o.Logger}, o.Replicas)
	if err != nil {
		return err
	}
	defer func() { _ = c.stop() }()
	seq := c.node.Seq
	url := c.node.URL()
	side := &er.Kestrel
	o.Progress.Task(fmt.Sprintf("e2e %s run %d: kestrel closed loop", kind, er.Run), int64(len(w.Throughput())), "tx")

	st0, t0 := seq.Stages(), seq.Totals()
	e0, _ := seq.EngineStats()
	p0 := seq.Publisher().Stats()
	h0 := sealedHead(ctx, url)
	stopProfile := func() {}
	if o.Profile != "" && er.Run == 1 {
		if stopProfile, err = startProfile(o.Profile + "-" + string(kind)); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
	}
	tr, err := RunThroughput(ctx, url, w, w.Throughput(), SendOptions{Conns: o.Conns, Batch: o.Batch, Sample: func(el time.Duration) {
		n := int64(seq.Totals().Txs - t0.Txs)
		o.Progress.Set(n)
		side.Over.X = append(side.Over.X, el.Seconds())
		side.Over.Y = append(side.Over.Y, float64(n))
	}})
	stopProfile()
	if err != nil {
		return fmt.Errorf("closed loop: %w", err)
	}
	t1 := seq.Totals()
	side.TxPerSec, side.Elapsed = tr.TxPerSec, tr.Elapsed
	side.CPUPerTxUs = float64(tr.CPU.Microseconds()) / float64(tr.Txs)
	if err := waitSealed(ctx, url); err != nil {
		return err
	}
	if err := waitApplied(ctx, c.replicas, seq.MiniBlockHead(), 5*time.Minute); err != nil {
		return err
	}
	time.Sleep(200 * time.Millisecond) // the publisher's last headers
	// The sealer and the publisher finish the run's blocks after the last
	// transaction is durable: their stage times are read once they have.
	st1 := seq.Stages()
	h1 := sealedHead(ctx, url)
	gas, err := gasUsed(ctx, url, h0+1, h1)
	if err != nil {
		return err
	}
	side.MgasPerSec = float64(gas) / 1e6 / tr.Elapsed.Seconds()
	txs := float64(t1.Txs - t0.Txs)
	ex := &er.Extras
	ex.Stages = stageSplit(st0, st1, txs)
	ex.StreamBytesPerTx = float64(seq.Publisher().Stats().MiniBytes-p0.MiniBytes) / txs
	if e1, ok := seq.EngineStats(); ok && h1 > h0 {
		ex.ReExecPerBlock = float64(e1.ReExecutions-e0.ReExecutions) / float64(h1-h0)
	}
	o.say("[e2e %s] run %d: kestrel %d txs in %v = %.0f tx/s, %.1f Mgas/s, %.1f µs CPU/tx; stream %.1f B/tx; %.1f re-executions/block",
		kind, er.Run, tr.Txs, tr.Elapsed.Round(time.Millisecond), tr.TxPerSec, side.MgasPerSec, side.CPUPerTxUs, ex.StreamBytesPerTx, ex.ReExecPerBlock)

	if o.Rate > 0 {
		time.Sleep(time.Second)
		o.Progress.Task(fmt.Sprintf("e2e %s run %d: kestrel open loop at %d tx/s", kind, er.Run, o.Rate), 0, "")
		lctx, stopWatch := context.WithCancel(ctx)
		defer stopWatch()
		from := seq.MiniBlockHead() + 1
		seqStamps := watchHub(lctx, seq.Hub(), from, false)
		var reps []*stamps
		for _, r := range c.replicas {
			reps = append(reps, watchHub(lctx, r.Node().Hub(), from, true))
		}
		lr, err := RunLatency(ctx, url, w.Extra(), LatencyOptions{Rate: o.Rate})
		if err != nil {
			return fmt.Errorf("open loop: %w", err)
		}
		if lr.OK == 0 {
			return fmt.Errorf("open loop: no call succeeded: %s", summarizeErrors(lr.ErrorSamples))
		}
		last := seq.MiniBlockHead()
		if err := waitApplied(ctx, c.replicas, last, time.Minute); err != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
		stopWatch()
		side.Latency, side.LatencyCDF = lr, CDF("", lr.latenciesMs())
		var visible []time.Duration
		extra := w.Extra()
		for _, rs := range reps {
			rs.mu.Lock()
			for i, ok := range lr.ok {
				if at, seen := rs.txs[extra[i].Hash]; ok && seen {
					visible = append(visible, at.Sub(lr.slot(i)))
				}
			}
			rs.mu.Unlock()
		}
		if len(visible) > 0 {
			slices.Sort(visible)
			ex.VisibleP50Ms, ex.VisibleP99Ms = msf(percentile(visible, 50)), msf(percentile(visible, 99))
		}
		if lags, _ := stampLags(seqStamps, reps, from, last); len(lags) > 0 {
			ex.LagP50Ms, ex.LagP99Ms = msf(percentile(lags, 50)), msf(percentile(lags, 99))
		}
		o.say("[e2e %s] run %d: kestrel open loop at %d tx/s: sync send p50 %v p90 %v p99 %v (%d errors); replica visible p50 %.2fms p99 %.2fms; lag p50 %.2fms p99 %.2fms",
			kind, er.Run, o.Rate, ms(lr.P50), ms(lr.P90), ms(lr.P99), lr.Errors, ex.VisibleP50Ms, ex.VisibleP99Ms, ex.LagP50Ms, ex.LagP99Ms)
	}
	if o.ReadDuration > 0 {
		o.Progress.Task(fmt.Sprintf("e2e %s run %d: kestrel reads", kind, er.Run), 0, "")
		if side.Reads, err = readLoad(ctx, url, w, o.ReadDuration); err != nil {
			return fmt.Errorf("reads on the sequencer: %w", err)
		}
		if len(c.replicas) > 0 {
			if ex.ReplicaReads, err = readLoad(ctx, "http://"+c.replicas[0].RPCAddr(), w, o.ReadDuration); err != nil {
				return fmt.Errorf("reads on a replica: %w", err)
			}
			o.say("[e2e %s] run %d: eth_getBalance closed loop: sequencer %.0f req/s, replica %.0f req/s", kind, er.Run,
				side.Reads.ReqPerSec, ex.ReplicaReads.ReqPerSec)
		}
	}
	side.PeakRSS = procPeakRSS(os.Getpid())
	return nil
}

// readLoad runs closed-loop eth_getBalance calls at "latest" on the
// workload's senders and recipients against url for d.
func readLoad(ctx context.Context, url string, w *Workload, d time.Duration) (*RPCLoad, error) {
	r := rand.New(rand.NewPCG(w.Config.Seed, 0x72656164))
	bodies := make([][]byte, 1024)
	for i := range bodies {
		addr := w.Recipients[r.IntN(len(w.Recipients))]
		if i%2 == 0 {
			addr = w.Senders[r.IntN(len(w.Senders))].Addr
		}
		bodies[i] = mustAppendCall(nil, 1, "eth_getBalance", addr, "latest")
	}
	return closedLoop(ctx, url, bodies, 1, 8, d/5, d)
}

func runGethE2E(ctx context.Context, o E2EOptions, w *Workload) (*E2ESide, error) {
	kind := w.Config.Kind
	g, err := StartGethDev(ctx, o.Geth, o.Dir, w.Genesis())
	if err != nil {
		return nil, err
	}
	defer func() { _ = g.Stop() }()
	url := g.URL()
	side := &E2ESide{}
	counter, err := newBlockCounter(url)
	if err != nil {
		return nil, err
	}
	defer counter.c.close()
	o.Progress.Task(fmt.Sprintf("e2e %s: geth --dev closed loop", kind), int64(len(w.Throughput())), "tx")
	h0 := counter.head
	cpu0 := g.CPU()
	tr, err := RunThroughput(ctx, url, w, w.Throughput(), SendOptions{Conns: o.Conns, Batch: o.Batch, StateTag: "latest",
		Sample: func(el time.Duration) {
			n := counter.poll()
			o.Progress.Set(n)
			side.Over.X = append(side.Over.X, el.Seconds())
			side.Over.Y = append(side.Over.Y, float64(n))
		}})
	if err != nil {
		return nil, fmt.Errorf("closed loop: %w (geth log: %s)", err, g.logTail())
	}
	gethCPU := g.CPU() - cpu0
	side.TxPerSec, side.Elapsed = tr.TxPerSec, tr.Elapsed
	side.CPUPerTxUs = float64((tr.CPU + gethCPU).Microseconds()) / float64(tr.Txs)
	h1 := sealedHead(ctx, url)
	gas, err := gasUsed(ctx, url, h0+1, h1)
	if err != nil {
		return nil, err
	}
	side.MgasPerSec = float64(gas) / 1e6 / tr.Elapsed.Seconds()
	o.say("[e2e %s] geth --dev: %d txs in %v = %.0f tx/s, %.1f Mgas/s, %.1f µs CPU/tx (%d blocks)",
		kind, tr.Txs, tr.Elapsed.Round(time.Millisecond), tr.TxPerSec, side.MgasPerSec, side.CPUPerTxUs, h1-h0)
	if o.Rate > 0 {
		time.Sleep(time.Second)
		o.Progress.Task(fmt.Sprintf("e2e %s: geth --dev open loop at %d tx/s", kind, o.Rate), 0, "")
		lr, err := RunLatency(ctx, url, w.Extra(), LatencyOptions{Rate: o.Rate})
		if err != nil {
			return nil, fmt.Errorf("open loop: %w", err)
		}
		if lr.OK == 0 {
			return nil, fmt.Errorf("open loop: no call succeeded: %s", summarizeErrors(lr.ErrorSamples))
		}
		side.Latency, side.LatencyCDF = lr, CDF("", lr.latenciesMs())
		o.say("[e2e %s] geth --dev open loop at %d tx/s: sync send p50 %v p90 %v p99 %v (%d errors)",
			kind, o.Rate, ms(lr.P50), ms(lr.P90), ms(lr.P99), lr.Errors)
	}
	if o.ReadDuration > 0 {
		o.Progress.Task(fmt.Sprintf("e2e %s: geth --dev reads", kind), 0, "")
		if side.Reads, err = readLoad(ctx, url, w, o.ReadDuration); err != nil {
			return nil, fmt.Errorf("reads: %w", err)
		}
		o.say("[e2e %s] geth --dev: eth_getBalance closed loop %.0f req/s", kind, side.Reads.ReqPerSec)
	}
	side.PeakRSS = g.PeakRSS()
	return side, nil
}

// stageSplit is the sequencer's time per transaction by stage, in µs.
func stageSplit(a, b sequencer.Stages, txs float64) map[string]float64 {
	if txs <= 0 {
		return nil
	}
	d := func(x, y time.Duration) float64 { return float64((y - x).Nanoseconds()) / 1e3 / txs }
	return map[string]float64{
		"ingress": d(a.Ingress, b.Ingress), "execution": d(a.Execution, b.Execution), "sealing": d(a.Sealing, b.Sealing),
		"merklization": d(a.Merklization, b.Merklization), "persistence": d(a.Persistence, b.Persistence), "publish": d(a.Publish, b.Publish),
	}
}

// sealedHead is the node's newest sealed block number (0 on error: the gas
// figure then covers more blocks, never fewer).
func sealedHead(ctx context.Context, url string) uint64 {
	c, err := newRPCClient(url, 1)
	if err != nil {
		return 0
	}
	defer c.close()
	var n hexutil.Uint64
	if err := c.call(&n, "eth_blockNumber"); err != nil {
		return 0
	}
	return uint64(n)
}

// gasUsed sums the gas used by blocks from..to.
func gasUsed(ctx context.Context, url string, from, to uint64) (uint64, error) {
	c, err := newRPCClient(url, 1)
	if err != nil {
		return 0, err
	}
	defer c.close()
	var total uint64
	for first := from; first <= to; first += maxBatch {
		var calls []rpcCall
		for n := first; n <= min(to, first+maxBatch-1); n++ {
			calls = append(calls, rpcCall{"eth_getBlockByNumber", []any{hexutil.Uint64(n), false}})
		}
		rs, err := c.batch(calls)
		if err != nil {
			return 0, err
		}
		for _, r := range rs {
			if r.Error != nil {
				return 0, fmt.Errorf("eth_getBlockByNumber: %w", r.Error)
			}
			var b struct {
				GasUsed hexutil.Uint64 `json:"gasUsed"`
			}
			if err := json.Unmarshal(r.Result, &b); err != nil {
				return 0, err
			}
			total += uint64(b.GasUsed)
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	}
	return total, nil
}

// blockCounter counts the transactions a node includes, block by block, for
// the throughput-over-time figure of a node that has no in-process counter.
type blockCounter struct {
	c     *rpcClient
	head  uint64
	total int64
}

func newBlockCounter(url string) (*blockCounter, error) {
	c, err := newRPCClient(url, 1)
	if err != nil {
		return nil, err
	}
	var n hexutil.Uint64
	if err := c.call(&n, "eth_blockNumber"); err != nil {
		c.close()
		return nil, err
	}
	return &blockCounter{c: c, head: uint64(n)}, nil
}

// poll adds the transactions of blocks sealed since the last poll and
// returns the running total (unchanged on an error).
func (b *blockCounter) poll() int64 {
	var n hexutil.Uint64
	if err := b.c.call(&n, "eth_blockNumber"); err != nil {
		return b.total
	}
	var calls []rpcCall
	for h := b.head + 1; h <= uint64(n) && len(calls) < maxBatch; h++ {
		calls = append(calls, rpcCall{"eth_getBlockTransactionCountByNumber", []any{hexutil.Uint64(h)}})
	}
	if len(calls) == 0 {
		return b.total
	}
	rs, err := b.c.batch(calls)
	if err != nil {
		return b.total
	}
	for _, r := range rs {
		var k hexutil.Uint64
		if r.Error != nil || json.Unmarshal(r.Result, &k) != nil {
			return b.total // retried from the same block next time
		}
		b.total += int64(k)
		b.head++
	}
	return b.total
}

// summarizeE2E takes medians over runs; the ratio is of the medians.
func summarizeE2E(runs []E2ERun) E2ESummary {
	med := func(f func(r *E2ERun) (float64, bool)) float64 {
		var xs []float64
		for i := range runs {
			if v, ok := f(&runs[i]); ok {
				xs = append(xs, v)
			}
		}
		return Median(xs)
	}
	k := func(f func(s *E2ESide) float64) float64 {
		return med(func(r *E2ERun) (float64, bool) { return f(&r.Kestrel), true })
	}
	g := func(f func(s *E2ESide) float64) float64 {
		return med(func(r *E2ERun) (float64, bool) {
			if r.Geth == nil {
				return 0, false
			}
			return f(r.Geth), true
		})
	}
	x := func(f func(e *KestrelExtras) float64) float64 {
		return med(func(r *E2ERun) (float64, bool) { return f(&r.Extras), true })
	}
	lat := func(p func(l *LatencyResult) time.Duration) func(s *E2ESide) float64 {
		return func(s *E2ESide) float64 {
			if s.Latency == nil {
				return 0
			}
			return msf(p(s.Latency))
		}
	}
	s := E2ESummary{
		KestrelTxPerSec: k(func(s *E2ESide) float64 { return s.TxPerSec }), GethTxPerSec: g(func(s *E2ESide) float64 { return s.TxPerSec }),
		KestrelMgasPerSec: k(func(s *E2ESide) float64 { return s.MgasPerSec }), GethMgasPerSec: g(func(s *E2ESide) float64 { return s.MgasPerSec }),
		KestrelCPUPerTxUs: k(func(s *E2ESide) float64 { return s.CPUPerTxUs }), GethCPUPerTxUs: g(func(s *E2ESide) float64 { return s.CPUPerTxUs }),
		KestrelP50Ms: k(lat(func(l *LatencyResult) time.Duration { return l.P50 })), GethP50Ms: g(lat(func(l *LatencyResult) time.Duration { return l.P50 })),
		KestrelP90Ms: k(lat(func(l *LatencyResult) time.Duration { return l.P90 })), GethP90Ms: g(lat(func(l *LatencyResult) time.Duration { return l.P90 })),
		KestrelP99Ms: k(lat(func(l *LatencyResult) time.Duration { return l.P99 })), GethP99Ms: g(lat(func(l *LatencyResult) time.Duration { return l.P99 })),
		VisibleP50Ms: x(func(e *KestrelExtras) float64 { return e.VisibleP50Ms }), VisibleP99Ms: x(func(e *KestrelExtras) float64 { return e.VisibleP99Ms }),
		LagP50Ms: x(func(e *KestrelExtras) float64 { return e.LagP50Ms }), LagP99Ms: x(func(e *KestrelExtras) float64 { return e.LagP99Ms }),
		StreamBytesPerTx: x(func(e *KestrelExtras) float64 { return e.StreamBytesPerTx }), ReExecPerBlock: x(func(e *KestrelExtras) float64 { return e.ReExecPerBlock }),
		KestrelPeakRSS: uint64(k(func(s *E2ESide) float64 { return float64(s.PeakRSS) })), GethPeakRSS: uint64(g(func(s *E2ESide) float64 { return float64(s.PeakRSS) })),
		Stages: map[string]float64{},
	}
	reads := func(l *RPCLoad) float64 {
		if l == nil {
			return 0
		}
		return l.ReqPerSec
	}
	s.SequencerReads = k(func(s *E2ESide) float64 { return reads(s.Reads) })
	s.GethReads = g(func(s *E2ESide) float64 { return reads(s.Reads) })
	s.ReplicaReads = x(func(e *KestrelExtras) float64 { return reads(e.ReplicaReads) })
	for _, name := range StageNames {
		s.Stages[name] = x(func(e *KestrelExtras) float64 { return e.Stages[name] })
	}
	s.Ratio = ratio(s.KestrelTxPerSec, s.GethTxPerSec)
	return s
}

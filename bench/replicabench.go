package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/ethereum/go-ethereum/common"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/kestrel-l2/kestrel/replica"
	"github.com/kestrel-l2/kestrel/rpc"
	"github.com/kestrel-l2/kestrel/sequencer"
	"github.com/kestrel-l2/kestrel/stream"
)

// ReplicaOptions configure `kestrel bench replica`: a sequencer with its
// embedded diff stream and two replicas following, in one process.
type ReplicaOptions struct {
	Kinds []Kind
	// Txs is the throughput backlog per workload, sent closed-loop at the
	// sequencer's saturation; a replica started afterwards catches up on all of
	// it (the catch-up figure).
	Txs int
	// Senders is the number of funded accounts sending.
	Senders int
	// Rate and LagDuration are the open-loop phase during which the stream lag
	// is measured.
	Rate        int
	LagDuration time.Duration
	// BootstrapAccounts is the genesis size of the bootstrap phase (0: skip).
	BootstrapAccounts int
	Seed              uint64
	Dir               string
	Progress          io.Writer
	Logger            *slog.Logger
	// CPUProfile, when set, receives a CPU profile of each catch-up phase
	// (FILE-KIND).
	CPUProfile string
}

func (o *ReplicaOptions) defaults() error {
	if len(o.Kinds) == 0 {
		o.Kinds = []Kind{KindETH, KindERC20}
	}
	if o.Txs <= 0 {
		o.Txs = 1_000_000
	}
	if o.Senders <= 0 {
		o.Senders = 10_000
	}
	if o.Rate <= 0 {
		o.Rate = 10_000
	}
	if o.LagDuration <= 0 {
		o.LagDuration = 10 * time.Second
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	for _, k := range o.Kinds {
		if k != KindETH && k != KindERC20 {
			return fmt.Errorf("replica bench: workload %s not supported (eth, erc20)", k)
		}
	}
	return nil
}

// ReplicaReport is the result of `kestrel bench replica`.
type ReplicaReport struct {
	Machine   string                   `json:"machine"`
	Cores     int                      `json:"cores"`
	Workloads []*ReplicaWorkloadReport `json:"workloads"`
	Bootstrap *BootstrapFigure         `json:"bootstrap,omitempty"`
}

// ReplicaWorkloadReport holds one workload's figures.
type ReplicaWorkloadReport struct {
	Kind Kind `json:"kind"`
	Txs  int  `json:"txs"`
	// The sequencer under closed-loop load with two replicas following.
	SequencerTxPerSec float64 `json:"sequencerTxPerSec"`
	// SequencerExecTxPerSec is transactions per second of the sequencer's
	// execution time alone (the engine's Execute plus the flat-state commit),
	// over the same mini-blocks the replicas apply.
	SequencerExecTxPerSec float64 `json:"sequencerExecTxPerSec"`
	// Stream bytes per transaction: mini-block messages, and with the headers.
	MiniBytesPerTx  float64 `json:"miniBytesPerTx"`
	TotalBytesPerTx float64 `json:"totalBytesPerTx"`
	// Lag from the mini-block becoming durable on the sequencer to its
	// application on a replica, over both replicas, at the offered rate.
	LagRate     int           `json:"lagOfferedTxPerSec"`
	LagAchieved float64       `json:"lagAchievedTxPerSec"`
	LagSamples  int           `json:"lagSamples"`
	LagP50      time.Duration `json:"lagP50Ns"`
	LagP99      time.Duration `json:"lagP99Ns"`
	LagMax      time.Duration `json:"lagMaxNs"`
	// LagP99Interior leaves out the first blockEdge mini-blocks of every
	// block, when the nodes' block closes (state root hashing) compete for
	// the cores.
	LagP99Interior time.Duration `json:"lagP99InteriorNs"`
	// Catch-up: a replica bootstrapped from the genesis snapshot applies every
	// mini-block of the run from the stream.
	CatchUpTxs      int           `json:"catchUpTxs"`
	CatchUpMinis    uint64        `json:"catchUpMiniBlocks"`
	CatchUp         time.Duration `json:"catchUpNs"`
	CatchUpTxPerSec float64       `json:"catchUpTxPerSec"`
	// ApplyTxPerSec is the catching-up replica's transactions per second of
	// apply time alone (checks, log write, state commit), beside the
	// wall-clock catch-up rate that includes decoding, signature checks and
	// block sealing (trie updates and hashing).
	ApplyTxPerSec float64 `json:"applyTxPerSec"`
	// ExecAloneTxPerSec is the execution rate of the same blocks alone,
	// uncontended (the reference engine's Execute plus the flat-state commit,
	// timed inside the re-execution below): the baseline of the ratios.
	ExecAloneTxPerSec float64 `json:"execAloneTxPerSec"`
	// Ratios against ExecAloneTxPerSec.
	CatchUpRatio float64 `json:"catchUpRatio"`
	ApplyRatio   float64 `json:"applyRatio"`
	// ReexecTxPerSec re-executes the same log alone afterwards (kestrel
	// verify: the reference engine, receipts and diffs compared, every block's
	// roots recomputed), what a node without the diff stream would do.
	ReexecTxPerSec float64 `json:"reexecTxPerSec"`
	ReexecRatio    float64 `json:"reexecRatio"` // CatchUpTxPerSec / ReexecTxPerSec
}

// BootstrapFigure is the bootstrap phase: a replica fetches a genesis snapshot
// of Accounts funded accounts over HTTP and verifies it against the signed root.
type BootstrapFigure struct {
	Accounts      int           `json:"accounts"`
	Download      time.Duration `json:"downloadNs"` // fetching and writing the chunks
	Total         time.Duration `json:"totalNs"`    // to a replica ready to follow (incl. rebuilding and checking the root)
	Bytes         int64         `json:"bytes"`
	PerMillion    time.Duration `json:"perMillionAccountsNs"`
	SeqCreateTime time.Duration `json:"sequencerCreateNs"` // the sequencer's own genesis build, for scale
}

// RunReplica runs the replica benchmark.
func RunReplica(ctx context.Context, o ReplicaOptions) (*ReplicaReport, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	rep := &ReplicaReport{Machine: cpuModel(), Cores: runtime.NumCPU()}
	for _, k := range o.Kinds {
		wr, err := runReplicaWorkload(ctx, o, k)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		rep.Workloads = append(rep.Workloads, wr)
	}
	if o.BootstrapAccounts > 0 {
		bf, err := runBootstrapFigure(ctx, o)
		if err != nil {
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
		rep.Bootstrap = bf
	}
	return rep, nil
}

// benchRetainRoots is the retained block states of every node of the run: at
// ~10,000 transfers a block each retained state holds ~20 MB of trie nodes
// that the next block replaced, and three nodes keeping the default 128 would
// need ~8 GB for nothing the benchmark reads.
const benchRetainRoots = 16

// benchCluster is a sequencer with its stream and the replicas following it.
type benchCluster struct {
	node     *Node
	replicas []*replica.Replica
	dirs     []string
	log      *slog.Logger
}

func startCluster(ctx context.Context, w *Workload, o ReplicaOptions, replicas int) (*benchCluster, error) {
	sc := stream.DefaultConfig()
	sc.Listen = "127.0.0.1:0"
	node, err := StartNode(ctx, w, NodeOptions{Dir: o.Dir, Logger: o.Logger, Stream: &sc, NoSnapshots: true, RetainRoots: benchRetainRoots})
	if err != nil {
		return nil, err
	}
	c := &benchCluster{node: node, log: o.Logger}
	for i := 0; i < replicas; i++ {
		if _, err := c.addReplica(ctx, o); err != nil {
			return nil, errors.Join(err, c.stop())
		}
	}
	return c, nil
}

func (c *benchCluster) addReplica(ctx context.Context, o ReplicaOptions) (*replica.Replica, error) {
	dir, err := os.MkdirTemp(o.Dir, "kestrel-bench-replica-")
	if err != nil {
		return nil, err
	}
	c.dirs = append(c.dirs, dir)
	seq := c.node.Seq
	cfg := replica.DefaultConfig()
	cfg.Node.DataDir = filepath.Join(dir, "data")
	cfg.Node.RPC.Addr = "127.0.0.1:0"
	cfg.Node.SnapshotEvery = 0
	cfg.Node.RetainRoots = benchRetainRoots
	cfg.Stream.URL = seq.StreamURL()
	cfg.SequencerRPC = c.node.URL()
	cfg.SequencerAddress = seq.Signer()
	cfg.Name = fmt.Sprintf("bench-%d", len(c.dirs))
	r, err := replica.New(ctx, cfg, c.log)
	if err != nil {
		return nil, err
	}
	if err := r.Start(ctx); err != nil {
		return nil, errors.Join(err, r.Stop(ctx))
	}
	c.replicas = append(c.replicas, r)
	return r, nil
}

func (c *benchCluster) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	for _, r := range c.replicas {
		errs = append(errs, r.Stop(ctx))
	}
	errs = append(errs, c.node.Stop())
	for _, d := range c.dirs {
		errs = append(errs, os.RemoveAll(d))
	}
	return errors.Join(errs...)
}

// waitApplied waits until every replica has applied mini-block index.
func waitApplied(ctx context.Context, rs []*replica.Replica, index uint64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, r := range rs {
		for r.Node().MiniBlockHead() < index {
			if err := r.Node().Halted(); err != nil {
				return fmt.Errorf("replica halted: %w", err)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("replica applied up to mini-block %d of %d after %v (stats %+v)", r.Node().MiniBlockHead(), index, timeout, r.Stats())
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(2 * time.Millisecond):
			}
		}
	}
	return nil
}

// blockEdge is how many mini-blocks after a block's start count as its edge
// in the lag figures.
const blockEdge = 10

// stamps records when each mini-block index appears in a node's hub.
type stamps struct {
	mu  sync.Mutex
	at  map[uint64]time.Time
	pos map[uint64]uint32 // position in block
	// txs, when recorded, is when each transaction appeared.
	txs map[common.Hash]time.Time
}

// stampLags is every replica's lag behind the sequencer for the mini-blocks
// from..last that both saw, and the same without each block's first
// blockEdge mini-blocks (interior), both sorted.
func stampLags(seq *stamps, reps []*stamps, from, last uint64) (lags, interior []time.Duration) {
	seq.mu.Lock()
	defer seq.mu.Unlock()
	for _, rs := range reps {
		rs.mu.Lock()
		for i := from; i <= last; i++ {
			a, okA := seq.at[i]
			b, okB := rs.at[i]
			if okA && okB {
				lags = append(lags, b.Sub(a)) // one process, one monotonic clock
				if seq.pos[i] >= blockEdge {
					interior = append(interior, b.Sub(a))
				}
			}
		}
		rs.mu.Unlock()
	}
	slices.Sort(lags)
	slices.Sort(interior)
	return lags, interior
}

// watchHub records the publication time of every mini-block event the hub
// publishes from index from on, until ctx ends: on the sequencer when the
// mini-block became durable, on a replica when it was applied. With txs, the
// time of each transaction is recorded too.
func watchHub(ctx context.Context, hub *rpc.Hub, from uint64, txs bool) *stamps {
	st := &stamps{at: make(map[uint64]time.Time), pos: make(map[uint64]uint32)}
	if txs {
		st.txs = make(map[common.Hash]time.Time)
	}
	go func() {
		next := from
		var buf []*rpc.MiniBlockEvent
		for ctx.Err() == nil {
			r := hub.MiniBlocks(next, 4096, buf[:0])
			buf = r.Items
			if len(r.Items) > 0 {
				st.mu.Lock()
				for _, ev := range r.Items {
					st.at[ev.Mini.Index] = ev.At
					st.pos[ev.Mini.Index] = ev.Mini.IndexInBlock
					if st.txs != nil {
						for _, tx := range ev.Mini.Txs {
							st.txs[tx.Hash()] = ev.At
						}
					}
				}
				st.mu.Unlock()
				next = r.Items[len(r.Items)-1].Mini.Index + 1
				continue
			}
			if r.Started && next < r.Oldest {
				next = r.Oldest
				continue
			}
			select {
			case <-ctx.Done():
			case <-r.Wake:
			}
		}
	}()
	return st
}

func runReplicaWorkload(ctx context.Context, o ReplicaOptions, kind Kind) (*ReplicaWorkloadReport, error) {
	lagTxs := o.Rate * int(o.LagDuration/time.Second)
	cfg := WorkloadConfig{Kind: kind, Txs: o.Txs, Extra: lagTxs, Senders: o.Senders, Seed: o.Seed}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Progress, "[%s] signing %d transactions from %d senders\n", kind, cfg.Txs+cfg.Extra, cfg.Senders)
	w, err := Generate(cfg)
	if err != nil {
		return nil, err
	}
	runtime.GC()
	c, err := startCluster(ctx, w, o, 2)
	if err != nil {
		return nil, err
	}
	defer func() { _ = c.stop() }()
	seq := c.node.Seq
	wr := &ReplicaWorkloadReport{Kind: kind, Txs: o.Txs, LagRate: o.Rate}

	// Throughput: the backlog closed-loop, replicas following.
	t0, p0 := seq.Totals(), seq.Publisher().Stats()
	tr, err := RunThroughput(ctx, c.node.URL(), w, w.Throughput(), SendOptions{})
	if err != nil {
		return nil, fmt.Errorf("throughput: %w", err)
	}
	if err := waitSealed(ctx, c.node.URL()); err != nil {
		return nil, err
	}
	head := seq.MiniBlockHead()
	if err := waitApplied(ctx, c.replicas, head, 5*time.Minute); err != nil {
		return nil, err
	}
	t1 := seq.Totals()
	time.Sleep(200 * time.Millisecond) // the publisher's last headers
	p1 := seq.Publisher().Stats()
	wr.SequencerTxPerSec = tr.TxPerSec
	wr.SequencerExecTxPerSec = float64(t1.Txs-t0.Txs) / (t1.Exec - t0.Exec).Seconds()
	fmt.Fprintf(o.Progress, "[%s] sequencer: %d txs in %v = %.0f tx/s end to end; execution alone %.0f tx/s; replicas followed\n",
		kind, tr.Txs, tr.Elapsed.Round(time.Millisecond), tr.TxPerSec, wr.SequencerExecTxPerSec)

	// Lag at the offered rate, both replicas.
	lctx, stopWatch := context.WithCancel(ctx)
	from := seq.MiniBlockHead() + 1
	seqStamps := watchHub(lctx, seq.Hub(), from, false)
	var repStamps []*stamps
	for _, r := range c.replicas {
		repStamps = append(repStamps, watchHub(lctx, r.Node().Hub(), from, false))
	}
	lr, err := RunPaced(ctx, c.node.URL(), w.Extra(), o.Rate)
	if err != nil {
		stopWatch()
		return nil, fmt.Errorf("lag phase: %w", err)
	}
	if err := waitMined(ctx, c.node.URL(), w, w.Extra()); err != nil {
		stopWatch()
		return nil, fmt.Errorf("lag phase: %w", err)
	}
	last := seq.MiniBlockHead()
	if err := waitApplied(ctx, c.replicas, last, time.Minute); err != nil {
		stopWatch()
		return nil, err
	}
	time.Sleep(50 * time.Millisecond)
	stopWatch()
	lags, interior := stampLags(seqStamps, repStamps, from, last)
	if len(lags) == 0 {
		return nil, errors.New("lag phase: no mini-block seen on both sides")
	}
	wr.LagP99Interior = percentile(interior, 99)
	wr.LagAchieved, wr.LagSamples = lr.TxPerSec, len(lags)
	wr.LagP50, wr.LagP99, wr.LagMax = percentile(lags, 50), percentile(lags, 99), lags[len(lags)-1]
	fmt.Fprintf(o.Progress, "[%s] lag at %d tx/s offered (%.0f achieved): p50 %v p99 %v max %v over %d mini-block applications; p99 %v without each block's first %d mini-blocks\n",
		kind, o.Rate, lr.TxPerSec, wr.LagP50, wr.LagP99, wr.LagMax, len(lags), wr.LagP99Interior, blockEdge)

	// Bytes on the wire, over the throughput phase.
	msgsBytes := float64(p1.Bytes - p0.Bytes)
	wr.TotalBytesPerTx = msgsBytes / float64(tr.Txs)
	wr.MiniBytesPerTx = float64(p1.MiniBytes-p0.MiniBytes) / float64(tr.Txs)
	fmt.Fprintf(o.Progress, "[%s] stream: %.1f B per transaction in mini-block messages, %.1f B with headers\n", kind, wr.MiniBytesPerTx, wr.TotalBytesPerTx)

	// Catch-up: a replica that bootstraps from the genesis snapshot applies the
	// whole run from the stream.
	runtime.GC()
	target := seq.MiniBlockHead()
	totalTxs := int(seq.Totals().Txs)
	stopProfile := func() {}
	if o.CPUProfile != "" {
		if stopProfile, err = startProfile(o.CPUProfile + "-" + string(kind)); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	r, err := c.addReplica(ctx, o)
	if err != nil {
		stopProfile()
		return nil, fmt.Errorf("catch-up replica: %w", err)
	}
	err = waitApplied(ctx, []*replica.Replica{r}, target, 30*time.Minute)
	wr.CatchUp = time.Since(start)
	stopProfile()
	if err != nil {
		return nil, err
	}
	rt := r.Node().Totals()
	wr.CatchUpTxs, wr.CatchUpMinis = totalTxs, target
	wr.CatchUpTxPerSec = float64(rt.Txs) / wr.CatchUp.Seconds()
	wr.ApplyTxPerSec = float64(rt.Txs) / rt.Exec.Seconds()
	fmt.Fprintf(o.Progress, "[%s] catch-up: %d txs (%d mini-blocks) in %v = %.0f tx/s; apply alone %.0f tx/s\n",
		kind, rt.Txs, target, wr.CatchUp.Round(time.Millisecond), wr.CatchUpTxPerSec, wr.ApplyTxPerSec)

	// Baseline on the same blocks, alone: re-execution with roots.
	sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	for _, r := range c.replicas {
		_ = r.Stop(sctx)
	}
	err = seq.Stop(sctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("stop sequencer: %w", err)
	}
	runtime.GC()
	start = time.Now()
	vr, err := sequencer.Verify(ctx, filepath.Join(c.node.dir, "data"))
	if err != nil {
		return nil, fmt.Errorf("re-execute: %w", err)
	}
	wr.ReexecTxPerSec = float64(vr.Transactions) / time.Since(start).Seconds()
	wr.ExecAloneTxPerSec = float64(vr.Transactions) / vr.ExecTime.Seconds()
	wr.ReexecRatio = wr.CatchUpTxPerSec / wr.ReexecTxPerSec
	wr.CatchUpRatio = wr.CatchUpTxPerSec / wr.ExecAloneTxPerSec
	wr.ApplyRatio = wr.ApplyTxPerSec / wr.ExecAloneTxPerSec
	fmt.Fprintf(o.Progress, "[%s] the same %d txs re-executed alone: execution %.0f tx/s, with checks and roots %.0f tx/s; catch-up %.2fx execution, %.2fx re-execution; apply %.2fx execution\n",
		kind, vr.Transactions, wr.ExecAloneTxPerSec, wr.ReexecTxPerSec, wr.CatchUpRatio, wr.ReexecRatio, wr.ApplyRatio)
	return wr, nil
}

// runBootstrapFigure times a replica bootstrapping a genesis of
// BootstrapAccounts funded accounts from the sequencer.
func runBootstrapFigure(ctx context.Context, o ReplicaOptions) (*BootstrapFigure, error) {
	cfg := WorkloadConfig{Kind: KindETH, Txs: 1, Senders: o.BootstrapAccounts, Seed: o.Seed + 1}
	fmt.Fprintf(o.Progress, "[bootstrap] generating a genesis of %d accounts\n", o.BootstrapAccounts)
	w, err := Generate(cfg)
	if err != nil {
		return nil, err
	}
	runtime.GC()
	start := time.Now()
	c, err := startCluster(ctx, w, o, 0)
	if err != nil {
		return nil, err
	}
	defer func() { _ = c.stop() }()
	bf := &BootstrapFigure{Accounts: o.BootstrapAccounts, SeqCreateTime: time.Since(start)}
	runtime.GC()
	start = time.Now()
	r, err := c.addReplica(ctx, o)
	if err != nil {
		return nil, err
	}
	bf.Total = time.Since(start)
	b := r.Bootstrapped()
	if b == nil {
		return nil, errors.New("the replica did not bootstrap")
	}
	bf.Download, bf.Bytes = b.Elapsed, b.Bytes
	bf.PerMillion = time.Duration(float64(bf.Total) * 1e6 / float64(o.BootstrapAccounts))
	fmt.Fprintf(o.Progress, "[bootstrap] %d accounts: download %v (%.1f MB), ready to follow after %v = %v per million accounts (the sequencer built the same genesis in %v)\n",
		o.BootstrapAccounts, bf.Download.Round(time.Millisecond), float64(bf.Bytes)/1e6, bf.Total.Round(time.Millisecond),
		bf.PerMillion.Round(time.Millisecond), bf.SeqCreateTime.Round(time.Millisecond))
	return bf, nil
}

// WriteJSON writes the report.
func (r *ReplicaReport) WriteJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// WriteTable prints the figures, one line per figure the issue asks for.
func (r *ReplicaReport) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "machine: %s, %d cores\n", r.Machine, r.Cores)
	for _, k := range r.Workloads {
		fmt.Fprintf(w, "replica %s: sequencer %.0f tx/s end to end with two replicas (its execution under that load: %.0f tx/s)\n", k.Kind, k.SequencerTxPerSec, k.SequencerExecTxPerSec)
		fmt.Fprintf(w, "replica %s: the same blocks executed alone %.0f tx/s; with checks and roots %.0f tx/s\n", k.Kind, k.ExecAloneTxPerSec, k.ReexecTxPerSec)
		fmt.Fprintf(w, "replica %s: catch-up %d txs in %v = %.0f tx/s = %.2fx execution (%.2fx re-execution with roots); apply alone %.0f tx/s = %.2fx execution\n",
			k.Kind, k.CatchUpTxs, k.CatchUp.Round(time.Millisecond), k.CatchUpTxPerSec, k.CatchUpRatio, k.ReexecRatio, k.ApplyTxPerSec, k.ApplyRatio)
		fmt.Fprintf(w, "replica %s: lag at %d tx/s offered (%.0f achieved): p50 %v, p99 %v, max %v (%d samples); p99 %v away from block starts\n",
			k.Kind, k.LagRate, k.LagAchieved, k.LagP50.Round(10*time.Microsecond), k.LagP99.Round(10*time.Microsecond), k.LagMax.Round(10*time.Microsecond), k.LagSamples, k.LagP99Interior.Round(10*time.Microsecond))
		fmt.Fprintf(w, "replica %s: stream %.1f B/tx (mini-blocks), %.1f B/tx with headers\n", k.Kind, k.MiniBytesPerTx, k.TotalBytesPerTx)
	}
	if b := r.Bootstrap; b != nil {
		fmt.Fprintf(w, "bootstrap: %d accounts in %v (download %v, %.1f MB) = %v per million accounts\n",
			b.Accounts, b.Total.Round(time.Millisecond), b.Download.Round(time.Millisecond), float64(b.Bytes)/1e6, b.PerMillion.Round(time.Millisecond))
	}
}

// PacedResult is one paced (open-loop, batched) sending phase.
type PacedResult struct {
	Sent     int
	Elapsed  time.Duration
	TxPerSec float64
}

// RunPaced sends txs at rate per second, open loop: every 10 ms the
// transactions due by then go out as one eth_sendRawTransaction batch on its
// own goroutine (a slow answer never delays the next batch). A refused
// transaction fails the phase.
func RunPaced(ctx context.Context, url string, txs []RawTx, rate int) (*PacedResult, error) {
	if rate <= 0 {
		return nil, errors.New("paced: rate must be positive")
	}
	c, err := newRPCClient(url, 64)
	if err != nil {
		return nil, err
	}
	defer c.close()
	st := &sendState{c: c, txs: txs}
	var wg sync.WaitGroup
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	sent := 0
	for sent < len(txs) {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil, ctx.Err()
		case <-tick.C:
		}
		due := min(len(txs), int(time.Since(start).Seconds()*float64(rate)))
		if due <= sent {
			continue
		}
		for sent < due {
			idx := make([]int, 0, min(due-sent, 500))
			for k := sent; k < due && len(idx) < cap(idx); k++ {
				idx = append(idx, k)
			}
			sent += len(idx)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if st.sendBatch(idx, sendBody(txs, idx), false) {
					st.setFatal(errors.New("the node asked to retry: it cannot take this rate"))
				}
			}()
		}
		if p := st.fatal.Load(); p != nil {
			break
		}
	}
	wg.Wait()
	if p := st.fatal.Load(); p != nil {
		return nil, *p
	}
	el := time.Since(start)
	return &PacedResult{Sent: sent, Elapsed: el, TxPerSec: float64(sent) / el.Seconds()}, nil
}

// waitMined waits until every sender of txs has its last transaction in a
// durable mini-block (its pending nonce is past it).
func waitMined(ctx context.Context, url string, w *Workload, txs []RawTx) error {
	c, err := newRPCClient(url, 2)
	if err != nil {
		return err
	}
	defer c.close()
	addrs, _, want := expectedNonces(w, txs)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		have, err := c.nonces(addrs)
		if err != nil {
			return err
		}
		done := true
		for i := range addrs {
			if have[i] < want[i] {
				done = false
				break
			}
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("transactions still not in a mini-block after 2 minutes")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Package replica is the replica role: a node that follows the sequencer's
// state-diff stream, verifies every message, applies the diffs to its own
// in-RAM state without executing transactions, recomputes every block's state
// root and compares the block with the header the sequencer signed, and serves
// the read side of the JSON-RPC API from that state (writes are forwarded to
// the sequencer).
//
// The chain core — store, flat state, tries, sealer, recovery, RPC backend — is
// the sequencer package's node in follow mode; this package owns the stream
// consumers, the verification pipeline, bootstrap and write forwarding.
package replica

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/sequencer"
	"github.com/kestrel-l2/kestrel/store"
	"github.com/kestrel-l2/kestrel/stream"
)

// Config is everything a replica needs.
type Config struct {
	// Node configures the chain core (data directory, RPC, retained roots,
	// snapshots, metrics). Its Follow, Stream and Genesis fields are set by the
	// replica.
	Node sequencer.Config
	// Stream is the NATS server (URL) and stream names to follow.
	Stream stream.Config
	// SequencerRPC is the sequencer's JSON-RPC URL: writes are forwarded to it.
	SequencerRPC string
	// SequencerAddress signs every mini-block and header the replica accepts.
	SequencerAddress common.Address
	// BootstrapURL serves state snapshots (a sequencer, full node or replica's
	// HTTP JSON-RPC URL). Empty: SequencerRPC.
	BootstrapURL string
	// Name identifies the replica's durable consumers on the stream (default:
	// derived from the data directory).
	Name string
	// Window is how many stream messages are buffered ahead of verification.
	Window int
}

// DefaultConfig is a replica of the dev chain on this machine.
func DefaultConfig() Config {
	node := sequencer.DefaultConfig()
	st := stream.DefaultConfig()
	st.URL = "nats://127.0.0.1:4222"
	return Config{Node: node, Stream: st, SequencerRPC: "http://127.0.0.1:8545",
		SequencerAddress: sequencer.DevSequencerAddress(), Window: 512}
}

// Check reports the first invalid setting.
func (c *Config) Check() error {
	switch {
	case c.Stream.URL == "":
		return errors.New("the stream URL (--stream.url) is required")
	case c.SequencerRPC == "":
		return errors.New("the sequencer's RPC URL (--sequencer.rpc) is required")
	case c.SequencerAddress == (common.Address{}):
		return errors.New("the sequencer address must not be zero")
	case c.Window < 1:
		return errors.New("the stream window must be positive")
	}
	return c.Stream.Check()
}

// Replica is a running replica.
type Replica struct {
	cfg  Config
	log  *slog.Logger
	node *sequencer.Sequencer
	conn *stream.Conn
	fwd  *forwarder

	bootstrap *BootstrapResult // nil when the data directory held a chain

	stats   stats
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	fatal   chan error
	stopped atomic.Bool
}

// stats are the replica's counters.
type stats struct {
	applied      atomic.Uint64 // mini-blocks applied from the stream
	headers      atomic.Uint64 // headers accepted
	duplicates   atomic.Uint64
	refetched    atomic.Uint64
	rejected     atomic.Uint64
	lagMs        atomic.Int64 // wall clock at apply minus the mini-block's timestamp
	lastRejectMu sync.Mutex
	lastReject   string
}

// Stats are the replica's counters.
type Stats struct {
	Applied, Headers, Duplicates, Refetched, Rejected uint64
	LastRejection                                     string
	LagMs                                             int64
}

// Stats returns the replica's counters.
func (r *Replica) Stats() Stats {
	r.stats.lastRejectMu.Lock()
	last, rejected := r.stats.lastReject, r.stats.rejected.Load()
	r.stats.lastRejectMu.Unlock()
	return Stats{Applied: r.stats.applied.Load(), Headers: r.stats.headers.Load(), Duplicates: r.stats.duplicates.Load(),
		Refetched: r.stats.refetched.Load(), Rejected: rejected, LastRejection: last, LagMs: r.stats.lagMs.Load()}
}

// New opens the replica's data directory — bootstrapping it from a snapshot
// when it holds no chain, or when the stream no longer holds what it needs —
// and restores its state. It starts nothing.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Replica, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if cfg.Node.DataDir == "" {
		return nil, errors.New("a replica needs a data directory")
	}
	if cfg.BootstrapURL == "" {
		cfg.BootstrapURL = cfg.SequencerRPC
	}
	if cfg.Name == "" {
		abs, _ := filepath.Abs(cfg.Node.DataDir)
		h := sha256.Sum256([]byte(abs))
		cfg.Name = "replica-" + hex.EncodeToString(h[:6])
	}
	r := &Replica{cfg: cfg, log: log, fatal: make(chan error, 1)}
	r.fwd = newForwarder(cfg.SequencerRPC)
	conn, err := stream.Dial(cfg.Stream, "kestrel-"+cfg.Name, log.With("component", "stream"))
	if err != nil {
		return nil, err
	}
	r.conn = conn
	if err := r.open(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return r, nil
}

// open bootstraps when needed and builds the node.
func (r *Replica) open(ctx context.Context) error {
	chainDir := filepath.Join(r.cfg.Node.DataDir, "chain")
	for attempt := 0; ; attempt++ {
		if err := os.MkdirAll(r.cfg.Node.DataDir, 0o755); err != nil {
			return err
		}
		st, err := store.Open(chainDir, store.Options{CacheBytes: 16 << 20})
		if err != nil {
			return err
		}
		genesis, err := r.ensureChain(ctx, st)
		if cerr := st.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		ncfg := r.cfg.Node
		ncfg.Genesis = genesis
		ncfg.Stream = nil
		ncfg.Follow = &sequencer.FollowConfig{Signer: r.cfg.SequencerAddress, Forward: r.fwd}
		node, err := sequencer.New(ctx, ncfg, r.log)
		if err != nil {
			if r.bootstrap != nil && attempt == 0 {
				// A snapshot that does not rebuild to its signed root is
				// never used: start again from an empty directory.
				r.log.Error("Bootstrapped state failed verification; discarding it", "err", err)
				if rerr := os.RemoveAll(chainDir); rerr != nil {
					return errors.Join(err, rerr)
				}
				r.bootstrap = nil
				continue
			}
			return err
		}
		r.node = node
		// A replica behind the stream's retention window cannot catch up from
		// it: bootstrap again onto a newer snapshot.
		behind, first, err := r.behindRetention(ctx)
		if err != nil {
			r.log.Warn("Cannot read the stream's bounds yet; following anyway", "err", err)
			return nil
		}
		if !behind || attempt > 0 {
			return nil
		}
		r.log.Warn("The stream no longer holds the next mini-block; bootstrapping again from a snapshot",
			"next", node.MiniBlockHead()+1, "streamFirst", first)
		if err := node.Stop(ctx); err != nil {
			return err
		}
		r.node = nil
		if err := os.RemoveAll(chainDir); err != nil {
			return err
		}
	}
}

// ensureChain returns the genesis of the chain in st, bootstrapping st first
// when it holds none.
func (r *Replica) ensureChain(ctx context.Context, st *store.Store) (*chain.Genesis, error) {
	raw, err := st.Genesis()
	if errors.Is(err, store.ErrNotFound) {
		if _, perr := st.BootstrapProgress(); perr == nil {
			r.log.Info("Resuming an interrupted bootstrap", "from", r.cfg.BootstrapURL)
		} else {
			r.log.Info("Empty data directory: bootstrapping from a state snapshot", "from", r.cfg.BootstrapURL)
		}
		res, err := Bootstrap(ctx, r.cfg.BootstrapURL, st, r.cfg.SequencerAddress, r.log)
		if err != nil {
			return nil, fmt.Errorf("bootstrap from %s: %w", r.cfg.BootstrapURL, err)
		}
		r.bootstrap = res
		if raw, err = st.Genesis(); err != nil {
			return nil, fmt.Errorf("bootstrapped store: %w", err)
		}
	} else if err != nil {
		return nil, err
	}
	g := new(chain.Genesis)
	if err := json.Unmarshal(raw, g); err != nil {
		return nil, fmt.Errorf("stored genesis: %w", err)
	}
	return g, nil
}

// behindRetention reports whether the stream's oldest mini-block is past the
// next one the node needs.
func (r *Replica) behindRetention(ctx context.Context) (bool, uint64, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	first, last, err := r.conn.Bounds(cctx, stream.KindMiniBlock)
	if err != nil {
		return false, 0, err
	}
	next := r.node.MiniBlockHead() + 1
	return last >= first && next < first, first, nil
}

// Bootstrapped is the bootstrap this start performed (nil when the data
// directory already held the chain).
func (r *Replica) Bootstrapped() *BootstrapResult { return r.bootstrap }

// Node is the replica's chain core.
func (r *Replica) Node() *sequencer.Sequencer { return r.node }

// RPCAddr is the bound JSON-RPC address.
func (r *Replica) RPCAddr() string { return r.node.RPCAddr() }

// Fatal delivers the error that halted the replica (a block that does not match
// the signed header, a broken store): the caller should stop it.
func (r *Replica) Fatal() <-chan error { return r.fatal }

// registerMetrics exports the replica's counters beside the node's.
func (r *Replica) registerMetrics() {
	reg := r.node.MetricsRegistry()
	if reg == nil {
		return
	}
	counter := func(name, help string, v *atomic.Uint64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "kestrel", Subsystem: "replica", Name: name, Help: help},
			func() float64 { return float64(v.Load()) }))
	}
	counter("applied_mini_blocks_total", "Mini-blocks applied from the stream.", &r.stats.applied)
	counter("headers_total", "Signed headers accepted.", &r.stats.headers)
	counter("duplicates_total", "Stream messages skipped as already applied.", &r.stats.duplicates)
	counter("refetched_total", "Mini-blocks fetched by sequence number to fill a gap.", &r.stats.refetched)
	counter("rejected_total", "Stream messages rejected (checksum, decoding, signature).", &r.stats.rejected)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "kestrel", Subsystem: "replica", Name: "lag_milliseconds",
		Help: "Wall clock at apply minus the mini-block's timestamp, for the last applied mini-block."},
		func() float64 { return float64(r.stats.lagMs.Load()) }))
}

// Start starts the node (RPC) and the stream followers.
func (r *Replica) Start(ctx context.Context) error {
	if err := r.node.Start(ctx); err != nil {
		return err
	}
	r.registerMetrics()
	fctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.wg.Add(3)
	go func() { defer r.wg.Done(); r.followMiniBlocks(fctx) }()
	go func() { defer r.wg.Done(); r.followHeaders(fctx) }()
	go func() {
		defer r.wg.Done()
		select {
		case err := <-r.node.Fatal():
			r.halt(err)
		case <-fctx.Done():
		}
	}()
	r.log.Info("Replica following the diff stream", "stream", r.cfg.Stream.URL, "consumer", r.cfg.Name,
		"sequencer", r.cfg.SequencerAddress, "miniBlock", r.node.MiniBlockHead(), "block", r.node.HeadNumber())
	return nil
}

func (r *Replica) halt(err error) {
	select {
	case r.fatal <- err:
	default:
	}
}

// Stop stops following, then the node.
func (r *Replica) Stop(ctx context.Context) error {
	if !r.stopped.CompareAndSwap(false, true) {
		return nil
	}
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
	r.conn.Close()
	r.fwd.close()
	if r.node == nil {
		return nil
	}
	return r.node.Stop(ctx)
}

// reject records a message that failed verification: logged, never applied.
// The count is published last, under the same lock as the last rejection, so
// that whoever sees the count also finds the rejection's log line and reason.
func (r *Replica) reject(what string, seq uint64, err error) {
	msg := fmt.Sprintf("%s at stream sequence %d: %v", what, seq, err)
	r.stats.lastRejectMu.Lock()
	defer r.stats.lastRejectMu.Unlock()
	n := r.stats.rejected.Load() + 1
	if n <= 100 || n%1000 == 0 {
		r.log.Error("Rejected a stream message", "kind", what, "seq", seq, "err", err, "rejected", n)
	}
	r.stats.lastReject = msg
	r.stats.rejected.Store(n)
}

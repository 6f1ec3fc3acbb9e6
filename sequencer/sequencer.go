// Package sequencer is the sequencer role: it orders transactions from the
// mempool into 10 ms mini-blocks, executes them on the in-RAM state, makes each
// mini-block durable before anything about it is answered, and seals ~1 s EVM
// blocks whose state roots are computed off the mini-block loop.
package sequencer

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/lru"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/exec"
	"github.com/kestrel-l2/kestrel/core/state"
	"github.com/kestrel-l2/kestrel/mempool"
	"github.com/kestrel-l2/kestrel/rpc"
	"github.com/kestrel-l2/kestrel/store"
	"github.com/kestrel-l2/kestrel/stream"
)

// storeBlockCache is how many blocks read back from the store stay decoded.
const storeBlockCache = 64

// Version is reported by web3_clientVersion.
const Version = "kestrel/v0.1.0"

// DevSequencerKey is the sequencer signing key of the dev chain: the dev
// mnemonic's account 9. Public knowledge; never use it on a real network.
func DevSequencerKey() *ecdsa.PrivateKey { return chain.DevAccounts()[9].Key }

// DevSequencerAddress is the address of DevSequencerKey: what replicas of the
// dev chain expect every mini-block and header to be signed by.
func DevSequencerAddress() common.Address {
	return crypto.PubkeyToAddress(DevSequencerKey().PublicKey)
}

// Sequencer is the sequencer node.
type Sequencer struct {
	cfg     Config
	log     *slog.Logger
	genesis *chain.Genesis
	chainCf *params.ChainConfig
	key     *ecdsa.PrivateKey
	signer  common.Address
	tmpDir  string
	dataDir string // DataDir, or tmpDir

	store  *store.Store
	state  *state.State
	merkle *state.Merkle
	exec   exec.Executor
	engine *exec.Parallel // the same executor, for its counters
	pool   *mempool.Pool
	index  *chainIndex
	// undo keeps, for the newest sealed blocks, what later mini-blocks
	// overwrote, so that reads at them come from the flat state (latest.go).
	undo undoSet
	// storeBlocks caches blocks older than the recent window once read back
	// from the store (transactions and receipts of old blocks are read in bursts:
	// a wallet's history, an indexer, eth_getTransactionReceipt of old hashes).
	storeBlocks *lru.Cache[uint64, *sealed]
	rpc         *rpc.Server
	m           Metricer
	promM       *metricsServer

	open       *openBlock     // loop goroutine only
	lastIndex  uint64         // newest mini-block index, loop goroutine only
	lastSnap   uint64         // block of the newest snapshot, loop goroutine only
	snapBusy   atomic.Bool    // a snapshot is being written in the background
	sealEvents chan sealEvent // loop -> sealer
	sealAcc    *blockAcc      // the sealer's open block; set by recovery before Start
	sealErr    atomic.Pointer[error]
	waiters    *waiters
	hub        *rpc.Hub // events for eth_subscribe and the diff stream
	// Follow mode (replicas): headers signed by the sequencer waiting for their
	// block, and the lock that makes ApplyMiniBlock/AddHeader the loop.
	headers  *headerQueue
	followMu sync.Mutex
	// The diff stream: an embedded nats-server and the publisher.
	streamSrv *stream.Server
	publisher *stream.Publisher
	pubCancel context.CancelFunc
	pubDone   chan struct{}
	miniHead  atomic.Uint64 // newest durable mini-block index
	stop      chan struct{}
	wg        sync.WaitGroup
	started   atomic.Bool
	stopped   atomic.Bool
	stopOnce  sync.Once
	fatal     chan error
	halted    atomic.Pointer[error] // first error passed to fail: the node stopped working
	stats     loopStats
}

// New builds a sequencer from cfg: it opens (or creates) the chain in the data
// directory and restores its state, but starts nothing.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Sequencer, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	engine := exec.NewParallel(cfg.Exec)
	s := &Sequencer{cfg: cfg, log: logger, exec: engine, engine: engine, index: newChainIndex(cfg.RecentBlocks), storeBlocks: lru.NewCache[uint64, *sealed](storeBlockCache),
		sealEvents: make(chan sealEvent, 1024), waiters: newWaiters(), hub: rpc.NewHub(), headers: newHeaderQueue(), m: NoopMetrics{}, stop: make(chan struct{}), fatal: make(chan error, 1)}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"genesis", s.initGenesis},
		{"key", s.initKey},
		{"store", s.initStore},
		{"chain", s.initChain},
		{"release build memory", s.releaseBuildMemory},
		{"mempool", s.initMempool},
		{"metrics", s.initMetrics}, // before rpc, which registers its series
		{"rpc", s.initRPC},
	}
	for _, step := range steps {
		if err := step.fn(ctx); err != nil {
			s.closeStore()
			if s.promM != nil {
				_ = s.promM.stop(ctx)
			}
			if s.tmpDir != "" {
				_ = os.RemoveAll(s.tmpDir)
			}
			return nil, fmt.Errorf("init %s: %w", step.name, err)
		}
	}
	return s, nil
}

func (s *Sequencer) initGenesis(context.Context) error {
	if s.cfg.Genesis != nil {
		s.genesis = s.cfg.Genesis
	} else if s.cfg.GenesisFile == "" {
		s.genesis = chain.DevGenesis()
	} else {
		g, err := chain.LoadGenesis(s.cfg.GenesisFile)
		if err != nil {
			return err
		}
		s.genesis = g
	}
	s.chainCf = s.genesis.ChainConfig()
	return nil
}

func (s *Sequencer) initKey(context.Context) error {
	if f := s.cfg.Follow; f != nil {
		s.signer = f.Signer
		return nil
	}
	if s.cfg.KeyFile == "" {
		s.key = DevSequencerKey()
		s.log.Warn("Using the public dev sequencer key; set --sequencer.key for anything but a dev chain")
	} else {
		data, err := os.ReadFile(s.cfg.KeyFile)
		if err != nil {
			return fmt.Errorf("read key file: %w", err)
		}
		key, err := crypto.HexToECDSA(strings.TrimPrefix(strings.TrimSpace(string(data)), "0x"))
		if err != nil {
			return fmt.Errorf("key file %s: %w", s.cfg.KeyFile, err)
		}
		s.key = key
	}
	s.signer = crypto.PubkeyToAddress(s.key.PublicKey)
	return nil
}

func (s *Sequencer) initStore(context.Context) error {
	dir := s.cfg.DataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "kestrel-")
		if err != nil {
			return err
		}
		s.tmpDir, dir = tmp, tmp
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	s.dataDir = dir
	st, err := store.Open(dir+"/chain", store.Options{CacheBytes: 64 << 20})
	if err != nil {
		return err
	}
	s.store = st
	return nil
}

func (s *Sequencer) initChain(ctx context.Context) error {
	want, err := json.Marshal(s.genesis)
	if err != nil {
		return err
	}
	have, err := s.store.Genesis()
	switch {
	case errors.Is(err, store.ErrNotFound):
		if s.Following() {
			return ErrNotBootstrapped
		}
		return s.createChain(want)
	case err != nil:
		return err
	}
	if !bytes.Equal(have, want) {
		// Written by another build, perhaps: compare what the bytes mean.
		var stored chain.Genesis
		if err := json.Unmarshal(have, &stored); err != nil {
			return fmt.Errorf("stored genesis: %w", err)
		}
		again, _ := json.Marshal(&stored)
		if !bytes.Equal(again, want) {
			return errors.New("the data directory holds a chain with a different genesis; use another --datadir or the same genesis")
		}
	}
	return s.recoverChain(ctx)
}

// releaseBuildMemory runs once the chain is built. It keeps only the genesis
// parameters (the allocation is in the state and the store from then on).
func (s *Sequencer) releaseBuildMemory(context.Context) error {
	s.genesis = s.genesis.Params()
	s.cfg.Genesis = nil // the caller's copy is the caller's to keep
	// Building the state (from the genesis, a snapshot and the log) leaves its
	// transient structures as garbage several times the state's size; the
	// collector would return it only at its next cycle, which an idle chain
	// reaches late. Return it now: one collection, at startup.
	debug.FreeOSMemory()
	return nil
}

func (s *Sequencer) initMempool(context.Context) error {
	if s.Following() {
		return nil // transactions are forwarded
	}
	pool, err := mempool.New(s.cfg.Mempool, s.poolEnv(), poolState{s})
	if err != nil {
		return err
	}
	s.pool = pool
	return nil
}

func (s *Sequencer) initRPC(context.Context) error {
	cfg := s.cfg.RPC
	if pm, ok := s.m.(*PromMetrics); ok && cfg.Metrics == nil {
		cfg.Metrics = rpc.NewPromMetrics(pm.registry) // kestrel_rpc_* on --metrics.addr
	}
	srv, err := rpc.NewServer(cfg, &backend{s}, s.log.With("component", "rpc"))
	if err != nil {
		return err
	}
	srv.HandleGET(SnapshotPath, s.serveSnapshot)
	s.rpc = srv
	return nil
}

func (s *Sequencer) initMetrics(context.Context) error {
	if s.cfg.MetricsAddr == "" {
		return nil
	}
	pm := NewPromMetrics()
	pm.registerEngine(s.engine)
	srv, err := startMetrics(s.cfg.MetricsAddr, pm)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.MetricsAddr, err)
	}
	s.m, s.promM = pm, srv
	s.log.Info("Metrics server started", "addr", "http://"+srv.ln.Addr().String()+"/metrics")
	return nil
}

func (s *Sequencer) poolEnv() mempool.Env {
	return mempool.Env{ChainConfig: s.chainCf, BlockNumber: s.open.env.Number, Time: s.open.env.Time,
		BaseFee: s.open.env.BaseFee, GasLimit: s.open.env.GasLimit}
}

// Start starts the mini-block loop, the sealer and the RPC server.
func (s *Sequencer) Start(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("already started")
	}
	openBlock, miniBlock := s.open.env.Number, s.lastIndex // the loop owns them from here
	s.wg.Add(1)
	go s.sealLoop()
	if !s.Following() {
		s.wg.Add(1)
		go s.loop()
	}
	if err := s.startStream(); err != nil {
		_ = s.Stop(ctx)
		return fmt.Errorf("start diff stream: %w", err)
	}
	if err := s.rpc.Start(); err != nil {
		_ = s.Stop(ctx)
		return fmt.Errorf("start rpc: %w", err)
	}
	s.log.Info(s.role()+" started", "chainId", s.genesis.ChainID, "fork", s.genesis.Fork, "rpc", "http://"+s.rpc.Addr(),
		"signer", s.signer, "block", openBlock, "miniBlock", miniBlock)
	return nil
}

func (s *Sequencer) role() string {
	if s.Following() {
		return "Replica"
	}
	return "Sequencer"
}

// Stop stops the RPC server, lets the loop finish its mini-block, seals what is
// queued and closes the store. It returns every component's error.
func (s *Sequencer) Stop(ctx context.Context) error {
	var errs []error
	s.stopOnce.Do(func() {
		if s.rpc != nil && s.started.Load() {
			errs = append(errs, s.rpc.Stop(ctx))
		}
		close(s.stop)
		if s.Following() {
			// The loop of a follower is its caller: once no ApplyMiniBlock
			// runs, nothing more goes to the sealer.
			s.followMu.Lock()
			close(s.sealEvents)
			s.followMu.Unlock()
		}
		s.wg.Wait()
		errs = append(errs, s.stopStream())
		if s.Following() && s.halted.Load() != nil && s.store != nil {
			errs = append(errs, s.dropUnverified())
		}
		s.hub.Close()
		if s.promM != nil {
			errs = append(errs, s.promM.stop(ctx))
		}
		if p := s.sealErr.Load(); p != nil {
			errs = append(errs, *p)
		}
		errs = append(errs, s.closeStore())
		if s.tmpDir != "" {
			errs = append(errs, os.RemoveAll(s.tmpDir))
		}
		s.stopped.Store(true)
	})
	return errors.Join(errs...)
}

// Stopped reports whether Stop has completed.
func (s *Sequencer) Stopped() bool { return s.stopped.Load() }

// Fatal delivers an error that stopped the node from working (a failed durable
// write); the caller should stop it.
func (s *Sequencer) Fatal() <-chan error { return s.fatal }

func (s *Sequencer) closeStore() error {
	if s.store == nil {
		return nil
	}
	err := s.store.Close()
	s.store = nil
	return err
}

// RPCAddr is the bound JSON-RPC address.
func (s *Sequencer) RPCAddr() string { return s.rpc.Addr() }

// Genesis is the chain's genesis parameters. Its Alloc is nil: the allocation
// is dropped once it is in the state (chain.LoadGenesis reads a file's whole).
func (s *Sequencer) Genesis() *chain.Genesis { return s.genesis }

// Signer is the sequencer's signing address.
func (s *Sequencer) Signer() common.Address { return s.signer }

func (s *Sequencer) fail(err error) {
	s.halted.CompareAndSwap(nil, &err)
	s.log.Error(s.role()+" halted", "err", err)
	select {
	case s.fatal <- err:
	default:
	}
}

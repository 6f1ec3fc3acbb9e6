package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/replica"
	"github.com/kestrel-l2/kestrel/sequencer"
	"github.com/kestrel-l2/kestrel/store"
)

// Devnet defaults: a gentle background load, and logs quiet enough for the
// status line to stay readable.
const (
	defaultDevnetLoad     = 20
	maxDevnetLoad         = 10_000
	maxDevnetReplicas     = 16
	defaultDevnetLogLevel = "warn"
)

// defaultDevnetDir is where `kestrel devnet` keeps its chain between runs.
func defaultDevnetDir() string { return filepath.Join(defaultDataDir(), "devnet") }

func devnetFlags() []cli.Flag {
	return withEnv([]cli.Flag{
		&cli.IntFlag{Name: "devnet.replicas", Value: 2, Usage: "replicas started beside the sequencer, on the ports after --http.addr's, their data in DATADIR/replica-N", Category: "DEVNET"},
		&cli.BoolFlag{Name: "devnet.reset", Usage: "wipe --datadir first and start a new chain (refused when the directory holds anything a devnet does not write)", Category: "DEVNET"},
		&cli.IntFlag{Name: "devnet.load", Value: defaultDevnetLoad, Usage: fmt.Sprintf("background transfers per second, sent through the sequencer's JSON-RPC among %d accounts funded only on the devnet, never the dev mnemonic's (0: off)", devnetLoadAccounts), Category: "DEVNET"},
		&cli.BoolFlag{Name: "devnet.status", Value: true, Usage: "print a status line: redrawn every second on a terminal, a line every 10 s otherwise (--devnet.status=false: off)", Category: "DEVNET"},
	})
}

func devnetCommand() *cli.Command {
	flags := sequencerFlags(defaultDevnetDir())
	for _, f := range flags {
		sf, ok := f.(*cli.StringFlag)
		if !ok {
			continue
		}
		switch sf.Name {
		case "datadir":
			sf.Usage = "data directory of the devnet (sequencer, and replicas in DATADIR/replica-N); running again resumes its chain (\"\": a temporary directory removed at exit)"
		case "log.level":
			sf.Value = defaultDevnetLogLevel
			sf.Usage = "debug, info, warn or error (devnet: warn, so that the status line stays readable)"
		}
	}
	return &cli.Command{
		Name:  "devnet",
		Usage: "run a dev chain with replicas and a gentle background load, resumed on the next run (--devnet.reset starts over), and print the dev accounts",
		Description: "The devnet keeps its chain in --datadir (default ~/.kestrel/devnet) and resumes it on the next run.\n" +
			"A background load (--devnet.load) sends transfers among accounts of its own, so that the ten\n" +
			"dev-mnemonic accounts it prints are left to you. A status line shows the head block, mini-blocks\n" +
			"and transactions per second, the load, and how far each replica is behind.",
		Flags:  append(flags, devnetFlags()...),
		Action: runDevnet,
	}
}

// devnetConfig is what `kestrel devnet` runs; devnetConfigFrom checks it
// before anything starts.
type devnetConfig struct {
	// Seq is the sequencer's config; its Genesis is always set (the same on
	// every run, so that the chain resumes).
	Seq sequencer.Config
	// Replicas is the number of in-process replicas.
	Replicas int
	// Load is the background load in transactions per second (0: none).
	Load int
	// Reset wipes Seq.DataDir before starting.
	Reset bool
	// Status prints the status line.
	Status bool
}

func devnetConfigFrom(c *cli.Context) (devnetConfig, error) {
	cfg, err := sequencerConfig(c)
	if err != nil {
		return devnetConfig{}, err
	}
	dc := devnetConfig{Seq: cfg, Replicas: c.Int("devnet.replicas"), Load: c.Int("devnet.load"),
		Reset: c.Bool("devnet.reset"), Status: c.Bool("devnet.status")}
	switch {
	case dc.Replicas < 0 || dc.Replicas > maxDevnetReplicas:
		return dc, fmt.Errorf("--devnet.replicas must be between 0 and %d", maxDevnetReplicas)
	case dc.Replicas > 0 && cfg.Stream == nil:
		return dc, errors.New("devnet replicas need the diff stream (drop --stream.disable or set --devnet.replicas 0)")
	case dc.Load < 0 || dc.Load > maxDevnetLoad:
		return dc, fmt.Errorf("--devnet.load must be between 0 (off) and %d transactions per second, not %d", maxDevnetLoad, dc.Load)
	}
	if cfg.GenesisFile == "" {
		dc.Seq.Genesis = devnetGenesis()
	} else {
		g, err := chain.LoadGenesis(cfg.GenesisFile)
		if err != nil {
			return dc, fmt.Errorf("--genesis: %w", err)
		}
		if dc.Load > 0 {
			for _, acc := range devnetLoadKeys() {
				if a, ok := g.Alloc[acc.Address]; !ok || a.Balance.Sign() == 0 {
					return dc, fmt.Errorf("--devnet.load sends from the devnet's own accounts, which the --genesis file does not fund (%s, for one); set --devnet.load 0", acc.Address)
				}
			}
		}
		dc.Seq.Genesis = g
	}
	if dc.Reset && cfg.DataDir != "" {
		if err := checkDevnetDir(cfg.DataDir); err != nil {
			return dc, err
		}
	}
	return dc, nil
}

// devnetGenesis is the built-in dev chain plus the load accounts, each funded
// like a dev account. It is a constant: a devnet resumes only on the same
// genesis.
func devnetGenesis() *chain.Genesis {
	g := chain.DevGenesis()
	for _, acc := range devnetLoadKeys() {
		g.Alloc[acc.Address] = chain.Account{Balance: new(big.Int).Set(chain.DevBalance)}
	}
	return g
}

// replicaDirName matches the replica directories a devnet writes.
var replicaDirName = regexp.MustCompile(`^replica-[0-9]+$`)

// checkDevnetDir refuses a directory --devnet.reset must not wipe: one that
// holds anything besides what a devnet writes there (its chain, its NATS
// server's data, and its replicas' directories). A missing or empty directory
// passes.
func checkDevnetDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("--devnet.reset: %w", err)
	}
	for _, e := range entries {
		if name := e.Name(); !e.IsDir() || (name != "chain" && name != "nats" && !replicaDirName.MatchString(name)) {
			return fmt.Errorf("--devnet.reset: refusing to wipe %s: it does not look like a Kestrel devnet directory (it holds %q); remove it yourself or choose another --datadir", dir, name)
		}
	}
	if len(entries) > 0 && !hasChainStore(filepath.Join(dir, "chain")) {
		return fmt.Errorf("--devnet.reset: refusing to wipe %s: it holds no Kestrel chain database (chain/MANIFEST-*); remove it yourself or choose another --datadir", dir)
	}
	return nil
}

// hasChainStore reports whether dir holds a chain database (a pebble store).
func hasChainStore(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
	return len(m) > 0
}

// wipeDevnetDir removes what a devnet wrote in dir (checked by
// checkDevnetDir), leaving the directory itself. It refuses while a devnet
// runs on dir.
func wipeDevnetDir(dir string) error {
	if err := checkDevnetDir(dir); err != nil {
		return err
	}
	if chainDir := filepath.Join(dir, "chain"); hasChainStore(chainDir) {
		// Opening takes the store's lock: a devnet running on dir keeps it.
		st, err := store.Open(chainDir, store.Options{})
		if err != nil {
			return fmt.Errorf("--devnet.reset: open %s (is a devnet running on it?): %w", chainDir, err)
		}
		if err := st.Close(); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("--devnet.reset: %w", err)
		}
	}
	return nil
}

// storedGenesisMatches reports whether dir holds a chain, and refuses one made
// from another genesis with a hint at --devnet.reset (the sequencer would
// refuse it too, without the hint).
func storedGenesisMatches(dir string, g *chain.Genesis) (exists bool, err error) {
	chainDir := filepath.Join(dir, "chain")
	if !hasChainStore(chainDir) {
		return false, nil
	}
	st, err := store.Open(chainDir, store.Options{})
	if err != nil {
		return false, fmt.Errorf("open %s (is another kestrel running on it?): %w", chainDir, err)
	}
	defer st.Close()
	have, err := st.Genesis()
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	var stored chain.Genesis
	if err := json.Unmarshal(have, &stored); err != nil {
		return true, fmt.Errorf("%s: stored genesis: %w", dir, err)
	}
	a, _ := json.Marshal(&stored)
	b, err := json.Marshal(g)
	if err != nil {
		return true, err
	}
	if string(a) != string(b) {
		return true, fmt.Errorf("%s holds a chain with another genesis (from an older kestrel, or another --genesis): run with --devnet.reset to start a new chain there, or choose another --datadir", dir)
	}
	return true, nil
}

// runDevnet runs the sequencer, its replicas, the load and the status line in
// this process until Ctrl-C, then stops them in that order: load, status,
// replicas, sequencer.
func runDevnet(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(c.Args().Slice(), " "))
	}
	dc, err := devnetConfigFrom(c)
	if err != nil {
		return err
	}
	status := newStatusLine(os.Stdout, isTerminal(os.Stdout))
	logger, err := newLoggerTo(c, status.logWriter(os.Stderr, isTerminal(os.Stderr)))
	if err != nil {
		return err
	}
	if err := applyGC(c); err != nil {
		return err
	}
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	resumed := false
	if dir := dc.Seq.DataDir; dir != "" {
		if dc.Reset {
			if err := wipeDevnetDir(dir); err != nil {
				return err
			}
		}
		if resumed, err = storedGenesisMatches(dir, dc.Seq.Genesis); err != nil {
			return err
		}
	}
	seq, err := sequencer.New(ctx, dc.Seq, logger)
	if err != nil {
		return err
	}
	if err := seq.Start(ctx); err != nil {
		return err
	}
	var (
		replicas []*replica.Replica
		tmpDirs  []string
		load     *devnetLoad
		stopLoad = func() {} // cancels the load and waits for it
	)
	stopAll := func(stopCtx context.Context) error {
		stopLoad()
		status.stop()
		var errs []error
		for _, r := range replicas {
			errs = append(errs, r.Stop(stopCtx))
		}
		errs = append(errs, seq.Stop(stopCtx))
		for _, d := range tmpDirs {
			errs = append(errs, os.RemoveAll(d))
		}
		return errors.Join(errs...)
	}
	replicas, tmpDirs, err = startDevnetReplicas(ctx, dc, seq, logger)
	if err != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return errors.Join(err, stopAll(stopCtx))
	}
	if dc.Load > 0 {
		load, err = newDevnetLoad("http://"+seq.RPCAddr(), seq.Genesis().ChainID, dc.Load, logger.With("component", "devnet-load"))
		if err != nil {
			stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return errors.Join(err, stopAll(stopCtx))
		}
		loadCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer load.close()
			load.run(loadCtx)
		}()
		stopLoad = func() { cancel(); <-done }
	}
	printDevnetBanner(dc, seq, replicas, resumed)
	if dc.Status {
		status.start(func() statusSample { return sampleDevnet(seq, replicas, load) })
	}
	fatal := make(chan error, 1+len(replicas))
	go func() { fatal <- <-seq.Fatal() }()
	for _, r := range replicas {
		go func() { fatal <- <-r.Fatal() }()
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-fatal:
	}
	status.stop()
	logger.Info("Shutting down")
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return errors.Join(runErr, stopAll(stopCtx))
}

// startDevnetReplicas starts the devnet's replicas in this process, each on its
// own port and data directory, following the sequencer's embedded stream.
func startDevnetReplicas(ctx context.Context, dc devnetConfig, seq *sequencer.Sequencer, logger *slog.Logger) (out []*replica.Replica, tmpDirs []string, err error) {
	seqCfg := dc.Seq
	host, port, err := net.SplitHostPort(seq.RPCAddr())
	if err != nil {
		return nil, nil, err
	}
	base, _ := strconv.Atoi(port)
	for i := 1; i <= dc.Replicas; i++ {
		cfg := replica.DefaultConfig()
		cfg.Node.RPC = seqCfg.RPC
		cfg.Node.RPC.Addr = net.JoinHostPort(host, strconv.Itoa(base+i))
		cfg.Node.RetainRoots, cfg.Node.CallGasCap, cfg.Node.CallTimeout = seqCfg.RetainRoots, seqCfg.CallGasCap, seqCfg.CallTimeout
		cfg.Node.SuggestedTip = seqCfg.SuggestedTip
		if seqCfg.DataDir != "" {
			cfg.Node.DataDir = filepath.Join(seqCfg.DataDir, fmt.Sprintf("replica-%d", i))
		} else {
			dir, err := os.MkdirTemp("", fmt.Sprintf("kestrel-replica-%d-", i))
			if err != nil {
				return out, tmpDirs, err
			}
			cfg.Node.DataDir = dir
			tmpDirs = append(tmpDirs, dir)
		}
		cfg.Stream.URL, cfg.Stream.Name = seq.StreamURL(), seqCfg.Stream.Name
		cfg.SequencerRPC = "http://" + seq.RPCAddr()
		cfg.SequencerAddress = seq.Signer()
		cfg.Name = fmt.Sprintf("devnet-replica-%d", i)
		r, err := replica.New(ctx, cfg, logger.With("replica", i))
		if err != nil {
			return out, tmpDirs, fmt.Errorf("replica %d: %w", i, err)
		}
		if err := r.Start(ctx); err != nil {
			return out, tmpDirs, errors.Join(fmt.Errorf("replica %d: %w", i, err), r.Stop(ctx))
		}
		out = append(out, r)
	}
	return out, tmpDirs, nil
}

// printDevnetBanner prints where the devnet serves, its chain's state, the
// load, and the dev accounts.
func printDevnetBanner(dc devnetConfig, seq *sequencer.Sequencer, replicas []*replica.Replica, resumed bool) {
	var b strings.Builder
	state := "new chain"
	if resumed {
		state = fmt.Sprintf("resuming at block %d", seq.HeadNumber())
	}
	fmt.Fprintf(&b, "\nKestrel devnet (%s)\n", state)
	if dir := dc.Seq.DataDir; dir != "" {
		fmt.Fprintf(&b, "  Data:       %s (kept; --devnet.reset starts a new chain)\n", dir)
	} else {
		b.WriteString("  Data:       temporary, removed at exit\n")
	}
	writeEndpoints(&b, seq, replicas)
	if dc.Load > 0 {
		fmt.Fprintf(&b, "  Load:       %d tx/s among %d devnet-only accounts (--devnet.load 0: off)\n", dc.Load, devnetLoadAccounts)
	}
	b.WriteString("\n")
	writeDevAccounts(&b, dc.Seq.Genesis)
	fmt.Fprint(os.Stdout, b.String())
}

// sampleDevnet reads the status line's figures from the running nodes.
func sampleDevnet(seq *sequencer.Sequencer, replicas []*replica.Replica, load *devnetLoad) statusSample {
	t := seq.Totals()
	s := statusSample{At: time.Now(), Head: seq.HeadNumber(), MiniBlocks: t.MiniBlocks, Txs: t.Txs, LoadOn: load != nil}
	head := seq.MiniBlockHead()
	for _, r := range replicas {
		var lag uint64
		if n := r.Node(); n != nil && n.MiniBlockHead() < head {
			lag = head - n.MiniBlockHead()
		}
		s.ReplicaLag = append(s.ReplicaLag, lag)
	}
	if load != nil {
		s.LoadSent, s.LoadFailed = load.sent.Load(), load.failed.Load()
	}
	return s
}

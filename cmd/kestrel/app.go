package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/urfave/cli/v2"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/replica"
	"github.com/kestrel-l2/kestrel/sequencer"
)

// envVar is the environment variable of a flag: --a.b-c reads KESTREL_A_B_C.
func envVar(name string) string {
	return "KESTREL_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(name))
}

func withEnv(fs []cli.Flag) []cli.Flag {
	for _, f := range fs {
		name := f.Names()[0]
		switch f := f.(type) {
		case *cli.StringFlag:
			f.EnvVars = []string{envVar(name)}
		case *cli.IntFlag:
			f.EnvVars = []string{envVar(name)}
		case *cli.Uint64Flag:
			f.EnvVars = []string{envVar(name)}
		case *cli.Int64Flag:
			f.EnvVars = []string{envVar(name)}
		case *cli.DurationFlag:
			f.EnvVars = []string{envVar(name)}
		case *cli.StringSliceFlag:
			f.EnvVars = []string{envVar(name)}
		case *cli.BoolFlag:
			f.EnvVars = []string{envVar(name)}
		}
	}
	return fs
}

func defaultDataDir() string {
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".kestrel")
	}
	return "kestrel-data"
}

func newApp() *cli.App {
	return &cli.App{
		Name:  "kestrel",
		Usage: "a high-performance Ethereum L2 node",
		Description: "Kestrel orders and executes transactions in 10 ms mini-blocks and 1 s EVM blocks.\n" +
			"Every flag --a.b-c can also be set with the environment variable KESTREL_A_B_C.",
		Version: sequencer.Version,
		Commands: []*cli.Command{
			{
				Name:   "sequencer",
				Usage:  "run the sequencer (with no flags: a dev chain in ~/.kestrel)",
				Flags:  sequencerFlags(defaultDataDir()),
				Action: runSequencer(false),
			},
			{
				Name:   "devnet",
				Usage:  "run a throwaway dev chain (fresh state unless --datadir is given) with replicas, and print the dev accounts",
				Flags:  append(sequencerFlags(""), withEnv([]cli.Flag{&cli.IntFlag{Name: "devnet.replicas", Value: 2, Usage: "replicas started beside the sequencer, on the ports after --http.addr's", Category: "DEVNET"}})...),
				Action: runSequencer(true),
			},
			replicaCommand(),
			benchCommand(),
			statetestCommand(),
			{
				Name:  "verify",
				Usage: "re-execute a stopped node's whole mini-block log from genesis and check every receipt, diff and block root",
				Flags: withEnv([]cli.Flag{
					&cli.StringFlag{Name: "datadir", Value: defaultDataDir(), Usage: "data directory of the chain to check (the node must be stopped)"},
				}),
				Action: runVerify,
			},
		},
	}
}

func newLogger(c *cli.Context) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log.level"))); err != nil {
		return nil, fmt.Errorf("--log.level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.String("log.format") {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	default:
		return nil, fmt.Errorf("--log.format must be text or json, not %q", c.String("log.format"))
	}
}

func runSequencer(devnet bool) cli.ActionFunc {
	return func(c *cli.Context) error {
		logger, err := nodePreamble(c)
		if err != nil {
			return err
		}
		cfg, err := sequencerConfig(c)
		if err != nil {
			return err
		}
		if devnet {
			if n := c.Int("devnet.replicas"); n < 0 || n > 16 {
				return errors.New("--devnet.replicas must be between 0 and 16")
			} else if n > 0 && cfg.Stream == nil {
				return errors.New("devnet replicas need the diff stream (drop --stream.disable or set --devnet.replicas 0)")
			}
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		seq, err := sequencer.New(ctx, cfg, logger)
		if err != nil {
			return err
		}
		if err := seq.Start(ctx); err != nil {
			return err
		}
		var replicas []*replica.Replica
		var tmpDirs []string
		stopAll := func(stopCtx context.Context) error {
			var errs []error
			for _, r := range replicas {
				errs = append(errs, r.Stop(stopCtx))
			}
			for _, d := range tmpDirs {
				errs = append(errs, os.RemoveAll(d))
			}
			return errors.Join(append(errs, seq.Stop(stopCtx))...)
		}
		if devnet {
			replicas, tmpDirs, err = startDevnetReplicas(ctx, c, cfg, seq, logger)
			if err != nil {
				stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				return errors.Join(err, stopAll(stopCtx))
			}
		}
		if devnet || cfg.GenesisFile == "" {
			printDevAccounts(seq, replicas)
		}
		fatal := make(chan error, 1+len(replicas))
		go func() { fatal <- <-seq.Fatal() }()
		for _, r := range replicas {
			go func() { fatal <- <-r.Fatal() }()
		}
		return waitForShutdown(ctx, logger, fatal, stopAll)
	}
}

// nodePreamble checks a node command's arguments, builds its logger and
// applies its GC settings.
func nodePreamble(c *cli.Context) (*slog.Logger, error) {
	if c.Args().Len() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(c.Args().Slice(), " "))
	}
	logger, err := newLogger(c)
	if err != nil {
		return nil, err
	}
	return logger, applyGC(c)
}

// waitForShutdown blocks until a signal (ctx) or an error that halted a node,
// then stops everything within 30 s and returns both errors.
func waitForShutdown(ctx context.Context, logger *slog.Logger, fatal <-chan error, stop func(context.Context) error) error {
	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("Shutting down")
	case runErr = <-fatal:
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return errors.Join(runErr, stop(stopCtx))
}

// startDevnetReplicas starts the devnet's replicas in this process, each on its
// own port and data directory, following the sequencer's embedded stream.
func startDevnetReplicas(ctx context.Context, c *cli.Context, seqCfg sequencer.Config, seq *sequencer.Sequencer, logger *slog.Logger) (out []*replica.Replica, tmpDirs []string, err error) {
	n := c.Int("devnet.replicas") // checked by runSequencer
	host, port, err := net.SplitHostPort(seq.RPCAddr())
	if err != nil {
		return nil, nil, err
	}
	base, _ := strconv.Atoi(port)
	for i := 1; i <= n; i++ {
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

func printDevAccounts(seq *sequencer.Sequencer, replicas []*replica.Replica) {
	g := seq.Genesis()
	var b strings.Builder
	fmt.Fprintf(&b, "\nKestrel dev chain\n  RPC:        http://%s\n  WebSocket:  ws://%s\n  Chain id:   %d\n  Sequencer:  %s\n",
		seq.RPCAddr(), seq.RPCAddr(), g.ChainID, seq.Signer())
	if u := seq.StreamURL(); u != "" {
		fmt.Fprintf(&b, "  Stream:     %s (NATS JetStream)\n", u)
	}
	for i, r := range replicas {
		fmt.Fprintf(&b, "  Replica %d:  http://%s  ws://%s\n", i+1, r.RPCAddr(), r.RPCAddr())
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "Accounts (mnemonic %q, m/44'/60'/0'/0/i), 10,000 ETH each:\n", chain.DevMnemonic)
	for i, acc := range chain.DevAccounts() {
		if _, ok := g.Alloc[acc.Address]; !ok {
			continue
		}
		fmt.Fprintf(&b, "  (%d) %s  key %s\n", i, acc.Address, hexutil.Encode(crypto.FromECDSA(acc.Key)))
	}
	b.WriteString("\nThese keys are public. Never send real funds to them.\n\n")
	fmt.Fprint(os.Stdout, b.String())
}

func runVerify(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(c.Args().Slice(), " "))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	rep, err := sequencer.Verify(ctx, c.String("datadir"))
	if rep != nil {
		fmt.Printf("re-executed %d mini-blocks (%d transactions); %d sealed blocks match, head block %d root %s (%v)\n",
			rep.MiniBlocks, rep.Transactions, rep.Blocks, rep.HeadBlock, rep.HeadRoot, time.Since(start).Round(time.Millisecond))
	}
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	return nil
}

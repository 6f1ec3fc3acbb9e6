package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
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
				Action: runSequencer,
			},
			devnetCommand(),
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

func newLogger(c *cli.Context) (*slog.Logger, error) { return newLoggerTo(c, os.Stderr) }

// newLoggerTo builds the logger --log.level and --log.format select, writing
// to w.
func newLoggerTo(c *cli.Context, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log.level"))); err != nil {
		return nil, fmt.Errorf("--log.level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.String("log.format") {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log.format must be text or json, not %q", c.String("log.format"))
	}
}

// runSequencer runs `kestrel sequencer` until a signal or a fatal error.
func runSequencer(c *cli.Context) error {
	logger, err := nodePreamble(c)
	if err != nil {
		return err
	}
	cfg, err := sequencerConfig(c)
	if err != nil {
		return err
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
	if cfg.GenesisFile == "" {
		printDevAccounts(seq, chain.DevGenesis())
	}
	fatal := make(chan error, 1)
	go func() { fatal <- <-seq.Fatal() }()
	return waitForShutdown(ctx, logger, fatal, seq.Stop)
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

// printDevAccounts prints where the node serves and the dev accounts.
func printDevAccounts(seq *sequencer.Sequencer, g *chain.Genesis) {
	var b strings.Builder
	b.WriteString("\nKestrel dev chain\n")
	writeEndpoints(&b, seq, nil)
	b.WriteString("\n")
	writeDevAccounts(&b, g)
	fmt.Fprint(os.Stdout, b.String())
}

// writeEndpoints writes the node's URLs, chain id and signer, and the replicas'
// URLs.
func writeEndpoints(b *strings.Builder, seq *sequencer.Sequencer, replicas []*replica.Replica) {
	fmt.Fprintf(b, "  RPC:        http://%s\n  WebSocket:  ws://%s\n  Chain id:   %d\n  Sequencer:  %s\n",
		seq.RPCAddr(), seq.RPCAddr(), seq.Genesis().ChainID, seq.Signer())
	if u := seq.StreamURL(); u != "" {
		fmt.Fprintf(b, "  Stream:     %s (NATS JetStream)\n", u)
	}
	for i, r := range replicas {
		fmt.Fprintf(b, "  Replica %d:  http://%s  ws://%s\n", i+1, r.RPCAddr(), r.RPCAddr())
	}
}

// writeDevAccounts writes the dev mnemonic's accounts that g funds.
func writeDevAccounts(b *strings.Builder, g *chain.Genesis) {
	fmt.Fprintf(b, "Accounts (mnemonic %q, m/44'/60'/0'/0/i), 10,000 ETH each:\n", chain.DevMnemonic)
	for i, acc := range chain.DevAccounts() {
		if _, ok := g.Alloc[acc.Address]; !ok {
			continue
		}
		fmt.Fprintf(b, "  (%d) %s  key %s\n", i, acc.Address, hexutil.Encode(crypto.FromECDSA(acc.Key)))
	}
	b.WriteString("\nThese keys are public. Never send real funds to them.\n\n")
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

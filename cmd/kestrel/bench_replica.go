package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/kestrel-l2/kestrel/bench"
)

func replicaBenchCommand() *cli.Command {
	return &cli.Command{
		Name:  "replica",
		Usage: "measure the diff stream and replicas: apply and catch-up rate, stream lag, bytes per transaction, bootstrap time",
		Description: "One process runs a sequencer with its embedded NATS JetStream server and two replicas following it.\n" +
			"Per workload: --txs pre-signed transfers are sent closed-loop (the sequencer's sustained rate; its execution\n" +
			"time alone is the baseline), then --rate tx/s open loop for --lag-duration while the time from each\n" +
			"mini-block's publication on the sequencer (durable) to its application on each replica is recorded. The\n" +
			"stream's bytes over the backlog give bytes per transaction. A third replica then starts from the genesis\n" +
			"snapshot and catches up on the whole run from the stream (its rate against the sequencer's execution rate).\n" +
			"Finally a replica bootstraps a genesis of --bootstrap-accounts accounts over HTTP.",
		Flags: append(withEnv([]cli.Flag{
			&cli.StringFlag{Name: "workload", Value: "all", Usage: "eth, erc20 or all", Category: "LOAD"},
			&cli.IntFlag{Name: "txs", Value: 1_000_000, Usage: "transactions of the closed-loop backlog (the catch-up replica applies them all)", Category: "LOAD"},
			&cli.IntFlag{Name: "senders", Value: 10_000, Usage: "funded sending accounts", Category: "LOAD"},
			&cli.IntFlag{Name: "rate", Value: 10_000, Usage: "offered load (tx/s) while the stream lag is measured", Category: "LOAD"},
			&cli.DurationFlag{Name: "lag-duration", Value: 10_000_000_000, Usage: "length of the lag phase", Category: "LOAD"},
			&cli.IntFlag{Name: "bootstrap-accounts", Value: 1_000_000, Usage: "accounts of the bootstrap phase's genesis (0: skip)", Category: "LOAD"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of every key and transaction", Category: "LOAD"},
			&cli.BoolFlag{Name: "quick", Usage: "small preset (10,000 txs, 1,000 senders, 1,000 tx/s for 2 s, 20,000 bootstrap accounts); explicit flags still win", Category: "RUN"},
			&cli.StringFlag{Name: "datadir", Usage: "parent directory of the nodes' data (default: the system temp dir)", Category: "RUN"},
			&cli.StringFlag{Name: "log-level", Value: "warn", Usage: "log level of the in-process nodes", Category: "RUN"},
			&cli.StringFlag{Name: "json", Usage: "also write every figure to this JSON file", Category: "OUTPUT"},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile of each catch-up phase to FILE-WORKLOAD", Category: "OUTPUT"},
		}), gcFlags()...),
		Action: runReplicaBench,
	}
}

func runReplicaBench(c *cli.Context) error {
	if err := benchPreamble(c); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	kinds, err := bench.ParseKinds(c.String("workload"))
	if err != nil {
		return fmt.Errorf("--workload: %w", err)
	}
	dir, err := benchDataDir("datadir", c.String("datadir"))
	if err != nil {
		return err
	}
	o := bench.ReplicaOptions{Kinds: kinds, Txs: c.Int("txs"), Senders: c.Int("senders"), Rate: c.Int("rate"),
		LagDuration: c.Duration("lag-duration"), BootstrapAccounts: c.Int("bootstrap-accounts"), Seed: c.Uint64("seed"),
		Dir: dir, Progress: c.App.ErrWriter, CPUProfile: c.String("cpuprofile"),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))}
	if c.Bool("quick") {
		quick := map[string]func(){
			"txs": func() { o.Txs = 10_000 }, "senders": func() { o.Senders = 1_000 }, "rate": func() { o.Rate = 1_000 },
			"lag-duration": func() { o.LagDuration = 2_000_000_000 }, "bootstrap-accounts": func() { o.BootstrapAccounts = 20_000 },
		}
		for name, f := range quick {
			if !c.IsSet(name) {
				f()
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.RunReplica(ctx, o)
	if err != nil {
		return err
	}
	return writeReport(c, rep, nil)
}

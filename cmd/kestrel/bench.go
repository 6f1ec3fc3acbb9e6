package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kestrel-l2/kestrel/bench"
	"github.com/kestrel-l2/kestrel/sequencer"
)

func benchFlags() []cli.Flag {
	d := sequencer.DefaultConfig()
	return withEnv([]cli.Flag{
		&cli.StringFlag{Name: "bench.workload", Value: "all", Usage: "eth (ETH transfers), erc20 (ERC-20 transfers) or all", Category: "WORKLOAD"},
		&cli.IntFlag{Name: "bench.txs", Value: 100_000, Usage: "transactions per throughput run", Category: "WORKLOAD"},
		&cli.IntFlag{Name: "bench.senders", Value: 2_000, Usage: "sending accounts (transaction i comes from sender i mod senders)", Category: "WORKLOAD"},
		&cli.IntFlag{Name: "bench.recipients", Value: 0, Usage: "receiving accounts (0: as many as senders)", Category: "WORKLOAD"},
		&cli.Uint64Flag{Name: "bench.seed", Value: 1, Usage: "seed of every key, address and transaction", Category: "WORKLOAD"},
		&cli.IntFlag{Name: "bench.rate", Value: 5_000, Usage: "offered load (tx/s) of the eth_sendRawTransactionSync latency phase (0: skip it)", Category: "LATENCY"},
		&cli.DurationFlag{Name: "bench.duration", Value: 10 * time.Second, Usage: "length of the latency phase", Category: "LATENCY"},
		&cli.IntFlag{Name: "bench.runs", Value: 3, Usage: "repeat every measurement and report the median", Category: "RUN"},
		&cli.IntFlag{Name: "bench.block-txs", Value: bench.DefaultBlockTxs, Usage: "transactions per block in the go-ethereum baseline", Category: "RUN"},
		&cli.IntFlag{Name: "bench.conns", Value: 4, Usage: "concurrent keep-alive connections sending batches in the throughput phase", Category: "RUN"},
		&cli.IntFlag{Name: "bench.batch", Value: 500, Usage: "eth_sendRawTransaction calls per JSON-RPC batch (at most 1000)", Category: "RUN"},
		&cli.StringFlag{Name: "bench.rpc-url", Usage: "benchmark this external node (funded from dev account 0) instead of an in-process sequencer", Category: "TARGET"},
		&cli.StringFlag{Name: "bench.datadir", Usage: "parent directory of the in-process nodes' data (default: the system temp dir; use a real disk)", Category: "TARGET"},
		&cli.DurationFlag{Name: "bench.mini-block-interval", Value: d.MiniBlockInterval, Usage: "mini-block interval of the in-process sequencer", Category: "TARGET"},
		&cli.DurationFlag{Name: "bench.block-interval", Value: d.BlockInterval, Usage: "block interval of the in-process sequencer", Category: "TARGET"},
		&cli.StringFlag{Name: "bench.log-level", Value: "warn", Usage: "log level of the in-process sequencer (debug, info, warn, error)", Category: "TARGET"},
		&cli.StringFlag{Name: "bench.cpuprofile", Usage: "write CPU profiles of the first run's Kestrel throughput phase to this file and of its latency phase to FILE-latency (-<workload> is added when several run)", Category: "OUTPUT"},
		&cli.StringFlag{Name: "bench.out", Usage: "also write the report to FILE.json and FILE.md", Category: "OUTPUT"},
	})
}

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure the whole stack against go-ethereum and write a report (engine, scaling, end to end vs geth --dev, RPC, memory)",
		Description: "Runs the phases in --phases and writes DIR/report.md, DIR/report.json and PNG plots into --out:\n" +
			"  engine   the execution engines alone on the same blocks (go-ethereum sequential, Kestrel sequential, parallel)\n" +
			"  scaling  the parallel engine at 1, 2, 4 … N cores (GOMAXPROCS) against go-ethereum on one core\n" +
			"  e2e      the same pre-signed transactions through JSON-RPC into Kestrel (sequencer + replicas, in process)\n" +
			"           and into a real `geth --dev` process on the same genesis: closed loop at saturation, then\n" +
			"           eth_sendRawTransactionSync open loop at --e2e.rate (latency, replica visibility and lag)\n" +
			"  rpc      read-path RPC load on the same state, Kestrel vs go-ethereum's RPC stack\n" +
			"  memory   heap per funded account of the state (flat state + trie) vs go-ethereum's\n" +
			"The geth binary is built from this module: `make geth` (bin/geth, found next to bin/kestrel) or --geth.\n" +
			"A live status line shows the phase, its rate and ETA. `kestrel bench compare A.json B.json` compares two runs.",
		Flags:  append(suiteFlags(), gcFlags()...),
		Action: runSuite,
		Subcommands: []*cli.Command{engineCommand(), rpcBenchCommand(), replicaBenchCommand(), sequencerBenchCommand(),
			compareCommand()},
	}
}

func sequencerBenchCommand() *cli.Command {
	return &cli.Command{
		Name:  "sequencer",
		Usage: "measure the sequencer end to end against go-ethereum's processing of the same transactions",
		Description: "For each workload and run: the same pre-signed transactions are processed by go-ethereum's\n" +
			"StateDB + core.ApplyTransactionWithEVM on one goroutine (without and with a state root per block),\n" +
			"then sent to a fresh in-process sequencer (or --bench.rpc-url) over JSON-RPC and timed until all\n" +
			"are in durable mini-blocks; then eth_sendRawTransactionSync is offered open loop at --bench.rate\n" +
			"for --bench.duration. Medians over --bench.runs are reported.",
		Flags:  append(benchFlags(), gcFlags()...),
		Action: runBench,
	}
}

const engineWorkloadUsage = "transfers (ETH), erc20 (ERC-20 transfers), hotswap (swaps on one AMM pool), swaps (50% on a hot AMM pool, " +
	"the rest over 100 cold pools), nft (ERC-721 mints), deploy (ERC-20 deployments), mix (70% erc20, 20% transfers, 10% hotswap) or all"

func engineFlags() []cli.Flag {
	return withEnv([]cli.Flag{
		&cli.StringFlag{Name: "workload", Value: "all", Usage: engineWorkloadUsage, Category: "WORKLOAD"},
		&cli.IntFlag{Name: "txs", Value: bench.DefaultEngineTxs, Usage: "transactions per workload", Category: "WORKLOAD"},
		&cli.IntFlag{Name: "block-txs", Value: bench.DefaultEngineBlockTxs, Usage: "transactions per block (and senders: one transaction per sender and block)", Category: "WORKLOAD"},
		&cli.IntFlag{Name: "runs", Value: bench.DefaultEngineRuns, Usage: "runs of every engine, each from a fresh pre-state; medians are reported", Category: "RUN"},
		&cli.IntFlag{Name: "workers", Value: 0, Usage: "parallel engine workers (0: GOMAXPROCS, all cores); the GOMAXPROCS 1 and 2 runs use as many workers as GOMAXPROCS", Category: "RUN"},
		&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of every key, address and transaction", Category: "WORKLOAD"},
		&cli.StringFlag{Name: "json", Usage: "also write every figure and the machine's facts to this JSON file", Category: "OUTPUT"},
		&cli.StringFlag{Name: "cpuprofile", Usage: "after the timed runs, run each engine once more per workload with a CPU profile written to FILE-WORKLOAD-ENGINE", Category: "OUTPUT"},
	})
}

func engineCommand() *cli.Command {
	return &cli.Command{
		Name:  "engine",
		Usage: "measure the execution engines alone: go-ethereum, Kestrel sequential and Kestrel parallel on the same blocks",
		Description: "For each workload, blocks of --block-txs pre-signed transactions (senders already recovered) are\n" +
			"executed by (a) go-ethereum's StateDB + core.ApplyTransactionWithEVM (one EVM per block), (b) Kestrel's\n" +
			"sequential executor and (c) Kestrel's parallel executor, then (c) again without access-list inference\n" +
			"and at GOMAXPROCS 1 and 2. Only execution is timed, each run from a fresh pre-state. Every transaction\n" +
			"must succeed, (a) and (b) must agree on receipts and state root, and (c) must give results\n" +
			"byte-identical to (b). Medians over --runs are printed, then one line per workload:\n" +
			"\"engine WORKLOAD: kestrel X tx/s, geth Y tx/s, ratio Z\" (X: (c), Y: (a), Z = X/Y).",
		Flags:  append(engineFlags(), gcFlags()...),
		Action: runEngineBench,
	}
}

// benchPreamble refuses positional arguments and applies the --gc.* flags:
// what every bench subcommand does first.
func benchPreamble(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(c.Args().Slice(), " "))
	}
	return applyGC(c)
}

func runEngineBench(c *cli.Context) error {
	if err := benchPreamble(c); err != nil {
		return err
	}
	kinds, err := bench.ParseEngineKinds(c.String("workload"))
	if err != nil {
		return fmt.Errorf("--workload: %w", err)
	}
	opts := bench.EngineOptions{
		Kinds: kinds, Txs: c.Int("txs"), BlockTxs: c.Int("block-txs"), Runs: c.Int("runs"), Workers: c.Int("workers"),
		Seed: c.Uint64("seed"), CPUProfile: c.String("cpuprofile"), Progress: c.App.ErrWriter,
	}
	switch {
	case opts.Txs < 1 || opts.BlockTxs < 1 || opts.Runs < 1:
		return fmt.Errorf("--txs, --block-txs and --runs must be positive")
	case opts.Workers < 0:
		return fmt.Errorf("--workers must not be negative")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.RunEngine(ctx, opts)
	if err != nil {
		return err
	}
	return writeReport(c, rep, nil)
}

// benchReport is what a bench subcommand prints and saves.
type benchReport interface {
	WriteJSON(path string) error
	WriteTable(w io.Writer)
}

// writeReport writes rep to --json (also when the run failed midway, so that
// the figures measured before the error are kept), then prints its table
// unless runErr is set, which it returns.
func writeReport(c *cli.Context, rep benchReport, runErr error) error {
	if path := c.String("json"); path != "" {
		if err := rep.WriteJSON(path); err != nil {
			return errors.Join(runErr, fmt.Errorf("--json: %w", err))
		}
		fmt.Fprintf(c.App.ErrWriter, "JSON report written to %s\n", path)
	}
	if runErr != nil {
		return runErr
	}
	fmt.Fprintln(c.App.Writer)
	rep.WriteTable(c.App.Writer)
	return nil
}

func runBench(c *cli.Context) error {
	if err := benchPreamble(c); err != nil {
		return err
	}
	kinds, err := bench.ParseKinds(c.String("bench.workload"))
	if err != nil {
		return fmt.Errorf("--bench.workload: %w", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("bench.log-level"))); err != nil {
		return fmt.Errorf("--bench.log-level: %w", err)
	}
	dir, err := benchDataDir("bench.datadir", c.String("bench.datadir"))
	if err != nil {
		return err
	}
	opts := bench.Options{
		Kinds: kinds, Txs: c.Int("bench.txs"), Senders: c.Int("bench.senders"), Recipients: c.Int("bench.recipients"),
		Seed: c.Uint64("bench.seed"), Rate: c.Int("bench.rate"), Duration: c.Duration("bench.duration"),
		Runs: c.Int("bench.runs"), BlockTxs: c.Int("bench.block-txs"), Conns: c.Int("bench.conns"), Batch: c.Int("bench.batch"),
		RPCURL: c.String("bench.rpc-url"), Dir: dir,
		MiniBlockInterval: c.Duration("bench.mini-block-interval"), BlockInterval: c.Duration("bench.block-interval"),
		CPUProfile: c.String("bench.cpuprofile"),
		NodeLogger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
		Progress:   os.Stderr,
	}
	switch {
	case opts.Txs < 1 || opts.Senders < 1 || opts.Runs < 1:
		return fmt.Errorf("--bench.txs, --bench.senders and --bench.runs must be positive")
	case opts.Rate < 0 || opts.Recipients < 0:
		return fmt.Errorf("--bench.rate and --bench.recipients must not be negative")
	case opts.Batch < 1 || opts.Batch > 1000 || opts.Conns < 1:
		return fmt.Errorf("--bench.batch must be 1..1000 and --bench.conns positive")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Run(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Println()
	rep.WriteTable(os.Stdout)
	for _, w := range rep.Workloads {
		for _, p := range w.Profiles() {
			fmt.Printf("\nCPU profile of the %s %s (run 1): %s\n", w.Kind, p.Phase, p.Path)
			if p.Top != "" {
				fmt.Print(p.Top)
			}
		}
	}
	if out := c.String("bench.out"); out != "" {
		paths, err := rep.WriteFiles(out)
		if err != nil {
			return err
		}
		fmt.Printf("\nReport written to %s\n", strings.Join(paths, " and "))
	}
	return nil
}

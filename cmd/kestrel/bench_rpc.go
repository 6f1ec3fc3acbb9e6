package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/kestrel-l2/kestrel/bench"
)

func rpcBenchFlags() []cli.Flag {
	d := bench.DefaultRPCOptions()
	return withEnv([]cli.Flag{
		&cli.IntFlag{Name: "accounts", Value: d.Accounts, Usage: "funded accounts, each holding the ERC-20 (the load asks about random ones)", Category: "STATE"},
		&cli.IntFlag{Name: "txs", Value: d.Txs, Usage: "ERC-20 transfers both nodes include before measuring (eth_getTransactionReceipt asks for them)", Category: "STATE"},
		&cli.Uint64Flag{Name: "seed", Value: d.Seed, Usage: "seed of every key, address, transaction and request", Category: "STATE"},
		&cli.StringFlag{Name: "methods", Value: "all", Usage: "comma-separated methods to measure: " + strings.Join(bench.RPCMethodKeys(), ", ") + " (or all)", Category: "LOAD"},
		&cli.IntFlag{Name: "conns", Value: d.Conns, Usage: "concurrent keep-alive connections of the closed loop (the same for both targets)", Category: "LOAD"},
		&cli.DurationFlag{Name: "duration", Value: d.Duration, Usage: "measured time per method, target and run (closed and open loop)", Category: "LOAD"},
		&cli.DurationFlag{Name: "warmup", Value: d.Warmup, Usage: "unmeasured load before each measurement", Category: "LOAD"},
		&cli.IntFlag{Name: "runs", Value: d.Runs, Usage: "runs of every measurement on both targets (alternating which goes first); medians are reported", Category: "LOAD"},
		&cli.IntFlag{Name: "open-percent", Value: d.OpenPercent, Usage: "equal-load phase: open-loop rate in percent of the lower closed-loop throughput (0: skip)", Category: "LOAD"},
		&cli.IntFlag{Name: "ws-start", Value: d.WSStart, Usage: "first WebSocket subscriber count (doubled each step)", Category: "WEBSOCKET"},
		&cli.IntFlag{Name: "ws-max", Value: d.WSMax, Usage: "largest WebSocket subscriber count tried (0: skip the WebSocket phase)", Category: "WEBSOCKET"},
		&cli.DurationFlag{Name: "ws-duration", Value: d.WSDuration, Usage: "measuring window per subscriber count", Category: "WEBSOCKET"},
		&cli.DurationFlag{Name: "ws-lag", Value: d.WSLag, Usage: "a subscriber whose p99 lag (receive time - mini-block timestamp) exceeds this has fallen behind", Category: "WEBSOCKET"},
		&cli.IntFlag{Name: "ws-refine", Value: d.WSRefine, Usage: "bisection steps after the doubling series, between the last count that kept up and the first that did not", Category: "WEBSOCKET"},
		&cli.IntFlag{Name: "ws-tx-rate", Value: d.WSTxRate, Usage: "background ERC-20 transfers per second during the WebSocket phase (keeps every mini-block non-empty)", Category: "WEBSOCKET"},
		&cli.BoolFlag{Name: "quick", Usage: "small and short preset (1,000 accounts, 200 transfers, 0.3 s per method, 1 run, 1-4 subscribers); explicit flags still win", Category: "RUN"},
		&cli.StringFlag{Name: "datadir", Usage: "parent directory of Kestrel's data (default: the system temp dir)", Category: "RUN"},
		&cli.StringFlag{Name: "log-level", Value: "warn", Usage: "log level of the in-process sequencer (debug, info, warn, error)", Category: "RUN"},
		&cli.StringFlag{Name: "json", Usage: "also write every figure and the machine's facts to this JSON file", Category: "OUTPUT"},
		&cli.StringFlag{Name: "cpuprofile", Usage: "after the timed runs, profile Kestrel serving each method --profile-methods selects, to FILE-METHOD", Category: "OUTPUT"},
		&cli.StringFlag{Name: "profile-methods", Value: d.ProfileMethods, Usage: "with --cpuprofile: missed (methods below their target), all, or a comma-separated list", Category: "OUTPUT"},
	})
}

func rpcBenchCommand() *cli.Command {
	return &cli.Command{
		Name:  "rpc",
		Usage: "measure Kestrel's JSON-RPC read path against go-ethereum's RPC stack on the same state, and miniBlocks WebSocket fan-out",
		Description: "Kestrel (in-process sequencer) and go-ethereum (node.Node HTTP server over eth.Ethereum, assembled as\n" +
			"ethclient/simulated.NewBackend does) start from the same genesis: --accounts funded accounts that all hold an\n" +
			"ERC-20, then both include the same --txs transfers; a sample of balances, token balances, nonces, proofs and\n" +
			"receipts must agree. One load generator then drives each method on each target in turn over loopback:\n" +
			"closed loop on --conns connections for --duration, then open loop at --open-percent of the lower throughput\n" +
			"(equal load). Methods: eth_getBalance, eth_call balanceOf, eth_getProof (without and with one storage key),\n" +
			"eth_getTransactionReceipt, eth_blockNumber and batches of 10 mixed calls. Any failed request fails the run.\n" +
			"Finally, with a background load of --ws-tx-rate transfers/s, doubling counts of eth_subscribe(\"miniBlocks\")\n" +
			"subscribers (--ws-start .. --ws-max) until one falls behind. Medians over --runs are printed, ending with one\n" +
			"line per method: \"rpc METHOD: kestrel X req/s, geth Y req/s, ratio Z\".",
		Flags:  append(rpcBenchFlags(), gcFlags()...),
		Action: runRPCBench,
	}
}

func runRPCBench(c *cli.Context) error {
	if err := benchPreamble(c); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	o := bench.DefaultRPCOptions()
	if c.Bool("quick") {
		o = bench.QuickRPCOptions()
	}
	// Under --quick only the flags given explicitly replace the preset.
	set := func(name string) bool { return !c.Bool("quick") || c.IsSet(name) }
	if set("accounts") {
		o.Accounts = c.Int("accounts")
	}
	if set("txs") {
		o.Txs = c.Int("txs")
	}
	if set("conns") {
		o.Conns = c.Int("conns")
	}
	if set("duration") {
		o.Duration = c.Duration("duration")
	}
	if set("warmup") {
		o.Warmup = c.Duration("warmup")
	}
	if set("runs") {
		o.Runs = c.Int("runs")
	}
	if set("ws-start") {
		o.WSStart = c.Int("ws-start")
	}
	if set("ws-max") {
		o.WSMax = c.Int("ws-max")
	}
	if set("ws-duration") {
		o.WSDuration = c.Duration("ws-duration")
	}
	if set("ws-refine") {
		o.WSRefine = c.Int("ws-refine")
	}
	if set("ws-tx-rate") {
		o.WSTxRate = c.Int("ws-tx-rate")
	}
	o.Seed = c.Uint64("seed")
	o.OpenPercent = c.Int("open-percent")
	o.WSLag = c.Duration("ws-lag")
	if m := c.String("methods"); m != "all" {
		for _, k := range strings.Split(m, ",") {
			o.Methods = append(o.Methods, strings.TrimSpace(k))
		}
	}
	dir, err := benchDataDir("datadir", c.String("datadir"))
	if err != nil {
		return err
	}
	o.Dir = dir
	o.CPUProfile = c.String("cpuprofile")
	o.ProfileMethods = c.String("profile-methods")
	o.NodeLogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	o.Progress = c.App.ErrWriter

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.RunRPC(ctx, o)
	if rep == nil {
		return err
	}
	return writeReport(c, rep, err)
}

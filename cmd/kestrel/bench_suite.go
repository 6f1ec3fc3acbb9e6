package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/kestrel-l2/kestrel/bench"
)

func suiteFlags() []cli.Flag {
	d := bench.DefaultSuiteOptions(false)
	q := bench.DefaultSuiteOptions(true)
	return withEnv([]cli.Flag{
		&cli.BoolFlag{Name: "quick", Usage: fmt.Sprintf("small, short preset for a smoke test (engine %d txs, end to end %d txs from %d senders, 1 run, memory %d accounts); explicit flags still win",
			q.EngineTxs, q.E2E.Txs, q.E2E.Senders, q.MemoryAccounts), Category: "RUN"},
		&cli.StringFlag{Name: "out", Value: "bench-results", Usage: "directory for report.md, report.json and the PNG plots", Category: "OUTPUT"},
		&cli.StringFlag{Name: "phases", Value: "all", Usage: "comma-separated phases to run: " + strings.Join(bench.SuitePhases, ", ") + " (or all)", Category: "RUN"},
		&cli.Uint64Flag{Name: "seed", Value: d.Seed, Usage: "seed of every key, address and transaction", Category: "RUN"},
		&cli.StringFlag{Name: "geth", Usage: "geth binary of the end-to-end baseline (default: geth next to kestrel, then on PATH; `make geth` builds bin/geth)", Category: "E2E"},
		&cli.BoolFlag{Name: "no-geth", Usage: "run the end-to-end phase without the geth --dev baseline", Category: "E2E"},
		&cli.StringFlag{Name: "engine.workloads", Value: "all", Usage: "comma-separated engine workloads: " + engineWorkloadUsage, Category: "ENGINE"},
		&cli.IntFlag{Name: "engine.txs", Value: d.EngineTxs, Usage: "transactions per engine workload (scaling too)", Category: "ENGINE"},
		&cli.IntFlag{Name: "engine.block-txs", Value: d.EngineBlockTx, Usage: "transactions per block in the engine and scaling phases", Category: "ENGINE"},
		&cli.IntFlag{Name: "engine.runs", Value: d.EngineRuns, Usage: "runs of every engine (and scaling point); medians are reported", Category: "ENGINE"},
		&cli.StringFlag{Name: "scaling.workload", Value: string(d.ScalingKind), Usage: "engine workload of the scaling curve", Category: "ENGINE"},
		&cli.StringFlag{Name: "scaling.cores", Usage: "comma-separated core counts of the scaling curve (default 1, 2, 4 … all cores)", Category: "ENGINE"},
		&cli.StringFlag{Name: "e2e.workloads", Value: "eth,erc20", Usage: "comma-separated end-to-end workloads (engine workload names)", Category: "E2E"},
		&cli.IntFlag{Name: "e2e.txs", Value: d.E2E.Txs, Usage: "transactions per closed-loop run", Category: "E2E"},
		&cli.IntFlag{Name: "e2e.senders", Value: d.E2E.Senders, Usage: "sending accounts (funded in both genesis files)", Category: "E2E"},
		&cli.IntFlag{Name: "e2e.rate", Value: d.E2E.Rate, Usage: "open-loop eth_sendRawTransactionSync rate, tx/s (0: skip the latency phase)", Category: "E2E"},
		&cli.DurationFlag{Name: "e2e.duration", Value: d.E2E.Duration, Usage: "length of the open-loop phase", Category: "E2E"},
		&cli.IntFlag{Name: "e2e.runs", Value: d.E2E.Runs, Usage: "runs of the end-to-end phase per workload; medians are reported", Category: "E2E"},
		&cli.IntFlag{Name: "e2e.replicas", Value: d.E2E.Replicas, Usage: "replicas following the sequencer in the end-to-end phase", Category: "E2E"},
		&cli.StringFlag{Name: "e2e.cpuprofile", Usage: "write a CPU profile of the bench process (sequencer, replicas, stream, load generator) during each workload's first Kestrel closed loop to FILE-WORKLOAD", Category: "E2E"},
		&cli.IntFlag{Name: "memory.accounts", Value: d.MemoryAccounts, Usage: "funded accounts of the memory-per-account figure", Category: "MEMORY"},
		&cli.StringFlag{Name: "datadir", Usage: "parent directory of the nodes' data (default: the system temp dir; use a real disk)", Category: "RUN"},
		&cli.StringFlag{Name: "log-level", Value: "error", Usage: "log level of the in-process nodes (debug, info, warn, error)", Category: "RUN"},
	})
}

// suiteOptions reads the flags; --quick changes the defaults of the flags not
// given.
func suiteOptions(c *cli.Context) (bench.SuiteOptions, error) {
	o := bench.DefaultSuiteOptions(c.Bool("quick"))
	var err error
	if o.Phases, err = bench.ParsePhases(c.String("phases")); err != nil {
		return o, fmt.Errorf("--phases: %w", err)
	}
	o.Seed = c.Uint64("seed")
	if o.EngineKinds, err = parseKindList(c.String("engine.workloads")); err != nil {
		return o, fmt.Errorf("--engine.workloads: %w", err)
	}
	if o.E2E.Kinds, err = parseKindList(c.String("e2e.workloads")); err != nil {
		return o, fmt.Errorf("--e2e.workloads: %w", err)
	}
	scaling, err := bench.ParseEngineKinds(c.String("scaling.workload"))
	if err != nil || len(scaling) != 1 {
		return o, fmt.Errorf("--scaling.workload: want one engine workload, not %q", c.String("scaling.workload"))
	}
	o.ScalingKind = scaling[0]
	if s := c.String("scaling.cores"); s != "" {
		o.Cores = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n > 1024 {
				return o, fmt.Errorf("--scaling.cores: %q is not a core count (1..1024)", f)
			}
			o.Cores = append(o.Cores, n)
		}
		slices.Sort(o.Cores)
		o.Cores = slices.Compact(o.Cores)
	}
	set := func(name string, dst *int) {
		if c.IsSet(name) {
			*dst = c.Int(name)
		}
	}
	set("engine.txs", &o.EngineTxs)
	set("engine.block-txs", &o.EngineBlockTx)
	set("engine.runs", &o.EngineRuns)
	set("e2e.txs", &o.E2E.Txs)
	set("e2e.senders", &o.E2E.Senders)
	set("e2e.rate", &o.E2E.Rate)
	set("e2e.runs", &o.E2E.Runs)
	set("e2e.replicas", &o.E2E.Replicas)
	set("memory.accounts", &o.MemoryAccounts)
	if o.E2E.Profile = c.String("e2e.cpuprofile"); o.E2E.Profile != "" {
		// Checked now, not after the phases before the end-to-end one have run.
		if fi, err := os.Stat(filepath.Dir(o.E2E.Profile)); err != nil || !fi.IsDir() {
			return o, fmt.Errorf("--e2e.cpuprofile: %s is not a directory", filepath.Dir(o.E2E.Profile))
		}
	}
	if c.IsSet("e2e.duration") {
		o.E2E.Duration = c.Duration("e2e.duration")
	}
	switch {
	case o.EngineTxs < 1 || o.EngineBlockTx < 1 || o.EngineRuns < 1:
		return o, errors.New("--engine.txs, --engine.block-txs and --engine.runs must be positive")
	case o.E2E.Txs < 1 || o.E2E.Senders < 1 || o.E2E.Runs < 1:
		return o, errors.New("--e2e.txs, --e2e.senders and --e2e.runs must be positive")
	case o.E2E.Rate < 0 || o.E2E.Replicas < 0 || o.E2E.Replicas > 8:
		return o, errors.New("--e2e.rate must not be negative and --e2e.replicas must be 0..8")
	case o.E2E.Rate > 0 && o.E2E.Duration <= 0:
		return o, errors.New("--e2e.duration must be positive")
	case o.MemoryAccounts < 1:
		return o, errors.New("--memory.accounts must be positive")
	}
	if o.Dir, err = benchDataDir("datadir", c.String("datadir")); err != nil {
		return o, err
	}
	if slices.Contains(o.Phases, bench.PhaseE2E) && !c.Bool("no-geth") {
		if o.E2E.Geth, err = bench.FindGeth(c.String("geth")); err != nil {
			return o, fmt.Errorf("%w (or run with --no-geth)", err)
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return o, fmt.Errorf("--log-level: %w", err)
	}
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	return o, nil
}

// parseKindList parses comma-separated engine workload names (or "all").
func parseKindList(s string) ([]bench.Kind, error) {
	var out []bench.Kind
	for _, f := range strings.Split(s, ",") {
		ks, err := bench.ParseEngineKinds(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		for _, k := range ks {
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	return out, nil
}

func runSuite(c *cli.Context) error {
	if err := benchPreamble(c); err != nil {
		return err
	}
	o, err := suiteOptions(c)
	if err != nil {
		return err
	}
	out := c.String("out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	errw := c.App.ErrWriter
	tty := false
	if f, ok := errw.(*os.File); ok {
		tty = bench.IsTerminal(f)
	}
	o.Progress = bench.NewLiveProgress(errw, tty, len(o.Phases))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, runErr := bench.RunSuite(ctx, o)
	o.Progress.Close()
	// Whatever was measured is written, also after an error or Ctrl-C.
	if err := rep.WriteFiles(out); err != nil {
		return errors.Join(runErr, fmt.Errorf("write report: %w", err))
	}
	fmt.Fprintf(errw, "Report written to %s/report.md and %s/report.json (%d plots)\n", out, out, len(rep.Plots))
	if runErr != nil {
		return runErr
	}
	fmt.Fprintln(c.App.Writer)
	rep.WriteTable(c.App.Writer)
	return nil
}

func compareCommand() *cli.Command {
	return &cli.Command{
		Name:      "compare",
		Usage:     "compare the figures of two `kestrel bench` reports",
		ArgsUsage: "A.json B.json",
		Description: "Prints every headline figure both reports have, A's and B's value and the change from A to B,\n" +
			"marked better or worse by the figure's direction (≈ within 5%).",
		Action: func(c *cli.Context) error {
			if c.Args().Len() != 2 {
				return errors.New("want two report.json files: kestrel bench compare A.json B.json")
			}
			a, err := bench.ReadSuiteReport(c.Args().Get(0))
			if err != nil {
				return err
			}
			b, err := bench.ReadSuiteReport(c.Args().Get(1))
			if err != nil {
				return err
			}
			bench.WriteComparison(c.App.Writer, a, b, c.Args().Get(0), c.Args().Get(1))
			return nil
		},
	}
}

// benchDataDir creates the parent directory a bench keeps its nodes' data in
// (flag names it for the error); empty means the system temp dir.
func benchDataDir(flag, dir string) (string, error) {
	if dir == "" {
		return "", nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("--%s: %w", flag, err)
	}
	return dir, nil
}

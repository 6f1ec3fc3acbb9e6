package main

import (
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kestrel-l2/kestrel/core/statetest"
)

func statetestCommand() *cli.Command {
	return &cli.Command{
		Name:      "statetest",
		Usage:     "run Ethereum state tests (JSON files, directories, .tar.gz archives) through Kestrel's executor",
		ArgsUsage: "PATH...",
		Description: "Each post entry of each test runs on Kestrel's flat state and vm.StateDB; its state root (from\n" +
			"Kestrel's Merkle tries), logs hash and expected exception are compared with the fixture. Failing\n" +
			"entries are printed, then one line per fork: \"<Fork>: N passed, M failed\". The exit status is\n" +
			"non-zero if anything failed or a PATH is missing or unreadable.",
		Flags: withEnv([]cli.Flag{
			&cli.StringFlag{Name: "statetest.fork", Usage: "run only this fork's entries (case-insensitive; comma-separated for several)"},
			&cli.StringFlag{Name: "statetest.mode", Value: "sequential", Usage: "execution engine: sequential or parallel"},
		}),
		Action: runStatetest,
	}
}

func runStatetest(c *cli.Context) error {
	paths := c.Args().Slice()
	if len(paths) == 0 {
		return fmt.Errorf("no PATH given (a state test JSON file, a directory or a .tar.gz archive)")
	}
	mode, err := statetest.ParseMode(c.String("statetest.mode"))
	if err != nil {
		return fmt.Errorf("--statetest.mode: %w", err)
	}
	var forks []string
	for _, f := range strings.Split(c.String("statetest.fork"), ",") {
		if f = strings.TrimSpace(f); f != "" {
			forks = append(forks, f)
		}
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt)
	defer stop()

	start := time.Now()
	var failures []statetest.Result
	sum, err := statetest.Run(ctx, paths, statetest.Options{Forks: forks, Mode: mode}, func(r statetest.Result) {
		if !r.Passed {
			failures = append(failures, r)
		}
	})
	if err != nil {
		return err
	}
	sort.Slice(failures, func(i, j int) bool {
		a, b := &failures[i], &failures[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Fork != b.Fork {
			return a.Fork < b.Fork
		}
		return a.Index < b.Index
	})
	out := c.App.Writer
	for i := range failures {
		fmt.Fprintf(out, "FAIL %s: %v\n", failures[i].String(), failures[i].Err)
	}
	if sum.FileErrors > 0 {
		fmt.Fprintf(out, "%d fixture files or tests could not be read\n", sum.FileErrors)
	}
	if sum.Total() == 0 && sum.FileErrors == 0 {
		fmt.Fprintln(out, "no state test entries ran")
	}
	fmt.Fprintf(c.App.ErrWriter, "ran %d entries in %s (%s)\n", sum.Total(), time.Since(start).Round(time.Millisecond), mode)
	for _, line := range sum.Lines() {
		fmt.Fprintln(out, line)
	}
	if sum.Failed() > 0 || sum.Total() == 0 {
		return cli.Exit("", 1)
	}
	return nil
}

package statetest

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/kestrel-l2/kestrel/core/exec"
)

// Options configure Run.
type Options struct {
	// Forks selects the forks to run (case-insensitive); empty runs every fork
	// the fixtures have.
	Forks []string
	// Mode selects the execution engine.
	Mode Mode
	// Executor, when set, is used instead of Mode's engine (tests use it to
	// read an engine's counters).
	Executor exec.Executor
	// Workers is the number of goroutines; GOMAXPROCS when <= 0.
	Workers int
	// SelectFile, if not nil, picks the fixture files to run by name (called
	// from one goroutine, in walk order, for every fixture file).
	SelectFile func(name string) bool
	// PostCheck, if not nil, runs extra checks on an entry whose root, logs and
	// exception matched.
	PostCheck func(*Entry, *Outcome) error
}

// Result is the outcome of one post entry, or (Index -1) of a fixture file or
// test that could not be read or decoded.
type Result struct {
	File, Name, Fork string
	Index            int
	Indexes          Indexes
	Passed           bool
	Err              error
}

func (r *Result) String() string {
	switch {
	case r.Index >= 0:
		return fmt.Sprintf("%s :: %s [%s #%d d=%d g=%d v=%d]", r.File, r.Name, r.Fork, r.Index,
			r.Indexes.Data, r.Indexes.Gas, r.Indexes.Value)
	case r.Name != "":
		return fmt.Sprintf("%s :: %s [%s]", r.File, r.Name, r.Fork)
	}
	return r.File
}

// ForkSummary counts a fork's post entries.
type ForkSummary struct {
	Passed, Failed int
}

// Summary is the outcome of a run.
type Summary struct {
	// Forks counts the post entries by fork (canonical name). Every requested
	// fork is present, even when no fixture had entries for it.
	Forks map[string]*ForkSummary
	// FileErrors counts the fixture files and tests that could not be read or
	// decoded and so have no entries to count.
	FileErrors int
}

// Failed is the number of failed entries and unreadable files.
func (s *Summary) Failed() int {
	n := s.FileErrors
	for _, f := range s.Forks {
		n += f.Failed
	}
	return n
}

// Total is the number of entries run.
func (s *Summary) Total() int {
	n := 0
	for _, f := range s.Forks {
		n += f.Passed + f.Failed
	}
	return n
}

// ForkNames returns the forks in report order: Cancun, Prague, Osaka, then
// the others alphabetically.
func (s *Summary) ForkNames() []string {
	names := make([]string, 0, len(s.Forks))
	for f := range s.Forks {
		names = append(names, f)
	}
	SortForks(names)
	return names
}

// Lines returns one "Fork: N passed, M failed" line per fork, in report order.
func (s *Summary) Lines() []string {
	var lines []string
	for _, f := range s.ForkNames() {
		c := s.Forks[f]
		lines = append(lines, fmt.Sprintf("%s: %d passed, %d failed", f, c.Passed, c.Failed))
	}
	return lines
}

var forkOrder = map[string]int{"Cancun": 0, "Prague": 1, "Osaka": 2}

// SortForks sorts fork names in report order: Cancun, Prague, Osaka, then the
// others alphabetically.
func SortForks(forks []string) {
	sort.Slice(forks, func(i, j int) bool {
		oi, iok := forkOrder[forks[i]]
		oj, jok := forkOrder[forks[j]]
		switch {
		case iok && jok:
			return oi < oj
		case iok != jok:
			return iok
		}
		return forks[i] < forks[j]
	})
}

// Run runs the state tests under paths (JSON files, directories searched
// recursively for *.json, .tar.gz archives) and calls report, serially, with
// every result. It returns an error, before running anything, for an unknown
// fork or mode, or a missing or unreadable path, and
// otherwise only when ctx is cancelled; failures and malformed fixtures are
// results.
func Run(ctx context.Context, paths []string, opts Options, report func(Result)) (*Summary, error) {
	x := opts.Executor
	var err error
	if x == nil {
		if x, err = opts.Mode.Executor(); err != nil {
			return nil, err
		}
	}
	sum := &Summary{Forks: make(map[string]*ForkSummary)}
	forks := make([]string, 0, len(opts.Forks))
	for _, f := range opts.Forks {
		_, name, err := ForkConfig(f)
		if err != nil {
			return nil, err
		}
		forks = append(forks, name)
		sum.Forks[name] = &ForkSummary{}
	}
	if err := CheckPaths(paths); err != nil {
		return nil, err
	}
	if report == nil {
		report = func(Result) {}
	}
	var mu sync.Mutex
	record := func(r Result) {
		mu.Lock()
		defer mu.Unlock()
		if r.Fork != "" {
			if _, name, err := ForkConfig(r.Fork); err == nil {
				r.Fork = name
			}
			c := sum.Forks[r.Fork]
			if c == nil {
				c = &ForkSummary{}
				sum.Forks[r.Fork] = c
			}
			if r.Passed {
				c.Passed++
			} else {
				c.Failed++
			}
		} else {
			sum.FileErrors++
		}
		report(r)
	}
	err = ForEach(ctx, paths, forks, opts.Workers, opts.SelectFile, func(g *Group) {
		if g.Err != nil {
			record(Result{File: g.File, Name: g.Name, Fork: g.Fork, Index: -1, Err: g.Err})
			return
		}
		if _, _, err := ForkConfig(g.Fork); err != nil {
			record(Result{File: g.File, Name: g.Name, Fork: g.Fork, Index: -1, Err: err})
			return
		}
		for i, p := range g.Posts {
			if ctx.Err() != nil {
				return
			}
			e := &Entry{File: g.File, Name: g.Name, Fork: g.Fork, Index: i, Test: g.Test, Post: p}
			err := e.Check(x, opts.PostCheck)
			record(Result{File: g.File, Name: g.Name, Fork: g.Fork, Index: i, Indexes: p.Indexes, Passed: err == nil, Err: err})
		}
	})
	if err != nil {
		return sum, err
	}
	return sum, nil
}

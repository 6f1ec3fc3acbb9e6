package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kestrel-l2/kestrel/bench"
)

// TestBenchSuiteCommand runs `kestrel bench` with its memory phase only on a
// tiny state, then compares the report with itself through `kestrel bench
// compare`.
func TestBenchSuiteCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "results")
	app := newApp()
	var stdout, stderr bytes.Buffer
	app.Writer, app.ErrWriter = &stdout, &stderr
	datadir := filepath.Join(t.TempDir(), "not", "yet")
	if err := app.Run([]string{"kestrel", "bench", "--quick", "--phases", "memory", "--memory.accounts", "1000", "--out", out, "--datadir", datadir}); err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, stderr.String())
	}
	if st, err := os.Stat(datadir); err != nil || !st.IsDir() {
		t.Fatalf("--datadir %s was not created: %v", datadir, err)
	}
	rep, err := bench.ReadSuiteReport(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Memory == nil || rep.Memory.Accounts != 1000 || !rep.Quick || len(rep.Figures) != 1 {
		t.Fatalf("report %+v", rep)
	}
	if md, err := os.ReadFile(filepath.Join(out, "report.md")); err != nil || !strings.Contains(string(md), "memory per funded account at 1000 accounts") {
		t.Fatalf("report.md: %v\n%s", err, md)
	}
	if !strings.Contains(stdout.String(), "memory per funded account") || !strings.Contains(stderr.String(), "Report written to") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}

	app = newApp()
	stdout.Reset()
	app.Writer = &stdout
	path := filepath.Join(out, "report.json")
	if err := app.Run([]string{"kestrel", "bench", "compare", path, path}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "memory per funded account") || !strings.Contains(stdout.String(), "+0.0%") {
		t.Fatalf("compare output:\n%s", stdout.String())
	}

	notJSON := filepath.Join(t.TempDir(), "x.json")
	os.WriteFile(notJSON, []byte("{"), 0o644)
	for _, args := range [][]string{
		{"bench", "compare", path},
		{"bench", "compare", path, notJSON},
		{"bench", "compare", path, filepath.Join(t.TempDir(), "missing.json")},
		{"bench", "--phases", "memory,disk"},
		{"bench", "--phases", "engine", "--engine.workloads", "eth,bogus"},
		{"bench", "--phases", "scaling", "--scaling.cores", "1,0"},
		{"bench", "--phases", "scaling", "--scaling.workload", "all"},
		{"bench", "--phases", "e2e", "--geth", filepath.Join(t.TempDir(), "no-geth")},
		{"bench", "--phases", "e2e", "--no-geth", "--e2e.txs", "0"},
		{"bench", "--phases", "e2e", "--no-geth", "--e2e.cpuprofile", filepath.Join(path, "under-a-file", "cpu")},
		{"bench", "--phases", "memory", "--memory.accounts", "0"},
		{"bench", "--phases", "memory", "--log-level", "loud"},
		{"bench", "stray"},
		{"bench", "--phases", "memory", "--datadir", filepath.Join(path, "under-a-file")},
	} {
		app := newApp()
		app.Writer, app.ErrWriter = &bytes.Buffer{}, &bytes.Buffer{}
		if err := app.Run(append([]string{"kestrel"}, args...)); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}

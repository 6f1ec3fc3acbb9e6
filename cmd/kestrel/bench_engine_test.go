package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/kestrel-l2/kestrel/bench"
)

// TestSubcommandFlagsHaveOneEnvVar extends TestFlagsHaveOneEnvVar to nested
// commands (`kestrel bench engine`): unique names and exactly one environment
// variable, KESTREL_ plus the name.
func TestSubcommandFlagsHaveOneEnvVar(t *testing.T) {
	var walk func(path string, cmds []*cli.Command)
	walk = func(path string, cmds []*cli.Command) {
		for _, cmd := range cmds {
			name := strings.TrimSpace(path + " " + cmd.Name)
			seen := make(map[string]bool)
			for _, f := range cmd.Flags {
				for _, n := range f.Names() {
					if seen[n] {
						t.Errorf("%s: flag --%s defined twice", name, n)
					}
					seen[n] = true
				}
				ev, ok := f.(interface{ GetEnvVars() []string })
				if !ok {
					t.Errorf("%s: flag --%s has no env vars", name, f.Names()[0])
					continue
				}
				if envs := ev.GetEnvVars(); len(envs) != 1 || envs[0] != envVar(f.Names()[0]) {
					t.Errorf("%s: flag --%s env vars %v, want [%s]", name, f.Names()[0], envs, envVar(f.Names()[0]))
				}
			}
			walk(name, cmd.Subcommands)
		}
	}
	app := newApp()
	walk("", app.Commands)
	found := false
	for _, cmd := range app.Commands {
		if cmd.Name == "bench" {
			found = cmd.Command("engine") != nil
		}
	}
	if !found {
		t.Fatal("no `bench engine` command")
	}
}

var engineLineRE = regexp.MustCompile(`^engine (\S+): kestrel (\d+) tx/s, geth (\d+) tx/s, ratio (\d+\.\d\d)$`)

// TestBenchEngineCommand runs `kestrel bench engine` on a tiny workload, the
// workload chosen through its environment variable: the last line has the
// issue's form with Z = X/Y, and the JSON report parses.
func TestBenchEngineCommand(t *testing.T) {
	t.Setenv("KESTREL_WORKLOAD", "hotswap")
	jsonPath := filepath.Join(t.TempDir(), "engine.json")
	app := newApp()
	var stdout, stderr bytes.Buffer
	app.Writer, app.ErrWriter = &stdout, &stderr
	args := []string{"kestrel", "bench", "engine", "--txs", "80", "--block-txs", "40", "--runs", "1", "--json", jsonPath}
	if err := app.Run(args); err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, stderr.String())
	}
	last := lastLine(stdout.String())
	m := engineLineRE.FindStringSubmatch(last)
	if m == nil || m[1] != "hotswap" || strings.Count(stdout.String(), "\nengine ") != 1 {
		t.Fatalf("output:\n%s", stdout.String())
	}
	x, _ := strconv.ParseFloat(m[2], 64)
	y, _ := strconv.ParseFloat(m[3], 64)
	z, _ := strconv.ParseFloat(m[4], 64)
	if y <= 0 || z < x/y-0.0051-x/y*1e-3 || z > x/y+0.0051+x/y*1e-3 {
		t.Fatalf("%q: ratio %v but X/Y = %v", last, z, x/y)
	}
	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.EngineReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Workloads) != 1 || rep.Workloads[0].Workload != "hotswap" || rep.Workloads[0].Txs != 80 || rep.Workloads[0].Blocks != 2 ||
		rep.Settings.Runs != 1 || rep.Machine.NumCPU < 1 {
		t.Fatalf("JSON report %s", raw)
	}
	if got := rep.Lines()[0]; got != last {
		t.Fatalf("JSON report's line %q, printed %q", got, last)
	}

	if err := newApp().Run([]string{"kestrel", "bench", "engine", "--workload", "swap"}); err == nil {
		t.Fatal("unknown workload accepted")
	}
}

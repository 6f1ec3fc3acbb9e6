package main

import (
	"testing"

	"github.com/urfave/cli/v2"
)

// TestFlagsHaveOneEnvVar checks every flag of every command: unique names, and
// exactly one environment variable, KESTREL_ plus the name.
func TestFlagsHaveOneEnvVar(t *testing.T) {
	app := newApp()
	for _, cmd := range app.Commands {
		seen := make(map[string]bool)
		for _, f := range cmd.Flags {
			for _, name := range f.Names() {
				if seen[name] {
					t.Errorf("%s: flag --%s defined twice", cmd.Name, name)
				}
				seen[name] = true
			}
			ev, ok := f.(interface{ GetEnvVars() []string })
			if !ok {
				t.Errorf("%s: flag --%s has no env vars", cmd.Name, f.Names()[0])
				continue
			}
			envs := ev.GetEnvVars()
			if len(envs) != 1 || envs[0] != envVar(f.Names()[0]) {
				t.Errorf("%s: flag --%s env vars %v, want [%s]", cmd.Name, f.Names()[0], envs, envVar(f.Names()[0]))
			}
		}
	}
}

func TestEnvVarName(t *testing.T) {
	for name, want := range map[string]string{"datadir": "KESTREL_DATADIR", "http.addr": "KESTREL_HTTP_ADDR",
		"sequencer.mini-block-interval": "KESTREL_SEQUENCER_MINI_BLOCK_INTERVAL"} {
		if got := envVar(name); got != want {
			t.Errorf("envVar(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestEnvVarConfiguresSequencer sets a flag through its environment variable.
func TestEnvVarConfiguresSequencer(t *testing.T) {
	t.Setenv("KESTREL_HTTP_ADDR", "127.0.0.1:9999")
	t.Setenv("KESTREL_DATADIR", "/tmp/kestrel-env-test")
	var got string
	var dir string
	app := &cli.App{Commands: []*cli.Command{{Name: "sequencer", Flags: sequencerFlags(defaultDataDir()), Action: func(c *cli.Context) error {
		cfg, err := sequencerConfig(c)
		got, dir = cfg.RPC.Addr, cfg.DataDir
		return err
	}}}}
	if err := app.Run([]string{"kestrel", "sequencer"}); err != nil {
		t.Fatal(err)
	}
	if got != "127.0.0.1:9999" || dir != "/tmp/kestrel-env-test" {
		t.Fatalf("addr %q dir %q", got, dir)
	}
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/kestrel-l2/kestrel/core/statetest"
)

const statetestArchive = "../../core/exec/testdata/ethereum-state-tests.tar.gz"

// statetestPraguePosts is the number of Prague post entries in the vendored
// archive (see /work/shared/fixtures/README.md).
const statetestPraguePosts = 7088

// lastLine returns out's last non-empty line.
func lastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestStatetestCommandPrague runs every Prague entry of the vendored archive
// through the command (a few seconds on two cores, so also in -short mode).
func TestStatetestCommandPrague(t *testing.T) {
	out, err := runMain(t, "statetest", "--statetest.fork", "Prague", statetestArchive)
	if err != nil {
		t.Fatalf("statetest: %v\n%s", err, out)
	}
	if got, want := lastLine(out), fmt.Sprintf("Prague: %d passed, 0 failed", statetestPraguePosts); got != want {
		t.Fatalf("last line %q, want %q\n%s", got, want, out)
	}
	if strings.Contains(out, "FAIL") {
		t.Fatalf("failures printed:\n%s", out)
	}
}

// TestStatetestCommandFull runs every fork (make test-full).
func TestStatetestCommandFull(t *testing.T) {
	if os.Getenv("KESTREL_STATE_TESTS") != "full" {
		t.Skip("KESTREL_STATE_TESTS=full runs every fork")
	}
	out, err := runMain(t, "statetest", statetestArchive)
	if err != nil {
		t.Fatalf("statetest: %v\n%s", err, out)
	}
	// The archive also has entries of older forks (Frontier to Shanghai); they
	// follow, alphabetically.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{"Cancun: 5993 passed, 0 failed", "Prague: 7088 passed, 0 failed", "Osaka: 7793 passed, 0 failed"}
	i := len(lines) - 1
	for i >= 0 && strings.Contains(lines[i], " passed, ") {
		i--
	}
	summary := lines[i+1:]
	if len(summary) < len(want) || strings.Join(summary[:3], "\n") != strings.Join(want, "\n") {
		t.Fatalf("summary:\n%s", out)
	}
	for _, l := range summary {
		if !strings.HasSuffix(l, " 0 failed") {
			t.Errorf("%s", l)
		}
	}
}

// TestStatetestCommandFailure corrupts one expected root of a fixture file.
func TestStatetestCommandFailure(t *testing.T) {
	var name string
	var raw []byte
	stop := errors.New("stop")
	statetest.Walk(context.Background(), []string{statetestArchive}, func(n string, body func() ([]byte, error)) error {
		b, err := body()
		if err == nil && strings.Contains(string(b), `"Prague"`) {
			name, raw = n, b
			return stop
		}
		return err
	})
	if raw == nil {
		t.Fatal("no fixture with Prague entries")
	}
	var tests map[string]struct {
		Post map[string][]struct {
			Hash common.Hash `json:"hash"`
		} `json:"post"`
	}
	if err := json.Unmarshal(raw, &tests); err != nil {
		t.Fatal(err)
	}
	var test string
	var posts int
	var root common.Hash
	for n, tc := range tests {
		if len(tc.Post["Prague"]) > 0 {
			test, root = n, tc.Post["Prague"][0].Hash
			break
		}
	}
	for _, tc := range tests {
		posts += len(tc.Post["Prague"])
	}
	// Corrupt every occurrence: exactly the entries with that root fail.
	bad := strings.ReplaceAll(string(raw), root.Hex()[2:], strings.Repeat("ab", 32))
	file := filepath.Join(t.TempDir(), "corrupted.json")
	if err := os.WriteFile(file, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runMain(t, "statetest", "--statetest.fork", "prague", file)
	if exitCode(err) != 1 {
		t.Fatalf("exit %v, want 1 (%s)\n%s", err, name, out)
	}
	if !strings.Contains(out, "FAIL "+file+" :: "+test+" [Prague #0") || !strings.Contains(out, "state root mismatch") {
		t.Fatalf("failing test %s not printed:\n%s", test, out)
	}
	last := lastLine(out)
	if !strings.HasPrefix(last, "Prague: ") || strings.HasSuffix(last, " 0 failed") || !strings.HasSuffix(last, " failed") {
		t.Fatalf("last line %q", last)
	}
	t.Logf("%s (%d Prague entries): %s", name, posts, last)
}

func TestStatetestCommandErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"statetest", filepath.Join(t.TempDir(), "missing.json")}, "no such file"},
		{[]string{"statetest"}, "no PATH given"},
		{[]string{"statetest", "--statetest.mode", "fast", statetestArchive}, "unknown mode"},
		{[]string{"statetest", "--statetest.fork", "Nope", statetestArchive}, "unknown fork"},
	} {
		out, err := runMain(t, tc.args...)
		if exitCode(err) == 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %v, want non-zero and %q in\n%s", tc.args, err, tc.want, out)
		}
	}
}

// TestFlagsRejectBadValues: a bad execution engine, RPC, stream or replica
// setting stops the node at start with a clear error.
func TestFlagsRejectBadValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"devnet", "--http.addr", "127.0.0.1:0", "--exec.mode", "fast"}, `unknown execution mode "fast"`},
		{[]string{"devnet", "--http.addr", "127.0.0.1:0", "--exec.workers", "-1"}, "execution workers must not be negative"},
		{[]string{"devnet", "--http.addr", "127.0.0.1:0", "--ws.max-queue", "-1"}, "rpc: negative WebSocket limit"},
		{[]string{"devnet", "--http.addr", "127.0.0.1:0", "--rpc.filter-timeout", "-1s"}, "rpc: negative FilterTimeout or MaxFilters"},
		{[]string{"devnet", "--http.addr", "127.0.0.1:0", "--rpc.max-concurrent", "-5"}, "rpc: negative MaxConcurrent"},
		{[]string{"devnet", "--http.addr", "127.0.0.1:0", "--stream.name", "a.b"}, `stream name "a.b" must be non-empty`},
		{[]string{"devnet", "--http.addr", "127.0.0.1:0", "--stream.max-bytes", "-1"}, "stream max bytes must not be negative"},
		{[]string{"devnet", "--http.addr", "127.0.0.1:0", "--stream.listen", "nowhere"}, `stream listen address "nowhere"`},
		{[]string{"devnet", "--http.addr", "127.0.0.1:0", "--devnet.replicas", "17"}, "--devnet.replicas must be between 0 and 16"},
		{[]string{"devnet", "--http.addr", "127.0.0.1:0", "--stream.disable"}, "devnet replicas need the diff stream"},
		{[]string{"replica", "--datadir", t.TempDir(), "--sequencer.address", "0x12"}, `--sequencer.address: "0x12" is not an address`},
		{[]string{"replica", "--datadir", t.TempDir(), "--stream.url", ""}, "the stream URL (--stream.url) is required"},
		{[]string{"replica", "--datadir", t.TempDir(), "--stream.window", "0"}, "the stream window must be positive"},
		{[]string{"replica", "--datadir", t.TempDir(), "--sequencer.rpc", ""}, "the sequencer's RPC URL (--sequencer.rpc) is required"},
		{[]string{"replica", "--datadir", ""}, "--datadir must not be empty"},
	} {
		out, err := runMain(t, tc.args...)
		if exitCode(err) == 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %v, want non-zero and %q in\n%s", tc.args, err, tc.want, out)
		}
	}
}

package statetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

const archive = "../exec/testdata/ethereum-state-tests.tar.gz"

// firstFixture returns the first fixture file of the vendored archive with
// Prague entries.
func firstFixture(t *testing.T) (string, []byte) {
	t.Helper()
	var name string
	var raw []byte
	stop := errors.New("stop")
	err := Walk(context.Background(), []string{archive}, func(n string, body func() ([]byte, error)) error {
		b, err := body()
		if err != nil {
			return err
		}
		if strings.Contains(string(b), `"Prague"`) {
			name, raw = n, b
			return stop
		}
		return nil
	})
	if err != stop {
		t.Fatalf("no fixture with Prague entries: %v", err)
	}
	return name, raw
}

func run(t *testing.T, paths []string, opts Options) (*Summary, []Result) {
	t.Helper()
	var results []Result
	sum, err := Run(context.Background(), paths, opts, func(r Result) { results = append(results, r) })
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return sum, results
}

func TestRunFixtureFileAndCorruptedRoot(t *testing.T) {
	name, raw := firstFixture(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "sub", "good.json")
	if err := os.MkdirAll(filepath.Dir(good), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	sum, _ := run(t, []string{good}, Options{Forks: []string{"prague"}})
	if sum.Failed() != 0 || sum.Forks["Prague"] == nil || sum.Forks["Prague"].Passed == 0 {
		t.Fatalf("%s: %v", name, sum.Lines())
	}
	passed := sum.Forks["Prague"].Passed

	// The same file through the directory walk.
	sum, _ = run(t, []string{dir}, Options{Forks: []string{"Prague"}})
	if got := sum.Lines(); len(got) != 1 || sum.Failed() != 0 || sum.Forks["Prague"].Passed != passed {
		t.Fatalf("directory run: %v", got)
	}

	// Corrupt the first expected root.
	tests, err := ParseFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	var root string
	for _, tc := range tests {
		posts, _ := tc.PostEntries("Prague")
		if len(posts) > 0 {
			root = common.Hash(posts[0].Root).Hex()
			break
		}
	}
	root = strings.TrimPrefix(root, "0x")
	bad := strings.Replace(string(raw), root, strings.Repeat("ab", 32), 1)
	if bad == string(raw) {
		t.Fatalf("root %s not found in fixture", root)
	}
	badFile := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(badFile, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	// The root may be another fork's first: run every fork, expect one failure.
	sum, results := run(t, []string{badFile}, Options{})
	if sum.Failed() != 1 {
		t.Fatalf("corrupted root: %v", sum.Lines())
	}
	for _, r := range results {
		if !r.Passed && (r.Err == nil || !strings.Contains(r.Err.Error(), "state root mismatch")) {
			t.Fatalf("failure %s: %v", r.String(), r.Err)
		}
	}
}

func TestMalformedFixtures(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"truncated.json":  `{"t": {"env": {`,
		"array.json":      `[1, 2, 3]`,
		"null.json":       `null`,
		"nulltest.json":   `{"t": null}`,
		"badpost.json":    `{"t": {"pre": {}, "post": {"Prague": {"hash": 1}}}}`,
		"nullpost.json":   `{"t": {"pre": {}, "post": {"Prague": [null]}}}`,
		"badindex.json":   `{"t": {"pre": {}, "transaction": {"data": [], "gasLimit": [], "value": []}, "post": {"Prague": [{"indexes": {"data": 5}}]}}}`,
		"badbalance.json": `{"t": {"pre": {"0x0000000000000000000000000000000000000001": {"balance": "0x10000000000000000000000000000000000000000000000000000000000000000"}}, "post": {"Prague": [{}]}}}`,
		"badfork.json":    `{"t": {"pre": {}, "post": {"NoSuchFork": [{}]}}}`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A corrupt archive.
	if err := os.WriteFile(filepath.Join(dir, "corrupt.tar.gz"), []byte("not gzip"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, results := run(t, []string{dir, filepath.Join(dir, "corrupt.tar.gz")}, Options{})
	if sum.Total()+sum.FileErrors != len(results) || len(results) != len(files)+1 {
		t.Fatalf("%d results for %d bad files: %v", len(results), len(files)+1, results)
	}
	for _, r := range results {
		if r.Passed || r.Err == nil {
			t.Errorf("%s: passed", r.String())
		}
		t.Logf("%s: %v", r.String(), r.Err)
	}
	if sum.Failed() != len(results) {
		t.Errorf("failed %d, want %d", sum.Failed(), len(results))
	}
}

func TestArchiveWithMalformedMember(t *testing.T) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	body := []byte(`{"t": `)
	tw.WriteHeader(&tar.Header{Name: "x/broken.json", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
	tw.Write(body)
	tw.Close()
	gz.Close()
	path := filepath.Join(t.TempDir(), "fixtures.tar.gz")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, results := run(t, []string{path}, Options{})
	if len(results) != 1 || results[0].File != "x/broken.json" || results[0].Err == nil || sum.FileErrors != 1 {
		t.Fatalf("results %v", results)
	}
}

func TestRunRejects(t *testing.T) {
	ctx := context.Background()
	if _, err := Run(ctx, []string{archive}, Options{Mode: Mode(7)}, nil); err == nil || !strings.Contains(err.Error(), "unknown mode") {
		t.Errorf("unknown mode: %v", err)
	}
	if _, err := Run(ctx, []string{archive}, Options{Forks: []string{"Nope"}}, nil); err == nil || !strings.Contains(err.Error(), "unknown fork") {
		t.Errorf("unknown fork: %v", err)
	}
	if _, err := Run(ctx, []string{"does/not/exist.json"}, Options{}, nil); err == nil {
		t.Error("missing path: no error")
	}
	if _, err := Run(ctx, nil, Options{}, nil); err == nil {
		t.Error("no path: no error")
	}
	if m, err := ParseMode("Parallel"); err != nil || m != Parallel {
		t.Errorf("ParseMode: %v %v", m, err)
	}
	if _, err := ParseMode("fast"); err == nil {
		t.Error("ParseMode(fast): no error")
	}
}

func TestSortForks(t *testing.T) {
	forks := []string{"Shanghai", "Osaka", "Berlin", "Prague", "Cancun"}
	SortForks(forks)
	if got := strings.Join(forks, ","); got != "Cancun,Prague,Osaka,Berlin,Shanghai" {
		t.Errorf("order %s", got)
	}
}

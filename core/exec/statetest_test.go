package exec_test

// Ethereum state tests (execution-spec-tests "state_test" fixtures) run, through
// package core/statetest (the runner behind `kestrel statetest`), against
// Kestrel's flat state, its vm.StateDB and its Merkle tries, following
// go-ethereum's tests/state_test_util.go: build the pre-state, execute the
// selected transaction with core.ApplyMessage, touch the coinbase with a zero
// value, finalise with EIP-158 and compare the state root and the logs hash with
// the fixture. The post-state is also committed to the flat state and compared,
// account by account, with the fixture's expected post state.
//
// The fixtures are vendored in testdata/ethereum-state-tests.tar.gz and streamed
// from the archive. By default a representative subset runs (every
// statetestShortStride-th file); KESTREL_STATE_TESTS=full runs every file.
// KESTREL_STATE_TESTS_FILTER=<substring> restricts the run to the files whose
// path contains the substring (with every file of the subset or full run).
//
// Companions: statetest_sequence_test.go replays the fixtures' transactions in
// sequences against go-ethereum's state.StateDB (cross-transaction and
// cross-mini-block state), statetest_statedb_test.go is a randomized
// differential test of the vm.StateDB interface against go-ethereum's, and
// statetest_regress_test.go holds regression tests for the bugs they found.
// The full run (all three) takes about two minutes on two cores.

import (
	"context"
	"fmt"
	"math/big"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/params"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/exec"
	"github.com/kestrel-l2/kestrel/core/state"
	"github.com/kestrel-l2/kestrel/core/statetest"
)

const (
	statetestArchive = "testdata/ethereum-state-tests.tar.gz"
	// statetestShortStride picks every n-th fixture file in the default run.
	statetestShortStride = 6
)

// statetestForks are the forks whose post entries run, in report order.
var statetestForks = []string{"Cancun", "Prague", "Osaka"}

// statetestUnsupported lists fixture files (path suffixes) skipped on purpose,
// with the reason. Keep it empty unless a category is unsupported by design.
var statetestUnsupported = map[string]string{}

// --- fixture format and runner: core/statetest -------------------------------

// The fixture types and the runner live in core/statetest (the `kestrel
// statetest` command runs the same code); the names below keep the companion
// tests' vocabulary.
type (
	statetestEnv  = statetest.Env
	statetestCase = statetest.Test
	statetestPost = statetest.PostEntry
)

// statetestBlock is the block a test's transactions execute in.
type statetestBlock struct {
	ctx      vm.BlockContext
	baseFee  *big.Int
	gasLimit uint64
}

func statetestBlockEnv(config *params.ChainConfig, env *statetestEnv) *statetestBlock {
	b := statetest.BlockEnv(config, env)
	return &statetestBlock{ctx: b.Context, baseFee: b.BaseFee, gasLimit: b.GasLimit}
}

func statetestPreState(alloc types.GenesisAlloc) (*state.State, *chain.StateDiff, error) {
	return statetest.PreState(alloc)
}

func statetestRLPHash(x any) common.Hash { return statetest.RLPHash(x) }

func TestStateTests(t *testing.T) { statetestRun(t, exec.Sequential{}) }

// TestStateTestsParallel runs the fixtures through the Block-STM engine, each
// transaction a one-transaction request that Block-STM runs (forced mode):
// the per-transaction StateDB, the multi-version memory and the diff built
// from the final write sets must reproduce every expected root.
func TestStateTestsParallel(t *testing.T) {
	p := exec.NewParallel(exec.ParallelConfig{Mode: exec.ModeParallel})
	sum := statetestRun(t, p)
	st := p.Stats()
	t.Logf("parallel engine: %+v", st)
	// Requests whose gas limit exceeds the block's fall back, by design (the
	// gas pool could refuse them); nothing else may.
	if st.Fallbacks != 0 {
		t.Errorf("%d requests fell back to the sequential engine: %v", st.Fallbacks, p.LastFallbackError())
	}
	if st.ParallelRequests == 0 || st.ParallelRequests < uint64(sum.Total())*9/10 {
		t.Errorf("only %d of %d entries ran in parallel mode", st.ParallelRequests, sum.Total())
	}
}

func statetestRun(t *testing.T, x exec.Executor) *statetest.Summary {
	start := time.Now()
	var (
		mu       sync.Mutex
		failures []string
	)
	sel := statetestSelector(t)
	sum, err := statetest.Run(context.Background(), []string{statetestArchive}, statetest.Options{
		Forks:      statetestForks,
		Executor:   x,
		SelectFile: sel.selectFile,
		PostCheck:  statetestCheckFlat,
	}, func(r statetest.Result) {
		if r.Passed {
			return
		}
		mu.Lock()
		failures = append(failures, fmt.Sprintf("%s: %v", r.String(), r.Err))
		mu.Unlock()
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Logf("%s run: %d of %d fixture files, %s", statetestMode(), sel.selected, sel.files, time.Since(start).Round(time.Millisecond))
	for _, line := range sum.Lines() {
		t.Log(line)
	}
	if sum.Total() == 0 {
		t.Fatal("no state test entries ran")
	}
	statetestReport(t, failures)
	return sum
}

// statetestCheckFlat commits the post diff to the flat state and compares it
// with the expected post state, first through the unflattened layer, then
// through the base maps.
func statetestCheckFlat(e *statetest.Entry, out *statetest.Outcome) error {
	st := out.State
	st.Commit(2, out.Diff)
	view := st.View()
	err := statetestCheckReader(view, e.Post.State)
	view.Release()
	out.Pinned.Release()
	if err != nil {
		return fmt.Errorf("flat state (layer): %w", err)
	}
	if err := statetestCheckDump(st, e.Post.State); err != nil {
		return fmt.Errorf("flat state (base): %w", err)
	}
	return nil
}

func statetestMode() string {
	if os.Getenv("KESTREL_STATE_TESTS") == "full" {
		return "full"
	}
	return "short"
}

// statetestReport fails t with the (sorted, capped) failures.
func statetestReport(t *testing.T, failures []string) {
	sort.Strings(failures)
	const maxReported = 100
	for i, msg := range failures {
		if i == maxReported {
			t.Errorf("... and %d more failures", len(failures)-maxReported)
			break
		}
		t.Error(msg)
	}
}

// statetestSelection picks the fixture files of the short or full run and of
// KESTREL_STATE_TESTS_FILTER, and counts them.
type statetestSelection struct {
	t               *testing.T
	full            bool
	filter          string
	selected, files int
}

func statetestSelector(t *testing.T) *statetestSelection {
	return &statetestSelection{t: t, full: statetestMode() == "full", filter: os.Getenv("KESTREL_STATE_TESTS_FILTER")}
}

func (s *statetestSelection) selectFile(path string) bool {
	s.files++
	if !s.full && (s.files-1)%statetestShortStride != 0 {
		return false
	}
	if s.filter != "" && !strings.Contains(path, s.filter) {
		return false
	}
	for suffix, reason := range statetestUnsupported {
		if strings.HasSuffix(path, suffix) {
			s.t.Logf("skipping %s: %s", path, reason)
			return false
		}
	}
	s.selected++
	return true
}

// statetestForEach streams the selected fixture files and calls fn, from
// GOMAXPROCS goroutines, for every test and fork of statetestForks it holds. It
// returns how many fixture files were selected and how many there are.
func statetestForEach(t *testing.T, fn func(path, name, fork string, tc *statetestCase, posts []*statetestPost)) (selected, files int) {
	sel := statetestSelector(t)
	var (
		mu      sync.Mutex
		decErrs []string
	)
	err := statetest.ForEach(context.Background(), []string{statetestArchive}, statetestForks, 0, sel.selectFile, func(g *statetest.Group) {
		if g.Err != nil {
			mu.Lock()
			decErrs = append(decErrs, fmt.Sprintf("%s %s %s: %v", g.File, g.Name, g.Fork, g.Err))
			mu.Unlock()
			return
		}
		fn(g.File, g.Name, g.Fork, g.Test, g.Posts)
	})
	if err != nil {
		t.Fatalf("read fixtures: %v", err)
	}
	if len(decErrs) > 0 {
		t.Fatalf("read fixtures: %s", strings.Join(decErrs, "; "))
	}
	return sel.selected, sel.files
}

// --- post-state checks --------------------------------------------------------

// statetestCheckReader reads every expected account and slot through r.
func statetestCheckReader(r state.Reader, want types.GenesisAlloc) error {
	for addr, w := range want {
		acct, ok := r.Account(addr)
		if !ok {
			return fmt.Errorf("%s: missing", addr)
		}
		if err := statetest.CompareAccount(addr, w, acct.Nonce, &acct.Balance, r.Code(acct.CodeHash), acct.CodeHash); err != nil {
			return err
		}
		slots := statetest.NonZero(w.Storage)
		for k, v := range w.Storage {
			if got := r.Storage(addr, k); got != v {
				return fmt.Errorf("%s: slot %x = %x, want %x", addr, k, got, v)
			}
		}
		if r.HasStorage(addr) != (len(slots) > 0) {
			return fmt.Errorf("%s: HasStorage %v, want %v", addr, r.HasStorage(addr), len(slots) > 0)
		}
	}
	return nil
}

// statetestCheckDump compares the whole flat state with the expected post state.
func statetestCheckDump(st *state.State, want types.GenesisAlloc) error {
	seen := 0
	v := st.View()
	defer v.Release()
	err := v.Dump(func(addr common.Address, acct *state.Account, code []byte, storage map[common.Hash]common.Hash) error {
		w, ok := want[addr]
		if !ok {
			return fmt.Errorf("%s: exists, want absent", addr)
		}
		seen++
		if err := statetest.CompareAccount(addr, w, acct.Nonce, &acct.Balance, code, acct.CodeHash); err != nil {
			return err
		}
		slots := statetest.NonZero(w.Storage)
		if len(storage) != len(slots) {
			return fmt.Errorf("%s: %d slots, want %d", addr, len(storage), len(slots))
		}
		for k, v := range slots {
			if storage[k] != v {
				return fmt.Errorf("%s: slot %x = %x, want %x", addr, k, storage[k], v)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if seen != len(want) {
		return fmt.Errorf("%d accounts, want %d", seen, len(want))
	}
	return nil
}

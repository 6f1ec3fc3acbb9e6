package bench

import (
	"fmt"
	"runtime"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/rawdb"
	gstate "github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/triedb"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/state"
	"github.com/kestrel-l2/kestrel/internal/memstat"
)

// MemoryResult is the memory-per-account figure: the Go heap a node's state
// needs for Accounts funded accounts (flat state and Merkle trie, built the way
// a sequencer builds its genesis state), against go-ethereum's state for the
// same accounts (a StateDB committed into an in-memory trie database and
// key-value store, the hash scheme).
type MemoryResult struct {
	Accounts int `json:"accounts"`
	// KestrelBytes and GethBytes are the live heap growth (after GC) of each.
	KestrelBytes uint64 `json:"kestrelBytes"`
	GethBytes    uint64 `json:"gethBytes"`
	// Per account.
	KestrelPerAccount float64 `json:"kestrelBytesPerAccount"`
	GethPerAccount    float64 `json:"gethBytesPerAccount"`
	// KestrelBuild and GethBuild are the time each took to build (and hash).
	KestrelBuild time.Duration `json:"kestrelBuildNs"`
	GethBuild    time.Duration `json:"gethBuildNs"`
	// KestrelRoot and GethRoot must be equal.
	KestrelRoot common.Hash `json:"kestrelRoot"`
	GethRoot    common.Hash `json:"gethRoot"`
}

// memoryAccount is account i of the memory figure: an address derived from
// the seed, funded with 1 ETH plus i wei.
func memoryAccount(seed uint64, i int) (common.Address, *uint256.Int) {
	return RecipientAddress(seed+0x6d656d, i), uint256.NewInt(1e18 + uint64(i))
}

// MeasureMemory builds the state of n funded accounts in Kestrel's flat state
// and trie, then in go-ethereum's, measuring each one's live heap.
func MeasureMemory(n int, seed uint64) (*MemoryResult, error) {
	if n < 1 {
		return nil, fmt.Errorf("memory: account count must be positive")
	}
	res := &MemoryResult{Accounts: n}
	var err error
	if res.KestrelBytes, res.KestrelBuild, res.KestrelRoot, err = measureHeap(func() (any, common.Hash, error) { return kestrelState(n, seed) }); err != nil {
		return nil, err
	}
	if res.GethBytes, res.GethBuild, res.GethRoot, err = measureHeap(func() (any, common.Hash, error) { return gethState(n, seed) }); err != nil {
		return nil, err
	}
	res.KestrelPerAccount = float64(res.KestrelBytes) / float64(n)
	res.GethPerAccount = float64(res.GethBytes) / float64(n)
	if res.KestrelRoot != res.GethRoot {
		return res, fmt.Errorf("memory: state roots differ: kestrel %s, geth %s", res.KestrelRoot, res.GethRoot)
	}
	return res, nil
}

// measureHeap runs build and returns the live heap what it built holds, its
// time and the root it built. The heap held is the larger of two readings: the
// growth from before the build to after it, and the drop when the built state
// is released. Either alone can read low (to zero) when garbage from
// elsewhere in the process is collected between the readings; the two are
// taken at different moments, so both are seldom disturbed together.
func measureHeap(build func() (any, common.Hash, error)) (uint64, time.Duration, common.Hash, error) {
	base := memstat.LiveHeap()
	start := time.Now()
	keep, root, err := build()
	if err != nil {
		return 0, 0, root, err
	}
	elapsed := time.Since(start)
	held := memstat.LiveHeap()
	runtime.KeepAlive(keep)
	keep = nil
	released := memstat.LiveHeap()
	var grown, dropped uint64
	if held > base {
		grown = held - base
	}
	if held > released {
		dropped = held - released
	}
	return max(grown, dropped), elapsed, root, nil
}

// kestrelState builds the accounts' state as a sequencer does at genesis: one
// diff committed to the flat state and applied to the trie. The diff itself
// is garbage once both hold the state.
func kestrelState(n int, seed uint64) (any, common.Hash, error) {
	diff := &chain.StateDiff{Accounts: make([]chain.AccountDiff, n)}
	for i := range n {
		addr, bal := memoryAccount(seed, i)
		diff.Accounts[i] = chain.AccountDiff{Address: addr, Balance: *bal, CodeHash: types.EmptyCodeHash}
	}
	diff.Sort()
	st := state.New()
	st.Commit(0, diff)
	m := state.NewMerkle(1)
	root, err := m.Apply(0, diff)
	if err != nil {
		return nil, common.Hash{}, fmt.Errorf("memory: kestrel root: %w", err)
	}
	return []any{st, m}, root, nil
}

// gethState builds the same accounts in a go-ethereum StateDB and commits it
// to an in-memory database (hash scheme), as a geth node holding the state in
// memory would.
func gethState(n int, seed uint64) (any, common.Hash, error) {
	db := rawdb.NewMemoryDatabase()
	tdb := triedb.NewDatabase(db, triedb.HashDefaults)
	sdb, err := gstate.New(types.EmptyRootHash, gstate.NewDatabase(tdb, nil))
	if err != nil {
		return nil, common.Hash{}, err
	}
	for i := range n {
		addr, bal := memoryAccount(seed, i)
		sdb.SetBalance(addr, bal, tracing.BalanceChangeUnspecified)
	}
	root, err := sdb.Commit(0, true, false)
	if err != nil {
		return nil, common.Hash{}, fmt.Errorf("memory: geth commit: %w", err)
	}
	if err := tdb.Commit(root, false); err != nil {
		return nil, common.Hash{}, fmt.Errorf("memory: geth trie commit: %w", err)
	}
	return []any{db, tdb}, root, nil
}

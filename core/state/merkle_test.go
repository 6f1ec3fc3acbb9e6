package state

import (
	"math/rand"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/rawdb"
	gstate "github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/triedb"

	"github.com/kestrel-l2/kestrel/core/chain"
)

// gethRoot computes the state root of a model with go-ethereum's own StateDB.
func gethRoot(t *testing.T, m *model) common.Hash {
	t.Helper()
	db := gstate.NewDatabase(triedb.NewDatabase(rawdb.NewMemoryDatabase(), nil), nil)
	sdb, err := gstate.New(types.EmptyRootHash, db)
	if err != nil {
		t.Fatal(err)
	}
	for addr, a := range m.accounts {
		sdb.CreateAccount(addr)
		sdb.SetNonce(addr, a.Nonce, tracing.NonceChangeUnspecified)
		bal := a.Balance
		sdb.SetBalance(addr, &bal, tracing.BalanceChangeUnspecified)
		for k, v := range m.storage[addr] {
			sdb.SetState(addr, k, v)
		}
	}
	return sdb.IntermediateRoot(true)
}

// TestMerkleRootMatchesGoEthereum folds random block diffs into the tries and
// compares every root with go-ethereum's StateDB over the same state; it also
// checks account proofs against the roots.
func TestMerkleRootMatchesGoEthereum(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	mk := NewMerkle(4)
	inc := NewMerkle(4) // the same blocks folded one mini-block diff at a time
	m := &model{accounts: map[common.Address]Account{}, storage: map[common.Address]map[common.Hash]common.Hash{}}
	for block := uint64(1); block <= 60; block++ {
		var diffs []*chain.StateDiff
		for i := 0; i < 1+rng.Intn(3); i++ {
			d := randomStateDiff(rng)
			// Go-ethereum drops empty accounts (EIP-161); so does Kestrel's executor.
			for j := range d.Accounts {
				if !d.Accounts[j].Deleted && d.Accounts[j].Nonce == 0 {
					d.Accounts[j].Nonce = 1
				}
			}
			m.apply(d)
			diffs = append(diffs, d)
		}
		root, err := mk.Apply(block, chain.MergeDiffs(diffs))
		if err != nil {
			t.Fatal(err)
		}
		b, err := inc.Begin()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range diffs {
			if err := b.Add(d); err != nil {
				t.Fatal(err)
			}
		}
		incRoot, err := b.Commit(block)
		if err != nil || incRoot != root {
			t.Fatalf("block %d: incremental root %s, merged %s (%v)", block, incRoot, root, err)
		}
		if want := gethRoot(t, m); root != want {
			t.Fatalf("block %d: root %s, go-ethereum %s", block, root, want)
		}
		for _, addr := range testAddrs {
			p, err := mk.Proof(root, addr, testKeys)
			if err != nil {
				t.Fatal(err)
			}
			acct, err := VerifyAccountProof(root, addr, p.AccountProof)
			if err != nil {
				t.Fatalf("proof of %s: %v", addr, err)
			}
			if _, exists := m.accounts[addr]; exists != (acct != nil) {
				t.Fatalf("proof of %s: existence %v", addr, acct != nil)
			}
			r, err := mk.Reader(root, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, k := range testKeys {
				if got := r.Storage(addr, k); got != m.storage[addr][k] || p.Storage[i].Value != got {
					t.Fatalf("slot %s/%s via trie %s, proof %s, want %s", addr, k, got, p.Storage[i].Value, m.storage[addr][k])
				}
			}
		}
	}
	// Old roots beyond the retention are gone.
	if _, err := mk.Reader(common.Hash{1}, nil); err != ErrRootUnavailable {
		t.Fatalf("unknown root: %v", err)
	}
}

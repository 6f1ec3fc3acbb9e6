package state

import (
	"math/rand"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/core/chain"
)

// model is a plain map copy of the state at one index.
type model struct {
	accounts map[common.Address]Account
	storage  map[common.Address]map[common.Hash]common.Hash
}

func (m *model) clone() *model {
	c := &model{accounts: map[common.Address]Account{}, storage: map[common.Address]map[common.Hash]common.Hash{}}
	for a, v := range m.accounts {
		c.accounts[a] = v
	}
	for a, st := range m.storage {
		c.storage[a] = map[common.Hash]common.Hash{}
		for k, v := range st {
			c.storage[a][k] = v
		}
	}
	return c
}

func (m *model) apply(d *chain.StateDiff) {
	for _, a := range d.Accounts {
		if a.StorageReset || a.Deleted {
			delete(m.storage, a.Address)
		}
		if a.Deleted {
			delete(m.accounts, a.Address)
			continue
		}
		m.accounts[a.Address] = Account{Nonce: a.Nonce, Balance: a.Balance, CodeHash: a.CodeHash}
		for _, s := range a.Storage {
			if m.storage[a.Address] == nil {
				m.storage[a.Address] = map[common.Hash]common.Hash{}
			}
			if s.Value == (common.Hash{}) {
				delete(m.storage[a.Address], s.Key)
			} else {
				m.storage[a.Address][s.Key] = s.Value
			}
		}
	}
}

var (
	testAddrs = []common.Address{{1}, {2}, {3}, {4}}
	testKeys  = []common.Hash{{1}, {2}, {3}}
)

func randomStateDiff(rng *rand.Rand) *chain.StateDiff {
	d := &chain.StateDiff{}
	for _, addr := range testAddrs {
		if rng.Intn(2) == 0 {
			continue
		}
		if rng.Intn(8) == 0 {
			d.Accounts = append(d.Accounts, chain.AccountDiff{Address: addr, Deleted: true, StorageReset: true})
			continue
		}
		a := chain.AccountDiff{Address: addr, Nonce: uint64(rng.Intn(100)), Balance: *uint256.NewInt(uint64(rng.Intn(1000))),
			CodeHash: types.EmptyCodeHash, StorageReset: rng.Intn(10) == 0}
		for _, k := range testKeys {
			if rng.Intn(2) == 0 {
				a.Storage = append(a.Storage, chain.SlotDiff{Key: k, Value: common.Hash{byte(rng.Intn(3))}})
			}
		}
		d.Accounts = append(d.Accounts, a)
	}
	d.Sort()
	return d
}

func checkView(t *testing.T, v *View, m *model) {
	t.Helper()
	for _, addr := range testAddrs {
		got, ok := v.Account(addr)
		want, wok := m.accounts[addr]
		if ok != wok || got != want {
			t.Fatalf("view %d: account %s = %+v,%v want %+v,%v", v.Index(), addr, got, ok, want, wok)
		}
		for _, k := range testKeys {
			if got, want := v.Storage(addr, k), m.storage[addr][k]; got != want {
				t.Fatalf("view %d: slot %s/%s = %s want %s", v.Index(), addr, k, got, want)
			}
		}
		if got, want := v.HasStorage(addr), len(m.storage[addr]) > 0; got != want {
			t.Fatalf("view %d: HasStorage(%s) = %v want %v", v.Index(), addr, got, want)
		}
	}
}

// TestViewsStayConsistent commits random diffs while views taken at earlier
// mini-blocks keep answering with the state of their own mini-block.
func TestViewsStayConsistent(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	s := New()
	m := &model{accounts: map[common.Address]Account{}, storage: map[common.Address]map[common.Hash]common.Hash{}}
	type held struct {
		v *View
		m *model
	}
	var views []held
	for i := uint64(1); i <= 2000; i++ {
		d := randomStateDiff(rng)
		s.Commit(i, d)
		m.apply(d)
		checkView(t, s.Head(), m)
		if rng.Intn(5) == 0 {
			views = append(views, held{s.View(), m.clone()})
		}
		for j := 0; j < len(views); j++ {
			checkView(t, views[j].v, views[j].m)
			if rng.Intn(4) == 0 {
				views[j].v.Release()
				views = append(views[:j], views[j+1:]...)
				j--
			}
		}
	}
	// A view dumps exactly its own version, even while more is committed.
	dumped := s.View()
	want := m.clone()
	s.Commit(2001, randomStateDiff(rng))
	checkDump(t, dumped, want)
	dumped.Release()
	for _, h := range views {
		checkDump(t, h.v, h.m)
		h.v.Release()
	}
	s.Commit(2002, &chain.StateDiff{})
	if st := s.Stats(); st.Layers != 0 {
		t.Fatalf("%d layers left after every view was released", st.Layers)
	}
}

func checkDump(t *testing.T, v *View, m *model) {
	t.Helper()
	n := 0
	err := v.Dump(func(addr common.Address, acct *Account, code []byte, storage map[common.Hash]common.Hash) error {
		n++
		if *acct != m.accounts[addr] || len(storage) != len(m.storage[addr]) {
			t.Fatalf("dump of view %d: %s differs", v.Index(), addr)
		}
		for k, val := range storage {
			if m.storage[addr][k] != val {
				t.Fatalf("dump of view %d: slot %s/%s differs", v.Index(), addr, k)
			}
		}
		return nil
	})
	if err != nil || n != len(m.accounts) {
		t.Fatalf("view %d dumped %d accounts, want %d (%v)", v.Index(), n, len(m.accounts), err)
	}
}

// TestConcurrentReaders runs readers on views while the writer commits; run it
// with -race.
func TestConcurrentReaders(t *testing.T) {
	s := New()
	rng := rand.New(rand.NewSource(2))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				v := s.View()
				// Every account of one view has the same nonce: each diff sets all of
				// them to the mini-block index.
				var first uint64
				for i, addr := range testAddrs {
					a, _ := v.Account(addr)
					if i == 0 {
						first = a.Nonce
					} else if a.Nonce != first {
						t.Errorf("torn view %d: nonces %d and %d", v.Index(), first, a.Nonce)
					}
					_ = v.Storage(addr, testKeys[0])
				}
				v.Release()
			}
		}()
	}
	for i := uint64(1); i <= 3000; i++ {
		d := &chain.StateDiff{}
		for _, addr := range testAddrs {
			d.Accounts = append(d.Accounts, chain.AccountDiff{Address: addr, Nonce: i, CodeHash: types.EmptyCodeHash,
				Storage: []chain.SlotDiff{{Key: testKeys[0], Value: common.Hash{byte(rng.Intn(255) + 1)}}}})
		}
		s.Commit(i, d)
	}
	close(stop)
	wg.Wait()
}

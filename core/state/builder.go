package state

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/trie"
	"github.com/ethereum/go-ethereum/trie/trienode"

	"github.com/kestrel-l2/kestrel/core/chain"
)

// Apply folds one block's diff into the tries and returns the new state root:
// Begin, Add and Commit in one call.
func (m *Merkle) Apply(block uint64, d *chain.StateDiff) (common.Hash, error) {
	b, err := m.Begin()
	if err != nil {
		return common.Hash{}, err
	}
	if err := b.Add(d); err != nil {
		return common.Hash{}, err
	}
	return b.Commit(block)
}

// Builder folds the mini-block diffs of one block into the tries as they arrive,
// so that most trie work is spread over the block instead of landing at its
// close: account and slot updates happen in Add, and Commit only hashes what is
// dirty. A Builder is used by one goroutine, and only one Builder may be open at
// a time; Commit ends it.
type Builder struct {
	m      *Merkle
	parent common.Hash
	tr     *trie.StateTrie // the account trie being updated
	store  map[common.Address]*storageState
	accts  map[common.Address]*types.StateAccount // accounts whose storage root is due at Commit
}

type storageState struct {
	root  common.Hash     // storage root before this block's writes (empty after a reset)
	tr    *trie.StateTrie // opened on the first write
	dirty bool
}

// Begin starts a block on top of the newest root.
func (m *Merkle) Begin() (*Builder, error) {
	parent := m.Root()
	tr, err := trie.NewStateTrie(trie.StateTrieID(parent), m.db)
	if err != nil {
		return nil, fmt.Errorf("open account trie: %w", err)
	}
	return &Builder{m: m, parent: parent, tr: tr, store: make(map[common.Address]*storageState),
		accts: make(map[common.Address]*types.StateAccount)}, nil
}

// storage returns the storage state of addr, reading its root at the parent.
// The first call for an address comes before any write to it, so the trie
// being updated still holds the parent's account; reading it there also leaves
// the path resolved in memory for the update that follows.
func (b *Builder) storage(addr common.Address) (*storageState, error) {
	if st, ok := b.store[addr]; ok {
		return st, nil
	}
	st := &storageState{root: types.EmptyRootHash}
	prev, err := b.tr.GetAccount(addr)
	if err != nil {
		return nil, fmt.Errorf("read account %s: %w", addr, err)
	}
	if prev != nil {
		st.root = prev.Root
	}
	b.store[addr] = st
	return st, nil
}

// Add folds one mini-block's diff (or any diff following the previous ones).
func (b *Builder) Add(d *chain.StateDiff) error {
	for i := range d.Accounts {
		ad := &d.Accounts[i]
		st, err := b.storage(ad.Address)
		if err != nil {
			return err
		}
		if ad.Deleted || ad.StorageReset {
			*st = storageState{root: types.EmptyRootHash}
		}
		if ad.Deleted {
			delete(b.accts, ad.Address)
			if err := b.tr.DeleteAccount(ad.Address); err != nil {
				return err
			}
			continue
		}
		if len(ad.Storage) > 0 {
			if st.tr == nil {
				id := trie.StorageTrieID(b.parent, crypto.Keccak256Hash(ad.Address[:]), st.root)
				if st.tr, err = trie.NewStateTrie(id, b.m.db); err != nil {
					return fmt.Errorf("open storage trie of %s: %w", ad.Address, err)
				}
			}
			for _, s := range ad.Storage {
				if s.Value == (common.Hash{}) {
					err = st.tr.DeleteStorage(ad.Address, s.Key[:])
				} else {
					err = st.tr.UpdateStorage(ad.Address, s.Key[:], common.TrimLeftZeroes(s.Value[:]))
				}
				if err != nil {
					return fmt.Errorf("update storage of %s: %w", ad.Address, err)
				}
			}
			st.dirty = true
		}
		bal := ad.Balance
		acct := &types.StateAccount{Nonce: ad.Nonce, Balance: &bal, Root: st.root, CodeHash: ad.CodeHash.Bytes()}
		if st.dirty {
			// The storage root is known only once the storage trie is hashed.
			b.accts[ad.Address] = acct
			continue
		}
		delete(b.accts, ad.Address)
		if err := b.tr.UpdateAccount(ad.Address, acct, 0); err != nil {
			return err
		}
	}
	return nil
}

// Commit hashes the dirty storage tries (in parallel), finishes the accounts
// that waited for their storage roots, hashes the account trie and records the
// new root as the newest.
func (b *Builder) Commit(block uint64) (common.Hash, error) {
	type job struct {
		addr common.Address
		st   *storageState
		root common.Hash
		set  *trienode.NodeSet
	}
	var jobs []*job
	for addr, st := range b.store {
		if st.dirty {
			jobs = append(jobs, &job{addr: addr, st: st})
		}
	}
	work := make(chan *job)
	var wg sync.WaitGroup
	for w := 0; w < min(runtime.GOMAXPROCS(0), len(jobs)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				j.root, j.set = j.st.tr.Commit(false)
			}
		}()
	}
	for _, j := range jobs {
		work <- j
	}
	close(work)
	wg.Wait()
	merged := trienode.NewMergedNodeSet()
	for _, j := range jobs {
		if j.set != nil {
			if err := merged.Merge(j.set); err != nil {
				return common.Hash{}, err
			}
		}
		if acct, ok := b.accts[j.addr]; ok {
			acct.Root = j.root
			if err := b.tr.UpdateAccount(j.addr, acct, 0); err != nil {
				return common.Hash{}, err
			}
		}
	}
	root, set := b.tr.Commit(true)
	if set != nil {
		if err := merged.Merge(set); err != nil {
			return common.Hash{}, err
		}
	}
	m := b.m
	if root != b.parent {
		if err := m.db.update(merged); err != nil {
			return common.Hash{}, fmt.Errorf("update trie database: %w", err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.root != b.parent {
		return common.Hash{}, fmt.Errorf("trie root moved from %s to %s while block %d was built", b.parent, m.root, block)
	}
	m.db.reference(root)
	m.roots = append(m.roots, root)
	for len(m.roots) > m.retain {
		m.db.dereference(m.roots[0])
		m.roots = m.roots[1:]
	}
	m.root = root
	return root, nil
}

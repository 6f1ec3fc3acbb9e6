// Package state keeps Kestrel's world state: flat maps in RAM that are the source
// of truth for execution, versioned by mini-block so that readers see one
// consistent mini-block while the next executes, and the Merkle-Patricia trie
// beside them for block roots and proofs.
//
// Concurrency: one writer (the goroutine that executes and commits mini-blocks)
// and any number of readers. The writer reads through Head without locks; readers
// take a View, which pins the mini-block it was taken at until Release.
package state

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/core/chain"
)

// Account is an account's flat record. A zero CodeHash is never stored: accounts
// without code carry types.EmptyCodeHash.
type Account struct {
	Nonce    uint64
	Balance  uint256.Int
	CodeHash common.Hash
}

// Reader reads one consistent version of the state. Implementations are not
// required to be safe for concurrent use unless they say so.
type Reader interface {
	// Account returns the account and whether it exists.
	Account(addr common.Address) (Account, bool)
	// Storage returns a slot's value (zero when unset).
	Storage(addr common.Address, key common.Hash) common.Hash
	// Code returns the code with the given hash (nil when unknown or empty).
	Code(hash common.Hash) []byte
	// HasStorage reports whether the account has any non-zero slot.
	HasStorage(addr common.Address) bool
}

// layer is one committed mini-block's diff, indexed for lookups.
type layer struct {
	index    uint64
	accounts map[common.Address]*layerAccount
	code     map[common.Hash][]byte
}

type layerAccount struct {
	deleted      bool
	storageReset bool
	acct         Account
	storage      map[common.Hash]common.Hash
}

func newLayer(index uint64, d *chain.StateDiff) *layer {
	l := &layer{index: index, accounts: make(map[common.Address]*layerAccount, len(d.Accounts))}
	for i := range d.Accounts {
		a := &d.Accounts[i]
		la := &layerAccount{deleted: a.Deleted, storageReset: a.StorageReset || a.Deleted,
			acct: Account{Nonce: a.Nonce, Balance: a.Balance, CodeHash: a.CodeHash}}
		if len(a.Storage) > 0 {
			la.storage = make(map[common.Hash]common.Hash, len(a.Storage))
			for _, s := range a.Storage {
				la.storage[s.Key] = s.Value
			}
		}
		if a.Code != nil {
			if l.code == nil {
				l.code = make(map[common.Hash][]byte)
			}
			l.code[a.CodeHash] = a.Code
		}
		l.accounts[a.Address] = la
	}
	return l
}

// flatAccount is an account as the base table keeps it: the code hash is
// interned, so that an account with its address fills a 72-byte slot and holds
// no pointer.
type flatAccount struct {
	Nonce   uint64
	Balance uint256.Int
	code    uint32
}

// pack interns the account's code hash; the writer holds mu (or no reader
// exists yet).
func (s *State) pack(a Account) flatAccount {
	id, ok := s.codeIDs[a.CodeHash]
	if !ok {
		id = uint32(len(s.codeHashes))
		s.codeHashes = append(s.codeHashes, a.CodeHash)
		s.codeIDs[a.CodeHash] = id
	}
	return flatAccount{Nonce: a.Nonce, Balance: a.Balance, code: id}
}

// unpack is pack's inverse; the caller holds mu either way.
func (s *State) unpack(a flatAccount) Account {
	return Account{Nonce: a.Nonce, Balance: a.Balance, CodeHash: s.codeHashes[a.code]}
}

// State is the flat, mini-block-versioned world state.
type State struct {
	// mu guards the base maps against the flattener; readers other than the writer
	// hold it shared for each lookup.
	mu       sync.RWMutex
	accounts *table[common.Address, flatAccount]
	// codeHashes interns the accounts' code hashes (flatAccount.code indexes
	// it; 0 is the empty code); codeIDs is its inverse.
	codeHashes []common.Hash
	codeIDs    map[common.Hash]uint32
	storage    map[common.Address]map[common.Hash]common.Hash
	code       map[common.Hash][]byte
	baseIndex  uint64 // the mini-block the base maps reflect

	// layers are committed mini-blocks not yet folded into the base, oldest first.
	// The slice is replaced, never mutated in place, so views may keep it.
	layers atomic.Pointer[[]*layer]
	head   atomic.Uint64

	pinMu sync.Mutex
	pins  map[uint64]int // mini-block index -> live views pinned there
}

// New returns an empty state at mini-block index 0.
func New() *State {
	s := &State{
		accounts:   newTable[common.Address, flatAccount](),
		codeHashes: []common.Hash{types.EmptyCodeHash},
		codeIDs:    map[common.Hash]uint32{types.EmptyCodeHash: 0},
		storage:    make(map[common.Address]map[common.Hash]common.Hash),
		code:       make(map[common.Hash][]byte),
		pins:       make(map[uint64]int),
	}
	empty := []*layer{}
	s.layers.Store(&empty)
	return s
}

// HeadIndex is the newest committed mini-block index.
func (s *State) HeadIndex() uint64 { return s.head.Load() }

// Commit adds a mini-block's diff as the new head. Only the writer calls it; index
// must be HeadIndex()+1 (or any larger value when restoring). Readers see the new
// head from their next View on.
func (s *State) Commit(index uint64, d *chain.StateDiff) {
	l := newLayer(index, d)
	old := *s.layers.Load()
	next := make([]*layer, len(old)+1)
	copy(next, old)
	next[len(old)] = l
	s.layers.Store(&next)
	s.head.Store(index)
	s.flatten()
}

// flatten folds layers into the base maps up to the oldest pinned view. A view
// stays correct while the base does not move past its own index (see View).
func (s *State) flatten() {
	s.pinMu.Lock()
	limit := uint64(math.MaxUint64)
	for idx := range s.pins {
		if idx < limit {
			limit = idx
		}
	}
	s.pinMu.Unlock()
	layers := *s.layers.Load()
	n := 0
	for n < len(layers) && layers[n].index <= limit {
		n++
	}
	if n == 0 {
		return
	}
	// A long reader (a snapshot) may hold the lock; skip and try after the next
	// mini-block rather than stall execution.
	if !s.mu.TryLock() {
		return
	}
	for _, l := range layers[:n] {
		s.applyLocked(l)
	}
	rest := make([]*layer, len(layers)-n)
	copy(rest, layers[n:])
	s.layers.Store(&rest)
	s.mu.Unlock()
}

func (s *State) applyLocked(l *layer) {
	for h, c := range l.code {
		s.code[h] = c
	}
	for addr, la := range l.accounts {
		if la.storageReset {
			delete(s.storage, addr)
		}
		if la.deleted {
			s.accounts.Delete(addr)
			continue
		}
		s.accounts.Put(addr, s.pack(la.acct))
		if len(la.storage) > 0 {
			st := s.storage[addr]
			if st == nil {
				st = make(map[common.Hash]common.Hash, len(la.storage))
				s.storage[addr] = st
			}
			for k, v := range la.storage {
				if v == (common.Hash{}) {
					delete(st, k)
				} else {
					st[k] = v
				}
			}
			if len(st) == 0 {
				delete(s.storage, addr)
			}
		}
	}
	s.baseIndex = l.index
}

// View is a consistent read-only version of the state at one mini-block. It is
// safe for concurrent use. Release it when done: a live view keeps newer
// mini-blocks from being folded into the base.
type View struct {
	s      *State
	index  uint64
	layers []*layer
	locked bool // lock the base for each read (false only for the writer's Head)
	once   sync.Once
}

// View pins and returns the newest committed version.
func (s *State) View() *View {
	s.pinMu.Lock()
	idx := s.head.Load()
	layers := *s.layers.Load()
	s.pins[idx]++
	s.pinMu.Unlock()
	return &View{s: s, index: idx, layers: layers, locked: true}
}

// Head returns the newest version for the writer goroutine only: it takes no lock
// and no pin, which is safe because only the writer flattens.
func (s *State) Head() *View {
	return &View{s: s, index: s.head.Load(), layers: *s.layers.Load()}
}

// Release unpins the view. Reads after Release are not allowed.
func (v *View) Release() {
	if !v.locked {
		return
	}
	v.once.Do(func() {
		v.s.pinMu.Lock()
		if v.s.pins[v.index]--; v.s.pins[v.index] <= 0 {
			delete(v.s.pins, v.index)
		}
		v.s.pinMu.Unlock()
	})
}

// Index is the mini-block this view shows.
func (v *View) Index() uint64 { return v.index }

// Account implements Reader.
func (v *View) Account(addr common.Address) (Account, bool) {
	for i := len(v.layers) - 1; i >= 0; i-- {
		if la, ok := v.layers[i].accounts[addr]; ok {
			if la.deleted {
				return Account{}, false
			}
			return la.acct, true
		}
	}
	if v.locked {
		v.s.mu.RLock()
		defer v.s.mu.RUnlock()
	}
	if a, ok := v.s.accounts.Get(addr); ok {
		return v.s.unpack(a), true
	}
	return Account{}, false
}

// Storage implements Reader.
func (v *View) Storage(addr common.Address, key common.Hash) common.Hash {
	for i := len(v.layers) - 1; i >= 0; i-- {
		if la, ok := v.layers[i].accounts[addr]; ok {
			if val, ok := la.storage[key]; ok {
				return val
			}
			if la.storageReset {
				return common.Hash{}
			}
		}
	}
	if v.locked {
		v.s.mu.RLock()
		defer v.s.mu.RUnlock()
	}
	return v.s.storage[addr][key]
}

// HasStorage implements Reader.
func (v *View) HasStorage(addr common.Address) bool {
	for i := len(v.layers) - 1; i >= 0; i-- {
		if la, ok := v.layers[i].accounts[addr]; ok {
			for _, val := range la.storage {
				if val != (common.Hash{}) {
					return true
				}
			}
			if la.storageReset {
				return false
			}
			// Slots set to zero here may have emptied the base; check it below
			// while ignoring the slots this layer cleared.
			if v.baseHasStorageExcept(addr, v.layers[:i+1]) {
				return true
			}
			return false
		}
	}
	if v.locked {
		v.s.mu.RLock()
		defer v.s.mu.RUnlock()
	}
	return len(v.s.storage[addr]) > 0
}

// baseHasStorageExcept reports whether some slot of addr is non-zero once the
// given layers' writes are taken into account.
func (v *View) baseHasStorageExcept(addr common.Address, layers []*layer) bool {
	if v.locked {
		v.s.mu.RLock()
		defer v.s.mu.RUnlock()
	}
	for k := range v.s.storage[addr] {
		if v.storageInLayers(addr, k, layers) != (common.Hash{}) {
			return true
		}
	}
	// Non-zero slots written by older layers that the base does not have yet.
	for i := len(layers) - 1; i >= 0; i-- {
		la, ok := layers[i].accounts[addr]
		if !ok {
			continue
		}
		for k := range la.storage {
			if v.storageInLayers(addr, k, layers) != (common.Hash{}) {
				return true
			}
		}
		if la.storageReset {
			break
		}
	}
	return false
}

func (v *View) storageInLayers(addr common.Address, key common.Hash, layers []*layer) common.Hash {
	for i := len(layers) - 1; i >= 0; i-- {
		if la, ok := layers[i].accounts[addr]; ok {
			if val, ok := la.storage[key]; ok {
				return val
			}
			if la.storageReset {
				return common.Hash{}
			}
		}
	}
	return v.s.storage[addr][key]
}

// Code implements Reader.
func (v *View) Code(hash common.Hash) []byte {
	if hash == types.EmptyCodeHash || hash == (common.Hash{}) {
		return nil
	}
	for i := len(v.layers) - 1; i >= 0; i-- {
		if c, ok := v.layers[i].code[hash]; ok {
			return c
		}
	}
	if v.locked {
		v.s.mu.RLock()
		defer v.s.mu.RUnlock()
	}
	return v.s.code[hash]
}

// Dump calls fn for every account of the view with its code and its non-zero
// storage, in no particular order. It may run for a long time on any goroutine:
// it holds the base maps' read lock throughout, so the writer skips folding
// layers meanwhile (execution and other readers go on). fn must not keep the
// storage map, and must not use this State.
func (v *View) Dump(fn func(addr common.Address, acct *Account, code []byte, storage map[common.Hash]common.Hash) error) error {
	// Fold the view's layers, oldest first, into one overlay.
	type over struct {
		deleted bool
		reset   bool
		acct    Account
		slots   map[common.Hash]common.Hash
	}
	overlay := make(map[common.Address]*over)
	codes := make(map[common.Hash][]byte)
	for _, l := range v.layers {
		for h, c := range l.code {
			codes[h] = c
		}
		for addr, la := range l.accounts {
			o := overlay[addr]
			if o == nil {
				o = &over{}
				overlay[addr] = o
			}
			if la.storageReset {
				o.reset, o.slots = true, nil
			}
			o.deleted, o.acct = la.deleted, la.acct
			for k, val := range la.storage {
				if o.slots == nil {
					o.slots = make(map[common.Hash]common.Hash)
				}
				o.slots[k] = val
			}
		}
	}
	s := v.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	codeOf := func(h common.Hash) []byte {
		if c, ok := codes[h]; ok {
			return c
		}
		return s.code[h]
	}
	var err error
	s.accounts.Range(func(addr common.Address, fa *flatAccount) bool {
		if _, ok := overlay[addr]; ok {
			return true
		}
		a := s.unpack(*fa)
		err = fn(addr, &a, codeOf(a.CodeHash), s.storage[addr])
		return err == nil
	})
	if err != nil {
		return err
	}
	for addr, o := range overlay {
		if o.deleted {
			continue
		}
		storage := make(map[common.Hash]common.Hash)
		if !o.reset {
			for k, val := range s.storage[addr] {
				storage[k] = val
			}
		}
		for k, val := range o.slots {
			if val == (common.Hash{}) {
				delete(storage, k)
			} else {
				storage[k] = val
			}
		}
		a := o.acct
		if err := fn(addr, &a, codeOf(a.CodeHash), storage); err != nil {
			return err
		}
	}
	return nil
}

// Restore loads an account into the base maps when the state is rebuilt from a
// snapshot, before any reader exists.
func (s *State) Restore(addr common.Address, acct Account, code []byte, storage map[common.Hash]common.Hash) {
	if acct.CodeHash == (common.Hash{}) {
		acct.CodeHash = types.EmptyCodeHash
	}
	s.accounts.Put(addr, s.pack(acct))
	if len(code) > 0 {
		s.code[crypto.Keccak256Hash(code)] = code
	}
	if len(storage) > 0 {
		s.storage[addr] = storage
	}
}

// SetIndex sets the mini-block index of a state rebuilt from a snapshot.
func (s *State) SetIndex(index uint64) {
	s.baseIndex = index
	s.head.Store(index)
}

// Stats are sizes of the flat state.
type Stats struct {
	Accounts, StorageSlots, Codes, Layers int
}

// Stats counts the base maps; writer goroutine only.
func (s *State) Stats() Stats {
	st := Stats{Accounts: s.accounts.Len(), Codes: len(s.code), Layers: len(*s.layers.Load())}
	for _, m := range s.storage {
		st.StorageSlots += len(m)
	}
	return st
}

package state

import (
	"errors"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/trie"
	"github.com/holiman/uint256"
)

// ErrRootUnavailable is returned for a state root the trie database no longer keeps.
var ErrRootUnavailable = errors.New("state root not available")

// Merkle keeps the Merkle-Patricia tries of the state beside the flat maps, in
// memory, with go-ethereum's trie package over a compact, reference-counted node
// store (nodeStore). It folds
// one block's diff at a time (Apply) and keeps the roots of the newest Retain
// blocks readable for proofs and historical reads.
//
// Apply is called by one goroutine at a time; reads may run concurrently with it.
type Merkle struct {
	db     *nodeStore
	retain int

	mu    sync.Mutex
	root  common.Hash
	roots []common.Hash // referenced roots, oldest first
}

// NewMerkle returns an empty trie set that keeps the newest retain roots.
func NewMerkle(retain int) *Merkle {
	if retain < 1 {
		retain = 1
	}
	return &Merkle{db: newNodeStore(defaultChunkSize), retain: retain, root: types.EmptyRootHash}
}

// Root is the newest root.
func (m *Merkle) Root() common.Hash {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.root
}

func (m *Merkle) available(root common.Hash) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if root == m.root {
		return true
	}
	for _, r := range m.roots {
		if r == root {
			return true
		}
	}
	return false
}

func (m *Merkle) openAccounts(root common.Hash) (*trie.StateTrie, error) {
	if !m.available(root) {
		return nil, ErrRootUnavailable
	}
	return trie.NewStateTrie(trie.StateTrieID(root), m.db)
}

// TrieReader reads the state at a retained root. It implements Reader and is safe
// for concurrent use; lookups walk the tries, so it is slower than a View.
type TrieReader struct {
	m    *Merkle
	root common.Hash
	mu   sync.Mutex
	tr   *trie.StateTrie
	code func(common.Hash) []byte
}

// Reader returns a reader of the state at root; code is looked up with code
// (contract code is kept by hash in the flat state, never in the tries).
func (m *Merkle) Reader(root common.Hash, code func(common.Hash) []byte) (*TrieReader, error) {
	tr, err := m.openAccounts(root)
	if err != nil {
		return nil, err
	}
	return &TrieReader{m: m, root: root, tr: tr, code: code}, nil
}

func (r *TrieReader) account(addr common.Address) (*types.StateAccount, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tr.GetAccount(addr)
}

// Account implements Reader. A trie node missing from memory reads as absent; use
// Err-returning methods (Proof) where that must be told apart.
func (r *TrieReader) Account(addr common.Address) (Account, bool) {
	a, err := r.account(addr)
	if err != nil || a == nil {
		return Account{}, false
	}
	return Account{Nonce: a.Nonce, Balance: *a.Balance, CodeHash: common.BytesToHash(a.CodeHash)}, true
}

// Storage implements Reader.
func (r *TrieReader) Storage(addr common.Address, key common.Hash) common.Hash {
	a, err := r.account(addr)
	if err != nil || a == nil || a.Root == types.EmptyRootHash {
		return common.Hash{}
	}
	st, err := trie.NewStateTrie(trie.StorageTrieID(r.root, crypto.Keccak256Hash(addr[:]), a.Root), r.m.db)
	if err != nil {
		return common.Hash{}
	}
	enc, err := st.GetStorage(addr, key[:])
	if err != nil || len(enc) == 0 {
		return common.Hash{}
	}
	return common.BytesToHash(enc)
}

// HasStorage implements Reader.
func (r *TrieReader) HasStorage(addr common.Address) bool {
	a, err := r.account(addr)
	return err == nil && a != nil && a.Root != types.EmptyRootHash
}

// Code implements Reader with the code source given to Merkle.Reader.
func (r *TrieReader) Code(hash common.Hash) []byte {
	if r.code == nil || hash == types.EmptyCodeHash {
		return nil
	}
	return r.code(hash)
}

// Proof is an eth_getProof answer at a retained root.
type Proof struct {
	Address      common.Address
	AccountProof [][]byte
	Nonce        uint64
	Balance      uint256.Int
	CodeHash     common.Hash
	StorageHash  common.Hash
	Storage      []StorageProof
}

// StorageProof is one slot's value and proof.
type StorageProof struct {
	Key   common.Hash
	Value common.Hash
	Proof [][]byte
}

type proofList [][]byte

func (l *proofList) Put(_ []byte, value []byte) error {
	*l = append(*l, common.CopyBytes(value))
	return nil
}
func (l *proofList) Delete([]byte) error { return errors.New("not supported") }

// Proof builds Merkle proofs for an account and slots at root.
func (m *Merkle) Proof(root common.Hash, addr common.Address, keys []common.Hash) (*Proof, error) {
	tr, err := m.openAccounts(root)
	if err != nil {
		return nil, err
	}
	p := &Proof{Address: addr, CodeHash: types.EmptyCodeHash, StorageHash: types.EmptyRootHash}
	acct, err := tr.GetAccount(addr)
	if err != nil {
		return nil, err
	}
	var list proofList
	if err := tr.Prove(crypto.Keccak256(addr[:]), &list); err != nil {
		return nil, err
	}
	p.AccountProof = list
	var st *trie.StateTrie
	if acct != nil {
		p.Nonce, p.Balance, p.CodeHash, p.StorageHash = acct.Nonce, *acct.Balance, common.BytesToHash(acct.CodeHash), acct.Root
		if acct.Root != types.EmptyRootHash {
			st, err = trie.NewStateTrie(trie.StorageTrieID(root, crypto.Keccak256Hash(addr[:]), acct.Root), m.db)
			if err != nil {
				return nil, err
			}
		}
	}
	for _, key := range keys {
		sp := StorageProof{Key: key, Proof: [][]byte{}}
		if st != nil {
			enc, err := st.GetStorage(addr, key[:])
			if err != nil {
				return nil, err
			}
			sp.Value = common.BytesToHash(enc)
			var sl proofList
			if err := st.Prove(crypto.Keccak256(key[:]), &sl); err != nil {
				return nil, err
			}
			sp.Proof = sl
		}
		p.Storage = append(p.Storage, sp)
	}
	return p, nil
}

// VerifyAccountProof checks an account proof against a state root with
// go-ethereum's verifier and returns the proven account (nil if absent).
func VerifyAccountProof(root common.Hash, addr common.Address, proof [][]byte) (*types.StateAccount, error) {
	db := memorydb.New()
	for _, node := range proof {
		if err := db.Put(crypto.Keccak256(node), node); err != nil {
			return nil, err
		}
	}
	val, err := trie.VerifyProof(root, crypto.Keccak256(addr[:]), db)
	if err != nil {
		return nil, err
	}
	if len(val) == 0 {
		return nil, nil
	}
	var acct types.StateAccount
	if err := rlp.DecodeBytes(val, &acct); err != nil {
		return nil, err
	}
	return &acct, nil
}

package state

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/trie"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/core/chain"
)

// reachable walks every trie under root with go-ethereum's node iterator and
// returns each hashed node's encoding. It fails the test on a missing node.
func reachable(t *testing.T, m *Merkle, root common.Hash, into map[common.Hash][]byte) {
	t.Helper()
	walk := func(id *trie.ID) []common.Hash {
		tr, err := trie.New(id, m.db)
		if err != nil {
			t.Fatalf("open trie %x under %x: %v", id.Root, root, err)
		}
		it, err := tr.NodeIterator(nil)
		if err != nil {
			t.Fatal(err)
		}
		var storageRoots []common.Hash
		for it.Next(true) {
			if h := it.Hash(); h != (common.Hash{}) {
				blob := m.db.get(h)
				if blob == nil {
					t.Fatalf("node %x under %x not stored", h, root)
				}
				into[h] = blob
			}
			if it.Leaf() && id.Owner == (common.Hash{}) {
				var acct types.StateAccount
				if err := rlp.DecodeBytes(it.LeafBlob(), &acct); err != nil {
					t.Fatal(err)
				}
				if acct.Root != types.EmptyRootHash {
					storageRoots = append(storageRoots, common.BytesToHash(it.LeafKey()), acct.Root)
				}
			}
		}
		if it.Error() != nil {
			t.Fatalf("walk under %x: %v", root, it.Error())
		}
		return storageRoots
	}
	pairs := walk(trie.StateTrieID(root))
	for i := 0; i < len(pairs); i += 2 {
		walk(trie.StorageTrieID(root, pairs[i], pairs[i+1]))
	}
}

// checkStore asserts that the store holds exactly the nodes reachable from the
// retained roots, each counted once per distinct stored node naming it and
// once per retained root entry, and that its byte count is theirs.
func checkStore(t *testing.T, m *Merkle) {
	t.Helper()
	want := map[common.Hash][]byte{}
	for _, r := range m.roots {
		if r != types.EmptyRootHash {
			reachable(t, m, r, want)
		}
	}
	refs := map[common.Hash]uint32{}
	size := 0
	for h, blob := range want {
		size += len(blob)
		if crypto.Keccak256Hash(blob) != h {
			t.Fatalf("node %x holds an encoding hashing to %x", h, crypto.Keccak256Hash(blob))
		}
		if err := forEachRef(blob, func(c common.Hash) error { refs[c]++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range m.roots {
		refs[r]++
	}
	nodes, bytes := m.db.stats()
	if nodes != len(want) || bytes != size {
		t.Fatalf("store holds %d nodes, %d bytes; the retained roots reach %d nodes, %d bytes", nodes, bytes, len(want), size)
	}
	m.db.index.Range(func(h common.Hash, loc *nodeLoc) bool {
		if loc.refs != refs[h] {
			t.Fatalf("node %x: %d references, want %d", h, loc.refs, refs[h])
		}
		return true
	})
}

// TestNodeStoreRetainsExactlyTheRetainedRoots folds random blocks (account
// churn, deletions, storage resets, storage tries shared between accounts) into
// a Merkle with tiny chunks, so that chunks are compacted all the time, and
// after every block checks that every retained root reads whole, that the
// store holds nothing else and that the counts are right; the roots match a
// Merkle folding the same blocks that never drops a root.
func TestNodeStoreRetainsExactlyTheRetainedRoots(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	m := NewMerkle(3)
	m.db = newNodeStore(2 << 10)
	ref := NewMerkle(1 << 20)
	addrs := make([]common.Address, 300)
	for i := range addrs {
		addrs[i] = common.BigToAddress(uint256.NewInt(uint64(i + 1)).ToBig())
	}
	compacted := 0
	for block := uint64(1); block <= 80; block++ {
		d := &chain.StateDiff{}
		for _, i := range rng.Perm(len(addrs))[:1+rng.Intn(60)] {
			a := chain.AccountDiff{Address: addrs[i], Nonce: 1 + uint64(rng.Intn(3)), Balance: *uint256.NewInt(uint64(rng.Intn(4))),
				CodeHash: types.EmptyCodeHash}
			switch rng.Intn(10) {
			case 0:
				a = chain.AccountDiff{Address: addrs[i], Deleted: true, StorageReset: true}
			case 1:
				a.StorageReset = true
			}
			if !a.Deleted {
				// Few distinct values, so that equal storage tries (and nodes) recur.
				for k := 0; k < rng.Intn(6); k++ {
					a.Storage = append(a.Storage, chain.SlotDiff{Key: common.Hash{byte(rng.Intn(4))}, Value: common.Hash{byte(rng.Intn(3))}})
				}
			}
			d.Accounts = append(d.Accounts, a)
		}
		d.Sort()
		before := len(m.db.free)
		root, err := m.Apply(block, d)
		if err != nil {
			t.Fatalf("block %d: %v", block, err)
		}
		if want, err := ref.Apply(block, d); err != nil || root != want {
			t.Fatalf("block %d: root %x, want %x (%v)", block, root, want, err)
		}
		compacted += max(0, len(m.db.free)-before)
		checkStore(t, m)
	}
	if compacted == 0 {
		t.Fatal("no chunk was compacted")
	}
	// Dropping every root empties the store.
	for _, r := range m.roots {
		m.db.dereference(r)
	}
	if nodes, bytes := m.db.stats(); nodes != 0 || bytes != 0 {
		t.Fatalf("%d nodes, %d bytes left after every root was released", nodes, bytes)
	}
}

// TestNodeStoreRejectsBadNodes: a malformed encoding or a node naming a child
// that is not stored is an error, not a panic or a silent hole.
func TestNodeStoreRejectsBadNodes(t *testing.T) {
	s := newNodeStore(1 << 10)
	for _, blob := range [][]byte{nil, {0x80}, {0xc3, 0x01}, {0xc1, 0x01, 0x02}, {0xc3, 0x01, 0x02, 0x03}} {
		if err := s.insert(crypto.Keccak256Hash(blob), blob); err == nil {
			t.Errorf("insert(%x) accepted", blob)
		}
	}
	// A branch naming an unknown child.
	child := crypto.Keccak256Hash([]byte("child"))
	items := make([][]byte, 17)
	items[3] = child[:]
	blob, _ := rlp.EncodeToBytes(items)
	if err := s.insert(crypto.Keccak256Hash(blob), blob); err == nil {
		t.Error("a branch with an unknown child was accepted")
	}
	if nodes, bytes := s.stats(); nodes != 0 || bytes != 0 {
		t.Errorf("refused nodes left %d nodes, %d bytes", nodes, bytes)
	}
	if _, err := s.NodeReader(common.Hash{9}); err == nil {
		t.Error("a reader at an unknown root")
	}
}

// TestNodeStoreConcurrentReads reads accounts and proofs at the newest roots
// while blocks are folded and chunks compacted (run it with -race). A read may
// find its root released (ErrRootUnavailable, or a missing node read as
// absent) but never a wrong value: every account read is one some block wrote.
func TestNodeStoreConcurrentReads(t *testing.T) {
	m := NewMerkle(2)
	m.db = newNodeStore(1 << 10)
	addrs := make([]common.Address, 64)
	for i := range addrs {
		addrs[i] = common.Address{byte(i + 1)}
	}
	done := make(chan struct{})
	errs := make(chan error, 4)
	for r := 0; r < 3; r++ {
		go func() {
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				root := m.Root()
				rd, err := m.Reader(root, nil)
				if err != nil {
					continue
				}
				for _, a := range addrs {
					if acct, ok := rd.Account(a); ok && acct.Nonce != acct.Balance.Uint64() {
						errs <- fmt.Errorf("account %s: nonce %d, balance %s", a, acct.Nonce, &acct.Balance)
						return
					}
				}
				_, _ = m.Proof(root, addrs[0], []common.Hash{{1}})
			}
		}()
	}
	for block := uint64(1); block <= 120; block++ {
		d := &chain.StateDiff{}
		for i, a := range addrs {
			if (int(block)+i)%3 == 0 {
				d.Accounts = append(d.Accounts, chain.AccountDiff{Address: a, Nonce: block, Balance: *uint256.NewInt(block),
					CodeHash: types.EmptyCodeHash, Storage: []chain.SlotDiff{{Key: common.Hash{1}, Value: common.Hash{byte(block)}}}})
			}
		}
		d.Sort()
		if _, err := m.Apply(block, d); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	for r := 0; r < 3; r++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

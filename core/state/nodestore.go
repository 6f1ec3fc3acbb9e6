package state

import (
	"fmt"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/trie/trienode"
	"github.com/ethereum/go-ethereum/triedb/database"
)

// nodeStore is the in-memory trie node database behind Merkle. It keeps every
// node of the retained tries by hash with a reference count, as go-ethereum's
// hash-based trie database does, but packed for memory: a node costs one index
// entry (its hash, where its encoding lies, its count: 45 bytes in a table that
// holds no pointers, so the collector never scans it) and its encoding,
// appended to large byte chunks.
//
// A node is referenced once by each distinct stored node that names it as a
// child, once by each account leaf whose storage root it is, and once per
// Reference of it as a state root. When its count falls to zero it leaves the
// index, its children are released in turn, and its bytes become garbage in
// their chunk. A chunk that is more than half garbage has its live nodes copied
// to the newest chunk and is dropped (compact); chunk memory is never reused,
// so an encoding handed to a reader stays valid for as long as it is held.
//
// Node (through NodeReader) may run concurrently with everything else; the
// writing methods are serialised by the caller (Merkle.Commit).
type nodeStore struct {
	mu     sync.RWMutex
	index  *table[common.Hash, nodeLoc]
	chunks []*nodeChunk // nil where a chunk was dropped
	free   []uint32     // dropped chunk slots, for reuse
	active uint32       // the chunk nodes are appended to
	// maxChunk is the largest chunk allocated; chunks start small and double,
	// so that a store holding a few nodes stays small.
	maxChunk int
	nextSize int
	live     int // bytes of indexed encodings
	keccak   crypto.KeccakState
}

// nodeLoc is a node's place: chunk slot, offset and reference count.
type nodeLoc struct {
	chunk, off, refs uint32
}

type nodeChunk struct {
	buf  []byte // encodings back to back; never rewritten
	live int    // bytes of buf still indexed
}

const (
	firstChunkSize   = 64 << 10
	defaultChunkSize = 4 << 20
)

func newNodeStore(maxChunk int) *nodeStore {
	s := &nodeStore{index: newTable[common.Hash, nodeLoc](), maxChunk: maxChunk, nextSize: min(firstChunkSize, maxChunk),
		keccak: crypto.NewKeccakState()}
	s.chunks = []*nodeChunk{{buf: make([]byte, 0, s.nextSize)}}
	return s
}

// nodeSize is the length of the encoding at the start of b (a node is one RLP
// list; so is every record in a chunk).
func nodeSize(b []byte) (int, error) {
	_, _, rest, err := rlp.Split(b)
	if err != nil {
		return 0, err
	}
	return len(b) - len(rest), nil
}

// get returns the encoding of hash, or nil. The caller holds mu (either way).
func (s *nodeStore) get(hash common.Hash) []byte {
	loc, ok := s.index.Get(hash)
	if !ok {
		return nil
	}
	buf := s.chunks[loc.chunk].buf[loc.off:]
	n, err := nodeSize(buf)
	if err != nil {
		return nil // unreachable: only whole encodings are appended
	}
	return buf[:n:n]
}

// NodeReader implements database.NodeDatabase: a reader of the nodes under
// stateRoot, which must be stored.
func (s *nodeStore) NodeReader(stateRoot common.Hash) (database.NodeReader, error) {
	if stateRoot != types.EmptyRootHash && stateRoot != (common.Hash{}) {
		s.mu.RLock()
		_, ok := s.index.Get(stateRoot)
		s.mu.RUnlock()
		if !ok {
			return nil, fmt.Errorf("state %x is not available", stateRoot)
		}
	}
	return nodeReader{s}, nil
}

type nodeReader struct{ s *nodeStore }

// Node implements database.NodeReader. A node that is not stored (a trie whose
// root was released while it was read) is returned empty, which the trie
// reports as a missing node.
func (r nodeReader) Node(_ common.Hash, _ []byte, hash common.Hash) ([]byte, error) {
	r.s.mu.RLock()
	defer r.s.mu.RUnlock()
	return r.s.get(hash), nil
}

// update stores the nodes of one commit: the storage tries first, then the
// account trie, each from the leaves up, so that a node's children are stored
// before it references them (go-ethereum's hash database orders them the same
// way). Deleted paths are ignored: a node leaves the store only through its
// reference count.
func (s *nodeStore) update(nodes *trienode.MergedNodeSet) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	insert := func(_ string, n *trienode.Node) {
		if err == nil && !n.IsDeleted() {
			err = s.insert(n.Hash, n.Blob)
		}
	}
	for owner, set := range nodes.Sets {
		if owner != (common.Hash{}) {
			set.ForEachWithOrder(insert)
		}
	}
	if set, ok := nodes.Sets[common.Hash{}]; ok {
		set.ForEachWithOrder(insert)
	}
	return err
}

// insert stores one node and references what it names. A node already stored
// is left as it is.
func (s *nodeStore) insert(hash common.Hash, blob []byte) error {
	if _, ok := s.index.Get(hash); ok {
		return nil
	}
	if n, err := nodeSize(blob); err != nil || n != len(blob) {
		return fmt.Errorf("trie node %x: malformed encoding", hash)
	}
	var refs [17]common.Hash
	nrefs := 0
	err := forEachRef(blob, func(ref common.Hash) error {
		if _, ok := s.index.Get(ref); !ok {
			return fmt.Errorf("trie node %x references %x, which is not stored", hash, ref)
		}
		refs[nrefs] = ref
		nrefs++
		return nil
	})
	if err != nil {
		return err
	}
	for _, ref := range refs[:nrefs] {
		s.index.Ptr(ref).refs++
	}
	s.index.Put(hash, s.appendBlob(blob))
	return nil
}

// appendBlob copies blob into the active chunk, starting a new chunk when it
// does not fit, and returns its place (with no references yet).
func (s *nodeStore) appendBlob(blob []byte) nodeLoc {
	c := s.chunks[s.active]
	if len(c.buf)+len(blob) > cap(c.buf) {
		s.nextSize = min(s.nextSize*2, s.maxChunk)
		c = &nodeChunk{buf: make([]byte, 0, max(s.nextSize, len(blob)))}
		if n := len(s.free); n > 0 {
			s.active = s.free[n-1]
			s.free = s.free[:n-1]
			s.chunks[s.active] = c
		} else {
			s.active = uint32(len(s.chunks))
			s.chunks = append(s.chunks, c)
		}
	}
	loc := nodeLoc{chunk: s.active, off: uint32(len(c.buf))}
	c.buf = append(c.buf, blob...)
	c.live += len(blob)
	s.live += len(blob)
	return loc
}

// reference adds a reference to a stored root; an empty or unknown root is
// ignored.
func (s *nodeStore) reference(root common.Hash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if loc := s.index.Ptr(root); loc != nil {
		loc.refs++
	}
}

// dereference drops a reference to a root, releasing every node no longer
// referenced, then compacts chunks left mostly garbage.
func (s *nodeStore) dereference(root common.Hash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.release(root)
	s.compact()
}

func (s *nodeStore) release(hash common.Hash) {
	p := s.index.Ptr(hash)
	if p == nil {
		return
	}
	if p.refs > 1 {
		p.refs--
		return
	}
	loc := *p
	s.index.Delete(hash)
	c := s.chunks[loc.chunk]
	blob := c.buf[loc.off:]
	n, _ := nodeSize(blob)
	blob = blob[:n]
	c.live -= n
	s.live -= n
	// The bytes stay in the chunk, so the children can be read after the delete.
	_ = forEachRef(blob, func(ref common.Hash) error {
		s.release(ref)
		return nil
	})
}

// compact moves the live nodes out of every chunk (but the active one) that is
// more than half garbage, and drops the chunk. The records of a chunk are
// walked in order; a record is live when the index still places its hash there.
func (s *nodeStore) compact() {
	for i, c := range s.chunks {
		if c == nil || uint32(i) == s.active || c.live*2 >= len(c.buf) {
			continue
		}
		for off := 0; off < len(c.buf) && c.live > 0; {
			n, err := nodeSize(c.buf[off:])
			if err != nil {
				break // unreachable: only whole encodings are appended
			}
			blob := c.buf[off : off+n]
			var h common.Hash
			s.keccak.Reset()
			s.keccak.Write(blob)
			s.keccak.Read(h[:])
			if loc, ok := s.index.Get(h); ok && loc.chunk == uint32(i) && loc.off == uint32(off) {
				moved := s.appendBlob(blob)
				moved.refs = loc.refs
				s.index.Put(h, moved)
				c.live -= n
				s.live -= n
			}
			off += n
		}
		s.chunks[i] = nil
		s.free = append(s.free, uint32(i))
	}
}

// forEachRef calls fn with every hash a node encoding references: the hashed
// children of a branch or extension node, and the storage root of an account
// leaf (an account trie leaf holds an RLP list; a storage leaf holds a string).
// Embedded children (under 32 bytes) cannot hold a hash, so they are skipped.
func forEachRef(blob []byte, fn func(common.Hash) error) error {
	elems, _, err := rlp.SplitList(blob)
	if err != nil {
		return err
	}
	count, err := rlp.CountValues(elems)
	if err != nil {
		return err
	}
	switch count {
	case 17: // branch: 16 children and a value
		for i := 0; i < 16; i++ {
			kind, val, rest, err := rlp.Split(elems)
			if err != nil {
				return err
			}
			if kind == rlp.String && len(val) == common.HashLength {
				if err := fn(common.BytesToHash(val)); err != nil {
					return err
				}
			}
			elems = rest
		}
		return nil
	case 2: // extension or leaf: compact key and child or value
		key, rest, err := rlp.SplitString(elems)
		if err != nil {
			return err
		}
		kind, val, _, err := rlp.Split(rest)
		if err != nil {
			return err
		}
		if len(key) > 0 && key[0]>>4 >= 2 { // leaf
			if kind == rlp.String && len(val) > 0 && val[0] >= 0xc0 {
				if root, ok := accountRoot(val); ok && root != types.EmptyRootHash {
					return fn(root)
				}
			}
			return nil
		}
		if kind == rlp.String && len(val) == common.HashLength {
			return fn(common.BytesToHash(val))
		}
		return nil
	default:
		return fmt.Errorf("trie node with %d elements", count)
	}
}

// accountRoot is the storage root of an RLP-encoded account (nonce, balance,
// root, code hash).
func accountRoot(enc []byte) (common.Hash, bool) {
	fields, _, err := rlp.SplitList(enc)
	if err != nil {
		return common.Hash{}, false
	}
	for i := 0; i < 2; i++ {
		if _, _, fields, err = rlp.Split(fields); err != nil {
			return common.Hash{}, false
		}
	}
	root, _, err := rlp.SplitString(fields)
	if err != nil || len(root) != common.HashLength {
		return common.Hash{}, false
	}
	return common.BytesToHash(root), true
}

// stats reports the stored nodes and their encoded bytes.
func (s *nodeStore) stats() (nodes, bytes int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.index.Len(), s.live
}

// Package blockstm implements the EVM-agnostic core of Block-STM (Gelashvili
// et al., "Block-STM: Scaling Blockchain Execution by Turning Ordering Curse
// to a Performance Blessing"): a multi-version memory, the collaborative
// scheduler and a parallel executor whose committed output is identical to
// executing the block's transactions sequentially in order.
//
// Nothing in this package knows about the EVM: locations are opaque Keys and
// values are opaque (any).
package blockstm

import (
	"encoding/binary"
	"sort"
	"sync"
	"sync/atomic"
)

// Key identifies one location of the state. The package treats it as opaque;
// the integration layer decides what Kind, Addr and Slot mean (e.g. balance,
// nonce, code or a storage slot of an account).
type Key struct {
	Kind uint8
	Addr [20]byte
	Slot [32]byte
}

// Version identifies one incarnation of one transaction.
type Version struct {
	TxIndex     int
	Incarnation int
}

// ReadStatus is the outcome of MVMemory.Read.
type ReadStatus uint8

const (
	// ReadOK: a write of a lower transaction was found; value and version are set.
	ReadOK ReadStatus = iota
	// ReadNotFound: no lower transaction wrote the key; read pre-block storage.
	ReadNotFound
	// ReadEstimate: the closest lower write is an ESTIMATE left by an aborted
	// incarnation; Version.TxIndex is the transaction to wait on.
	ReadEstimate
)

func (s ReadStatus) String() string {
	switch s {
	case ReadOK:
		return "OK"
	case ReadNotFound:
		return "NotFound"
	case ReadEstimate:
		return "Estimate"
	}
	return "ReadStatus(?)"
}

// ReadDescriptor records one read of a transaction incarnation: the key and
// where the value came from (Found=false means pre-block storage).
type ReadDescriptor struct {
	Key     Key
	Found   bool
	Version Version // valid when Found
}

// WriteEntry is one (key, value) write of a transaction.
type WriteEntry struct {
	Key   Key
	Value any
}

const numShards = 128 // power of two

type mvEntry struct {
	txIndex     int
	incarnation int
	estimate    bool
	value       any
}

// mvCell holds all versions of one key, sorted by txIndex.
type mvCell struct {
	mu      sync.RWMutex
	entries []mvEntry
}

func (c *mvCell) search(txIndex int) int {
	return sort.Search(len(c.entries), func(i int) bool { return c.entries[i].txIndex >= txIndex })
}

type mvShard struct {
	mu    sync.RWMutex
	cells map[Key]*mvCell
	_     [40]byte // keep shards on separate cache lines
}

type txLocations struct {
	writes []Key // sorted set of written keys
}

// MVMemory is the multi-version data structure of Block-STM. It is safe for
// concurrent use: keys are spread over sharded maps, and each key's versions
// have their own lock.
type MVMemory struct {
	n      int
	shards [numShards]mvShard
	// Per-transaction last written locations and last read set, replaced
	// atomically on Record (RCU style) so validation never blocks execution.
	lastWrites []atomic.Pointer[txLocations]
	lastReads  []atomic.Pointer[[]ReadDescriptor]
}

// NewMVMemory returns an empty multi-version memory for a block of n transactions.
func NewMVMemory(n int) *MVMemory {
	m := &MVMemory{
		n:          n,
		lastWrites: make([]atomic.Pointer[txLocations], n),
		lastReads:  make([]atomic.Pointer[[]ReadDescriptor], n),
	}
	for i := range m.shards {
		m.shards[i].cells = make(map[Key]*mvCell)
	}
	return m
}

func shardOf(k *Key) uint64 {
	h := binary.LittleEndian.Uint64(k.Addr[12:20]) ^ binary.LittleEndian.Uint64(k.Addr[0:8])*0x9E3779B97F4A7C15
	h ^= binary.LittleEndian.Uint64(k.Slot[24:32]) * 0xC2B2AE3D27D4EB4F
	h ^= binary.LittleEndian.Uint64(k.Slot[0:8])
	h ^= uint64(k.Kind) << 56
	h ^= h >> 29
	h *= 0xBF58476D1CE4E5B9
	h ^= h >> 32
	return h & (numShards - 1)
}

func (m *MVMemory) cell(k Key, create bool) *mvCell {
	s := &m.shards[shardOf(&k)]
	s.mu.RLock()
	c := s.cells[k]
	s.mu.RUnlock()
	if c != nil || !create {
		return c
	}
	s.mu.Lock()
	if c = s.cells[k]; c == nil {
		c = &mvCell{}
		s.cells[k] = c
	}
	s.mu.Unlock()
	return c
}

// Read returns the value written to key by the highest transaction below
// txIndex. See ReadStatus for the meaning of the result.
func (m *MVMemory) Read(key Key, txIndex int) (any, Version, ReadStatus) {
	c := m.cell(key, false)
	if c == nil {
		return nil, Version{}, ReadNotFound
	}
	c.mu.RLock()
	i := c.search(txIndex) - 1
	if i < 0 {
		c.mu.RUnlock()
		return nil, Version{}, ReadNotFound
	}
	e := c.entries[i]
	c.mu.RUnlock()
	if e.estimate {
		return nil, Version{TxIndex: e.txIndex, Incarnation: e.incarnation}, ReadEstimate
	}
	return e.value, Version{TxIndex: e.txIndex, Incarnation: e.incarnation}, ReadOK
}

func (m *MVMemory) write(key Key, v Version, value any) {
	c := m.cell(key, true)
	c.mu.Lock()
	i := c.search(v.TxIndex)
	if i < len(c.entries) && c.entries[i].txIndex == v.TxIndex {
		c.entries[i] = mvEntry{txIndex: v.TxIndex, incarnation: v.Incarnation, value: value}
	} else {
		c.entries = append(c.entries, mvEntry{})
		copy(c.entries[i+1:], c.entries[i:])
		c.entries[i] = mvEntry{txIndex: v.TxIndex, incarnation: v.Incarnation, value: value}
	}
	c.mu.Unlock()
}

func (m *MVMemory) remove(key Key, txIndex int) {
	c := m.cell(key, false)
	if c == nil {
		return
	}
	c.mu.Lock()
	i := c.search(txIndex)
	if i < len(c.entries) && c.entries[i].txIndex == txIndex {
		c.entries = append(c.entries[:i], c.entries[i+1:]...)
	}
	c.mu.Unlock()
}

func keyLess(a, b *Key) bool {
	if a.Kind != b.Kind {
		return a.Kind < b.Kind
	}
	for i := range a.Addr {
		if a.Addr[i] != b.Addr[i] {
			return a.Addr[i] < b.Addr[i]
		}
	}
	for i := range a.Slot {
		if a.Slot[i] != b.Slot[i] {
			return a.Slot[i] < b.Slot[i]
		}
	}
	return false
}

// Record stores the read set and write set of incarnation v. Keys written by
// the previous incarnation but not by this one are removed. It reports
// whether this incarnation wrote a key the previous one did not (in which
// case higher transactions must be revalidated). writeSet must not contain
// duplicate keys.
func (m *MVMemory) Record(v Version, readSet []ReadDescriptor, writeSet []WriteEntry) (wroteNewLocation bool) {
	for i := range writeSet {
		m.write(writeSet[i].Key, v, writeSet[i].Value)
	}
	keys := make([]Key, len(writeSet))
	for i := range writeSet {
		keys[i] = writeSet[i].Key
	}
	sort.Slice(keys, func(i, j int) bool { return keyLess(&keys[i], &keys[j]) })

	var prev []Key
	if p := m.lastWrites[v.TxIndex].Load(); p != nil {
		prev = p.writes
	}
	// Merge the two sorted sets.
	i, j := 0, 0
	for i < len(prev) || j < len(keys) {
		switch {
		case j == len(keys) || (i < len(prev) && keyLess(&prev[i], &keys[j])):
			m.remove(prev[i], v.TxIndex) // no longer written
			i++
		case i == len(prev) || keyLess(&keys[j], &prev[i]):
			wroteNewLocation = true
			j++
		default:
			i++
			j++
		}
	}
	rs := readSet
	m.lastWrites[v.TxIndex].Store(&txLocations{writes: keys})
	m.lastReads[v.TxIndex].Store(&rs)
	return wroteNewLocation
}

// ConvertWritesToEstimates marks every write of txIndex's last recorded
// incarnation as an ESTIMATE, so readers wait for its re-execution.
func (m *MVMemory) ConvertWritesToEstimates(txIndex int) {
	p := m.lastWrites[txIndex].Load()
	if p == nil {
		return
	}
	for _, k := range p.writes {
		c := m.cell(k, false)
		if c == nil {
			continue
		}
		c.mu.Lock()
		i := c.search(txIndex)
		if i < len(c.entries) && c.entries[i].txIndex == txIndex {
			c.entries[i].estimate = true
		}
		c.mu.Unlock()
	}
}

// ValidateReadSet reports whether every read of txIndex's last recorded
// incarnation would still observe the same version.
func (m *MVMemory) ValidateReadSet(txIndex int) bool {
	p := m.lastReads[txIndex].Load()
	if p == nil {
		return true
	}
	for _, r := range *p {
		_, v, st := m.Read(r.Key, txIndex)
		switch st {
		case ReadEstimate:
			return false
		case ReadNotFound:
			if r.Found {
				return false
			}
		case ReadOK:
			if !r.Found || v != r.Version {
				return false
			}
		}
	}
	return true
}

// LastWrittenKeys returns the keys written by txIndex's last recorded
// incarnation (sorted).
func (m *MVMemory) LastWrittenKeys(txIndex int) []Key {
	if p := m.lastWrites[txIndex].Load(); p != nil {
		return p.writes
	}
	return nil
}

// LastReadSet returns the read set of txIndex's last recorded incarnation.
func (m *MVMemory) LastReadSet(txIndex int) []ReadDescriptor {
	if p := m.lastReads[txIndex].Load(); p != nil {
		return *p
	}
	return nil
}

// Snapshot returns, for every key written by some transaction, the value of
// the highest writer. Call it only once execution is complete.
func (m *MVMemory) Snapshot() map[Key]any {
	out := make(map[Key]any)
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.RLock()
		for k, c := range s.cells {
			c.mu.RLock()
			if n := len(c.entries); n > 0 {
				out[k] = c.entries[n-1].value
			}
			c.mu.RUnlock()
		}
		s.mu.RUnlock()
	}
	return out
}

// FinalWrites returns the final writes of every key in transaction order,
// i.e. the versions of each key as (Version, value) pairs sorted by TxIndex.
func (m *MVMemory) FinalWrites(key Key) []VersionedValue {
	c := m.cell(key, false)
	if c == nil {
		return nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]VersionedValue, len(c.entries))
	for i, e := range c.entries {
		out[i] = VersionedValue{Version: Version{e.txIndex, e.incarnation}, Value: e.value, Estimate: e.estimate}
	}
	return out
}

// VersionedValue is one version of one key.
type VersionedValue struct {
	Version  Version
	Value    any
	Estimate bool
}

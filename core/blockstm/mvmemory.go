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
	// incarnation (or predicted before execution); Version.TxIndex is the
	// transaction to wait on.
	ReadEstimate
	// ReadDelta: the closest lower write is a commutative delta; the value is
	// only known by resolving (see MVMemory.Resolve).
	ReadDelta
)

func (s ReadStatus) String() string {
	switch s {
	case ReadOK:
		return "OK"
	case ReadNotFound:
		return "NotFound"
	case ReadEstimate:
		return "Estimate"
	case ReadDelta:
		return "Delta"
	}
	return "ReadStatus(?)"
}

// ReadDescriptor records one read of a transaction incarnation: the key and
// where the value came from (Found=false means pre-block storage). A read
// that went through commutative deltas is Resolved: it is validated by value
// (Ops.Equal) rather than by version, since no single version produced it.
type ReadDescriptor struct {
	Key      Key
	Found    bool
	Version  Version // valid when Found
	Resolved bool
	Value    any // the resolved value, when Resolved
}

// WriteEntry is one (key, value) write of a transaction. A Delta write is a
// commutative update (e.g. an addition to a counter): it does not depend on
// the key's previous value, so writers of deltas to the same key never
// conflict with each other; a reader of the key folds every lower delta onto
// the closest lower full value (Ops.Fold).
type WriteEntry struct {
	Key   Key
	Value any
	Delta bool
}

// Ops are the operations the multi-version memory needs to resolve delta
// writes. They are required only when some transaction writes a delta.
type Ops struct {
	// Fold returns base with delta applied. It must not modify its arguments.
	Fold func(base, delta any) any
	// Equal compares two resolved values.
	Equal func(a, b any) bool
	// Base returns the key's pre-block value (the base of a delta chain that
	// reaches below every full write).
	Base func(Key) any
}

const numShards = 128 // power of two

type mvEntry struct {
	txIndex     int
	incarnation int
	estimate    bool
	delta       bool
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
	ops    Ops
	shards [numShards]mvShard
	// Per-transaction last written locations and last read set, replaced
	// atomically on Record (RCU style) so validation never blocks execution.
	lastWrites []atomic.Pointer[txLocations]
	lastReads  []atomic.Pointer[[]ReadDescriptor]
}

// NewMVMemory returns an empty multi-version memory for a block of n
// transactions, without delta support.
func NewMVMemory(n int) *MVMemory { return NewMVMemoryWithOps(n, Ops{}) }

// NewMVMemoryWithOps returns an empty multi-version memory whose delta writes
// are resolved with ops.
func NewMVMemoryWithOps(n int, ops Ops) *MVMemory {
	m := &MVMemory{
		n:          n,
		ops:        ops,
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
	ver := Version{TxIndex: e.txIndex, Incarnation: e.incarnation}
	switch {
	case e.estimate:
		return nil, ver, ReadEstimate
	case e.delta:
		return e.value, ver, ReadDelta
	}
	return e.value, ver, ReadOK
}

// Resolve returns the value of key as seen by txIndex when deltas are
// involved: every lower delta folded, in transaction order, onto the closest
// lower full value (or onto Ops.Base when there is none). It returns
// ReadEstimate, with the blocking version, when the chain crosses an ESTIMATE.
func (m *MVMemory) Resolve(key Key, txIndex int) (any, Version, ReadStatus) {
	var (
		deltas  []any
		base    any
		hasBase bool
	)
	if c := m.cell(key, false); c != nil {
		c.mu.RLock()
		for i := c.search(txIndex) - 1; i >= 0; i-- {
			e := &c.entries[i]
			if e.estimate {
				ver := Version{TxIndex: e.txIndex, Incarnation: e.incarnation}
				c.mu.RUnlock()
				return nil, ver, ReadEstimate
			}
			if !e.delta {
				base, hasBase = e.value, true
				break
			}
			deltas = append(deltas, e.value)
		}
		c.mu.RUnlock()
	}
	if !hasBase {
		base = m.ops.Base(key)
	}
	for i := len(deltas) - 1; i >= 0; i-- {
		base = m.ops.Fold(base, deltas[i])
	}
	return base, Version{}, ReadOK
}

// EstimateBelow reports the closest lower writer of key when its entry is an
// ESTIMATE, without recording anything: a transaction about to read key
// would depend on it.
func (m *MVMemory) EstimateBelow(key Key, txIndex int) (blocking int, ok bool) {
	c := m.cell(key, false)
	if c == nil {
		return 0, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	i := c.search(txIndex) - 1
	if i < 0 || !c.entries[i].estimate {
		return 0, false
	}
	return c.entries[i].txIndex, true
}

// Predict marks keys as about to be written by txIndex before it first
// executes: they hold ESTIMATEs, so higher transactions reading them wait for
// txIndex instead of reading a stale value and aborting later. Keys the
// execution does not write are removed when it is recorded. Call Predict
// before execution starts, at most once per transaction.
func (m *MVMemory) Predict(txIndex int, keys []Key) {
	if len(keys) == 0 {
		return
	}
	sorted := append([]Key(nil), keys...)
	sort.Slice(sorted, func(i, j int) bool { return keyLess(&sorted[i], &sorted[j]) })
	uniq := sorted[:0]
	for i := range sorted {
		if i == 0 || sorted[i] != sorted[i-1] {
			uniq = append(uniq, sorted[i])
		}
	}
	for _, k := range uniq {
		m.put(k, mvEntry{txIndex: txIndex, incarnation: -1, estimate: true})
	}
	m.lastWrites[txIndex].Store(&txLocations{writes: uniq})
}

func (m *MVMemory) write(key Key, v Version, value any, delta bool) {
	m.put(key, mvEntry{txIndex: v.TxIndex, incarnation: v.Incarnation, value: value, delta: delta})
}

func (m *MVMemory) put(key Key, e mvEntry) {
	c := m.cell(key, true)
	c.mu.Lock()
	i := c.search(e.txIndex)
	if i < len(c.entries) && c.entries[i].txIndex == e.txIndex {
		c.entries[i] = e
	} else {
		c.entries = append(c.entries, mvEntry{})
		copy(c.entries[i+1:], c.entries[i:])
		c.entries[i] = e
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
		m.write(writeSet[i].Key, v, writeSet[i].Value, writeSet[i].Delta)
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
		if r.Resolved {
			val, _, st := m.Resolve(r.Key, txIndex)
			if st != ReadOK || !m.ops.Equal(val, r.Value) {
				return false
			}
			continue
		}
		_, v, st := m.Read(r.Key, txIndex)
		switch st {
		case ReadEstimate, ReadDelta:
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
// the highest writer (a delta, for a key whose highest write is one). Call it
// only once execution is complete.
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
		out[i] = VersionedValue{Version: Version{e.txIndex, e.incarnation}, Value: e.value, Estimate: e.estimate, Delta: e.delta}
	}
	return out
}

// VersionedValue is one version of one key.
type VersionedValue struct {
	Version  Version
	Value    any
	Estimate bool
	Delta    bool
}

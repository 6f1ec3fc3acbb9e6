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

// ReadDescriptor records one read of a transaction incarnation: the key, the
// value and where it came from (Found=false means pre-block storage). A read
// that went through commutative deltas is Resolved. Validation accepts a read
// whose version is unchanged, and, when Ops.Equal is set, one whose value is
// unchanged although another write now provides it (a read is only stale if
// it would now return something else).
type ReadDescriptor struct {
	Key      Key
	Found    bool
	Version  Version // valid when Found
	Resolved bool
	Value    any // the value read (nil when not Found and not Resolved)
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
	// Equal compares two values (resolved ones, and others for validation
	// by value); nil means validation by version only.
	Equal func(a, b any) bool
	// Base returns the key's pre-block value (the base of a delta chain that
	// reaches below every full write).
	Base func(Key) any
	// Owner, when set, groups keys for Final: keys with the same owner are
	// handed to the same worker.
	Owner func(*Key) int
}

type mvEntry struct {
	txIndex     int
	incarnation int
	estimate    bool
	delta       bool
	value       any
}

// mvCell holds all versions of one key, sorted by txIndex.
type mvCell struct {
	key     Key
	hash    uint64
	owner   uint32 // Options.Owner of the key, for Final
	mu      sync.Mutex
	entries []mvEntry
	inline  [1]mvEntry // first entry's storage: most keys have one writer
}

func (c *mvCell) search(txIndex int) int {
	// Most lookups are for the last entries: scan back a little, then bisect.
	n := len(c.entries)
	for i := n - 1; i >= 0 && i >= n-4; i-- {
		if c.entries[i].txIndex < txIndex {
			return i + 1
		}
	}
	return sort.Search(n, func(i int) bool { return c.entries[i].txIndex >= txIndex })
}

// MVMemory is the multi-version data structure of Block-STM. It is safe for
// concurrent use. Keys live in an open-addressing table whose slots are
// filled with compare-and-swap, so looking a key up takes no lock and writes
// no shared memory (an RWMutex's read lock would bounce one cache line
// between all cores); keys beyond the table's planned capacity go to a
// locked overflow map. Each key's versions have their own lock.
type MVMemory struct {
	n     int
	ops   Ops
	table []atomic.Pointer[mvCell]
	mask  uint64
	used  atomic.Int64
	limit int64
	// filter has a bit set for every key hash with a cell: most reads are of
	// keys no transaction wrote, and the filter (small enough for the CPU's
	// cache) answers them without touching the table.
	filter     []atomic.Uint64
	filterMask uint64

	overflowMu sync.RWMutex
	overflow   map[Key]*mvCell
	hasOverflo atomic.Bool

	// Every cell in creation order, in chunks, so that Final scans only
	// cells (not the sparse table).
	list     []atomic.Pointer[[listChunk]listed]
	listUsed atomic.Int64

	// Per-transaction last written locations and last read set, replaced
	// atomically on Record (RCU style) so validation never blocks execution.
	lastWrites []atomic.Pointer[txLocations]
	lastReads  []atomic.Pointer[[]ReadDescriptor]
}

type txLocations struct {
	writes []WriteEntry // the write set (only keys matter), in no particular order
}

// keysPerTx sizes the lock-free table: the keys a block is expected to write
// per transaction, with room to keep probe sequences short.
const keysPerTx = 8

// NewMVMemory returns an empty multi-version memory for a block of n
// transactions, without delta support.
func NewMVMemory(n int) *MVMemory { return NewMVMemoryWithOps(n, Ops{}) }

// NewMVMemoryWithOps returns an empty multi-version memory whose delta writes
// are resolved with ops.
func NewMVMemoryWithOps(n int, ops Ops) *MVMemory {
	size := 1024
	for size < n*keysPerTx {
		size <<= 1
	}
	return &MVMemory{
		n:          n,
		ops:        ops,
		filter:     make([]atomic.Uint64, size/8),
		filterMask: uint64(size*8 - 1),
		list:       make([]atomic.Pointer[[listChunk]listed], (size+listChunk-1)/listChunk+1),
		table:      make([]atomic.Pointer[mvCell], size),
		mask:       uint64(size - 1),
		limit:      int64(size) * 3 / 4,
		lastWrites: make([]atomic.Pointer[txLocations], n),
		lastReads:  make([]atomic.Pointer[[]ReadDescriptor], n),
	}
}

func hashKey(k *Key) uint64 {
	h := binary.LittleEndian.Uint64(k.Addr[12:20]) ^ binary.LittleEndian.Uint64(k.Addr[0:8])*0x9E3779B97F4A7C15
	h ^= uint64(binary.LittleEndian.Uint32(k.Addr[8:12])) * 0x94D049BB133111EB
	h ^= binary.LittleEndian.Uint64(k.Slot[24:32]) * 0xC2B2AE3D27D4EB4F
	h ^= binary.LittleEndian.Uint64(k.Slot[0:8])
	h ^= binary.LittleEndian.Uint64(k.Slot[8:16]) * 0x165667B19E3779F9
	h ^= binary.LittleEndian.Uint64(k.Slot[16:24]) * 0x27D4EB2F165667C5
	h ^= uint64(k.Kind) << 56
	h ^= h >> 29
	h *= 0xBF58476D1CE4E5B9
	h ^= h >> 32
	return h
}

func (m *MVMemory) cell(k Key, create bool) *mvCell {
	h := hashKey(&k)
	bit := (h >> 7) & m.filterMask
	word, mask := &m.filter[bit/64], uint64(1)<<(bit%64)
	if !create && word.Load()&mask == 0 {
		return nil
	}
	if create && word.Load()&mask == 0 {
		word.Or(mask) // before the cell is published, so a reader that finds the cell also passes the filter
	}
	for i, probes := h&m.mask, 0; probes <= int(m.mask); i, probes = (i+1)&m.mask, probes+1 {
		c := m.table[i].Load()
		if c == nil {
			if !create || m.used.Load() >= m.limit {
				break
			}
			nc := m.newCell(k, h)
			if m.table[i].CompareAndSwap(nil, nc) {
				m.used.Add(1)
				m.addToList(nc)
				return nc
			}
			c = m.table[i].Load() // another writer took the slot
		}
		if c.hash == h && c.key == k {
			return c
		}
	}
	return m.overflowCell(k, h, create)
}

func (m *MVMemory) overflowCell(k Key, h uint64, create bool) *mvCell {
	if !create && !m.hasOverflo.Load() {
		return nil
	}
	m.overflowMu.RLock()
	c := m.overflow[k]
	m.overflowMu.RUnlock()
	if c != nil || !create {
		return c
	}
	m.overflowMu.Lock()
	defer m.overflowMu.Unlock()
	if c = m.overflow[k]; c == nil {
		if m.overflow == nil {
			m.overflow = make(map[Key]*mvCell)
		}
		c = m.newCell(k, h)
		m.overflow[k] = c
		m.hasOverflo.Store(true)
	}
	return c
}

const listChunk = 1024

func (m *MVMemory) newCell(k Key, h uint64) *mvCell {
	c := &mvCell{key: k, hash: h}
	c.entries = c.inline[:0]
	if m.ops.Owner != nil {
		c.owner = uint32(m.ops.Owner(&k))
	}
	return c
}

// listed is a cell in the creation list, with its owner (so that Final's
// workers skip other workers' cells without loading them).
type listed struct {
	c     *mvCell
	owner uint32
}

// addToList appends a cell of the table to the creation list (overflow cells
// are found in their map).
func (m *MVMemory) addToList(c *mvCell) {
	i := m.listUsed.Add(1) - 1
	ch := &m.list[i/listChunk]
	chunk := ch.Load()
	if chunk == nil {
		chunk = new([listChunk]listed)
		if !ch.CompareAndSwap(nil, chunk) {
			chunk = ch.Load()
		}
	}
	chunk[i%listChunk] = listed{c, c.owner}
}

// cells calls fn for every cell (not safe against concurrent creation).
func (m *MVMemory) cells(fn func(c *mvCell)) {
	for i := range m.table {
		if c := m.table[i].Load(); c != nil {
			fn(c)
		}
	}
	m.overflowMu.RLock()
	defer m.overflowMu.RUnlock()
	for _, c := range m.overflow {
		fn(c)
	}
}

// Read returns the value written to key by the highest transaction below
// txIndex. See ReadStatus for the meaning of the result.
func (m *MVMemory) Read(key Key, txIndex int) (any, Version, ReadStatus) {
	c := m.cell(key, false)
	if c == nil {
		return nil, Version{}, ReadNotFound
	}
	c.mu.Lock()
	i := c.search(txIndex) - 1
	if i < 0 {
		c.mu.Unlock()
		return nil, Version{}, ReadNotFound
	}
	e := c.entries[i]
	c.mu.Unlock()
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
		c.mu.Lock()
		for i := c.search(txIndex) - 1; i >= 0; i-- {
			e := &c.entries[i]
			if e.estimate {
				ver := Version{TxIndex: e.txIndex, Incarnation: e.incarnation}
				c.mu.Unlock()
				return nil, ver, ReadEstimate
			}
			if !e.delta {
				base, hasBase = e.value, true
				break
			}
			deltas = append(deltas, e.value)
		}
		c.mu.Unlock()
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
	c.mu.Lock()
	defer c.mu.Unlock()
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
	uniq := make([]WriteEntry, 0, len(keys))
	for i := range keys {
		if !containsKey(uniq, &keys[i]) {
			uniq = append(uniq, WriteEntry{Key: keys[i]})
		}
	}
	for i := range uniq {
		m.put(uniq[i].Key, mvEntry{txIndex: txIndex, incarnation: -1, estimate: true})
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

// containsKey reports whether a write set holds k (linear: write sets are small).
func containsKey(ws []WriteEntry, k *Key) bool {
	for i := range ws {
		if ws[i].Key == *k {
			return true
		}
	}
	return false
}

// keySet answers membership in a write set: linearly when it is small, through
// a map built on demand when it is not.
type keySet struct {
	ws []WriteEntry
	m  map[Key]struct{}
}

func (s *keySet) has(k *Key) bool {
	if len(s.ws) <= 16 {
		return containsKey(s.ws, k)
	}
	if s.m == nil {
		s.m = make(map[Key]struct{}, len(s.ws))
		for i := range s.ws {
			s.m[s.ws[i].Key] = struct{}{}
		}
	}
	_, ok := s.m[*k]
	return ok
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
	var prev []WriteEntry
	if p := m.lastWrites[v.TxIndex].Load(); p != nil {
		prev = p.writes
	}
	if len(prev) == 0 {
		wroteNewLocation = len(writeSet) > 0
	} else {
		now, before := keySet{ws: writeSet}, keySet{ws: prev}
		for i := range prev {
			if !now.has(&prev[i].Key) {
				m.remove(prev[i].Key, v.TxIndex) // no longer written
			}
		}
		for i := range writeSet {
			if !before.has(&writeSet[i].Key) {
				wroteNewLocation = true
				break
			}
		}
	}
	rs := readSet
	m.lastWrites[v.TxIndex].Store(&txLocations{writes: writeSet})
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
	for i := range p.writes {
		c := m.cell(p.writes[i].Key, false)
		if c == nil {
			continue
		}
		c.mu.Lock()
		j := c.search(txIndex)
		if j < len(c.entries) && c.entries[j].txIndex == txIndex {
			c.entries[j].estimate = true
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
	for i := range *p {
		if !m.validRead(&(*p)[i], txIndex) {
			return false
		}
	}
	return true
}

func (m *MVMemory) validRead(r *ReadDescriptor, txIndex int) bool {
	if r.Resolved {
		val, _, st := m.Resolve(r.Key, txIndex)
		return st == ReadOK && m.ops.Equal(val, r.Value)
	}
	val, v, st := m.Read(r.Key, txIndex)
	switch st {
	case ReadEstimate:
		return false
	case ReadNotFound:
		if !r.Found {
			return true
		}
		if m.ops.Equal == nil {
			return false
		}
		val = m.ops.Base(r.Key)
	case ReadDelta:
		if m.ops.Equal == nil {
			return false
		}
		if val, _, st = m.Resolve(r.Key, txIndex); st != ReadOK {
			return false
		}
	case ReadOK:
		if r.Found && v == r.Version {
			return true
		}
	}
	if m.ops.Equal == nil {
		return false
	}
	want := r.Value
	if !r.Found {
		want = m.ops.Base(r.Key)
	}
	return m.ops.Equal(val, want)
}

// LastWrittenKeys returns the keys written by txIndex's last recorded
// incarnation (in no particular order).
func (m *MVMemory) LastWrittenKeys(txIndex int) []Key {
	p := m.lastWrites[txIndex].Load()
	if p == nil {
		return nil
	}
	keys := make([]Key, len(p.writes))
	for i := range p.writes {
		keys[i] = p.writes[i].Key
	}
	return keys
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
	m.cells(func(c *mvCell) {
		c.mu.Lock()
		if n := len(c.entries); n > 0 {
			out[c.key] = c.entries[n-1].value
		}
		c.mu.Unlock()
	})
	return out
}

// Cells is the number of keys written (including keys whose writes were
// removed since).
func (m *MVMemory) Cells() int {
	m.overflowMu.RLock()
	defer m.overflowMu.RUnlock()
	return int(m.listUsed.Load()) + len(m.overflow)
}

// Versions is the final list of one key's versions, in transaction order.
type Versions struct{ c *mvCell }

// Len is the number of versions.
func (v Versions) Len() int { return len(v.c.entries) }

// At returns version i.
func (v Versions) At(i int) VersionedValue {
	e := &v.c.entries[i]
	return VersionedValue{Version: Version{e.txIndex, e.incarnation}, Value: e.value, Estimate: e.estimate, Delta: e.delta}
}

// Final calls fn for every key some transaction wrote, with the key's
// versions, from workers goroutines: worker w gets the keys whose Ops.Owner
// is w modulo workers (so that related keys are gathered by one worker).
// Call it only once execution is complete; fn must not retain v.
func (m *MVMemory) Final(workers int, fn func(worker int, key *Key, v Versions)) {
	workers = max(1, workers)
	var wg sync.WaitGroup
	n := int(m.listUsed.Load())
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			visit := func(c *mvCell) {
				if len(c.entries) > 0 && int(c.owner)%workers == w {
					fn(w, &c.key, Versions{c})
				}
			}
			for i := 0; i < n; i += listChunk {
				chunk := m.list[i/listChunk].Load()
				for _, l := range chunk[:min(listChunk, n-i)] {
					if int(l.owner)%workers == w {
						visit(l.c)
					}
				}
			}
			for _, c := range m.overflow {
				visit(c)
			}
		}()
	}
	wg.Wait()
}

// FinalWrites returns the final writes of every key in transaction order,
// i.e. the versions of each key as (Version, value) pairs sorted by TxIndex.
func (m *MVMemory) FinalWrites(key Key) []VersionedValue {
	c := m.cell(key, false)
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
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

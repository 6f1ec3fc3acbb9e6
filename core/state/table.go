package state

import "hash/maphash"

// table is the hash table behind the flat accounts and the trie node index:
// open addressing with linear probing, one control byte per slot (empty, or 7
// bits of the key's hash so that most probes skip the key compare) and
// backward-shift deletion, split into shards that each grow by a quarter when
// 85 % full.
//
// It exists for memory. A Go map doubles when full, so at a million entries
// it can sit below half full, and a map of pointers costs a heap object per
// entry that the collector scans. Here slots hold the values themselves, a
// shard's load stays between 68 % and 85 %, and growing rehashes one shard of
// 1/64 of the entries at a time. Keys are hashed with a per-table random seed,
// so chosen keys (addresses) cannot be aimed at one probe run.
//
// A table is not safe for concurrent writes; readers may run concurrently with
// one another (the callers hold a lock around writes).
type table[K comparable, V any] struct {
	seed   maphash.Seed
	shards [tableShards]tableShard[K, V]
	n      int
}

const (
	tableShards    = 64
	tableShardBits = 6
	tableMinSlots  = 8
)

type tableShard[K comparable, V any] struct {
	ctrl  []uint8 // 0: empty; else 0x80 | 7 bits of the hash
	slots []tableSlot[K, V]
	n     int
}

type tableSlot[K comparable, V any] struct {
	key K
	val V
}

func newTable[K comparable, V any]() *table[K, V] {
	return &table[K, V]{seed: maphash.MakeSeed()}
}

// Len is the number of entries.
func (t *table[K, V]) Len() int { return t.n }

// locate hashes key to its shard, control byte and home slot hash bits.
func (t *table[K, V]) locate(key K) (*tableShard[K, V], uint8, uint32) {
	h := maphash.Comparable(t.seed, key)
	return &t.shards[h>>(64-tableShardBits)], uint8(h) | 0x80, uint32(h >> 8)
}

// home is the first slot to probe for hash bits h in a shard of size slots.
func home(h uint32, size int) int { return int((uint64(h) * uint64(size)) >> 32) }

// find returns the slot holding key, or -1.
func (s *tableShard[K, V]) find(key K, tag uint8, h uint32) int {
	size := len(s.ctrl)
	if size == 0 {
		return -1
	}
	for i := home(h, size); ; {
		c := s.ctrl[i]
		if c == 0 {
			return -1
		}
		if c == tag && s.slots[i].key == key {
			return i
		}
		if i++; i == size {
			i = 0
		}
	}
}

// Get returns the value of key and whether it is present.
func (t *table[K, V]) Get(key K) (V, bool) {
	s, tag, h := t.locate(key)
	if i := s.find(key, tag, h); i >= 0 {
		return s.slots[i].val, true
	}
	var zero V
	return zero, false
}

// Ptr returns a pointer to the value of key (valid until the next write), or nil.
func (t *table[K, V]) Ptr(key K) *V {
	s, tag, h := t.locate(key)
	if i := s.find(key, tag, h); i >= 0 {
		return &s.slots[i].val
	}
	return nil
}

// Put sets the value of key.
func (t *table[K, V]) Put(key K, val V) {
	s, tag, h := t.locate(key)
	if i := s.find(key, tag, h); i >= 0 {
		s.slots[i].val = val
		return
	}
	if (s.n+1)*20 > len(s.ctrl)*17 {
		t.grow(s)
	}
	s.place(key, val, tag, h)
	s.n++
	t.n++
}

// place writes an absent key into the first free slot of its probe run.
func (s *tableShard[K, V]) place(key K, val V, tag uint8, h uint32) {
	size := len(s.ctrl)
	i := home(h, size)
	for s.ctrl[i] != 0 {
		if i++; i == size {
			i = 0
		}
	}
	s.ctrl[i] = tag
	s.slots[i] = tableSlot[K, V]{key: key, val: val}
}

// grow rehashes a shard into a quarter more slots.
func (t *table[K, V]) grow(s *tableShard[K, V]) {
	ctrl, slots := s.ctrl, s.slots
	size := max(tableMinSlots, len(ctrl)+len(ctrl)/4)
	s.ctrl, s.slots = make([]uint8, size), make([]tableSlot[K, V], size)
	for i, c := range ctrl {
		if c != 0 {
			_, tag, h := t.locate(slots[i].key)
			s.place(slots[i].key, slots[i].val, tag, h)
		}
	}
}

// Delete removes key, moving later entries of its probe run back so that no
// run is broken by the hole.
func (t *table[K, V]) Delete(key K) {
	s, tag, h := t.locate(key)
	i := s.find(key, tag, h)
	if i < 0 {
		return
	}
	size := len(s.ctrl)
	for j := i; ; {
		if j++; j == size {
			j = 0
		}
		if s.ctrl[j] == 0 {
			break
		}
		// Entry j may fill the hole at i only if its home is not in (i, j]
		// (cyclically): otherwise a lookup starting at its home would stop at i.
		_, _, hj := t.locate(s.slots[j].key)
		hm := home(hj, size)
		inRun := (i < j && i < hm && hm <= j) || (i > j && (hm > i || hm <= j))
		if !inRun {
			s.ctrl[i], s.slots[i] = s.ctrl[j], s.slots[j]
			i = j
		}
	}
	s.ctrl[i] = 0
	s.slots[i] = tableSlot[K, V]{}
	s.n--
	t.n--
}

// Range calls fn for every entry until it returns false. The table must not be
// written during Range.
func (t *table[K, V]) Range(fn func(K, *V) bool) {
	for si := range t.shards {
		s := &t.shards[si]
		for i, c := range s.ctrl {
			if c != 0 && !fn(s.slots[i].key, &s.slots[i].val) {
				return
			}
		}
	}
}

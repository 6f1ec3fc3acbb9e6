package stream

import (
	"cmp"
	"slices"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/kestrel-l2/kestrel/core/chain"
)

// Storage keys of Solidity mappings (ERC-20 balances: keccak256(pad32(holder) ++
// pad32(i))) are 32 random-looking bytes; written as the holder's address code
// and i they cost two bytes, and the decoder recomputes the hash. The encoder
// only sees the keys, so it guesses preimages: it remembers, per contract, the
// few slot indices i that matched before, hashes every dictionary address with
// them, and looks the contract's keys up. When a contract has keys that match
// nothing it probes further indices on a sample of addresses, within a budget.

// derivedSlot is a storage slot whose key is a mapping entry of a dictionary
// address.
type derivedSlot struct {
	acct  int32 // position of the account in the diff
	slot  int32 // position of the slot in the account's storage
	addr  int32 // dictionary index of the entry's address
	index uint8 // the mapping's slot
}

const (
	learnMaxIndex    = 16   // indices probed: 0..15
	learnPerContract = 4    // indices remembered per contract, most recently matched first
	learnGeneration  = 2048 // contracts per generation; two generations are kept
	probeAddrs       = 16   // addresses a probe tries (the first of the dictionary)
	// keccaks per message: a base plus a share per transaction, so that the
	// cost stays a few microseconds per transaction (a keccak of 64 bytes is
	// ~0.3-0.5 us).
	learnBudgetBase  = 256
	learnBudgetPerTx = 24
	probeBudgetBase  = 8
	probeBudgetPerTx = 4
	probeBudgetMax   = probeAddrs * learnMaxIndex
	// minMappingKeyLen: shorter keys are plain slot numbers, not hashes.
	minMappingKeyLen = 9
)

type contractSlots struct {
	idx [learnPerContract]uint8
	n   uint8
}

// touch moves index p to the front, inserting it (and forgetting the least
// recently matched one when full) if absent.
func (c *contractSlots) touch(p uint8) {
	k := slices.Index(c.idx[:c.n], p)
	if k < 0 {
		if c.n < learnPerContract {
			c.n++
		}
		k = int(c.n) - 1
	}
	copy(c.idx[1:k+1], c.idx[:k])
	c.idx[0] = p
}

// slotLearner is the encoder's memory of mapping slots; it is bounded (two
// generations of learnGeneration contracts) and deterministic.
type slotLearner struct {
	cur, old  map[common.Address]*contractSlots
	probeNext uint8

	// Per message.
	tables  [learnMaxIndex]map[common.Hash]int32
	built   [learnMaxIndex]bool
	budget  int
	matched []bool // by slot, accounts one after another (offset)
	offset  []int  // by account position
	rank    []int  // by account position: place in the encoding order
	found   []bool // by account position
	pend    []pendingKey
	pendIdx map[common.Hash]int32 // key to its first entry in pend
	hasher  crypto.KeccakState
	buf     [64]byte
}

func (l *slotLearner) init() {
	l.cur = make(map[common.Address]*contractSlots)
	l.old = make(map[common.Address]*contractSlots)
	l.hasher = crypto.NewKeccakState()
	l.pendIdx = make(map[common.Hash]int32)
}

// pendingKey is a slot whose key may be a mapping entry not yet derived.
type pendingKey struct{ acct, slot int32 }

func (l *slotLearner) get(a common.Address, create bool) *contractSlots {
	if c := l.cur[a]; c != nil {
		return c
	}
	c := l.old[a]
	if c != nil {
		delete(l.old, a)
	} else if !create {
		return nil
	} else {
		c = &contractSlots{}
	}
	if len(l.cur) >= learnGeneration {
		l.old, l.cur = l.cur, make(map[common.Address]*contractSlots, learnGeneration)
	}
	l.cur[a] = c
	return c
}

// table maps keccak256(pad32(dict[j]) ++ pad32(p)) to j, or is nil when the
// message's budget cannot pay for it.
func (l *slotLearner) table(p uint8, dict []common.Address) map[common.Hash]int32 {
	if l.built[p] {
		return l.tables[p]
	}
	if l.budget < len(dict) {
		return nil
	}
	l.budget -= len(dict)
	t := l.tables[p]
	if t == nil {
		t = make(map[common.Hash]int32, len(dict))
		l.tables[p] = t
	} else {
		clear(t)
	}
	var h common.Hash
	for j, a := range dict {
		mappingKeyInto(l.hasher, &l.buf, &h, a, uint64(p))
		t[h] = int32(j)
	}
	l.built[p] = true
	return t
}

func candidateKey(k *common.Hash) bool { return sigLen(k) >= minMappingKeyLen }

// match derives the unmatched slots of account ai found in table t (index p),
// reporting whether any was.
func (l *slotLearner) match(ai int, a *chain.AccountDiff, p uint8, t map[common.Hash]int32, out []derivedSlot) ([]derivedSlot, bool) {
	hit := false
	m := l.matched[l.offset[ai]:]
	for j := range a.Storage {
		if m[j] || !candidateKey(&a.Storage[j].Key) {
			continue
		}
		if x, ok := t[a.Storage[j].Key]; ok {
			m[j], hit = true, true
			out = append(out, derivedSlot{acct: int32(ai), slot: int32(j), addr: x, index: p})
		}
	}
	return out, hit
}

// derive appends the derived slots of the diff's accounts to out, grouped by
// account in encoding order and sorted by (address index, index) within each.
func (l *slotLearner) derive(accts []chain.AccountDiff, order []acctRef, dict []common.Address, ntx int, out []derivedSlot) []derivedSlot {
	l.built = [learnMaxIndex]bool{}
	l.budget = learnBudgetBase + learnBudgetPerTx*ntx
	l.offset, l.rank, l.found = l.offset[:0], l.rank[:0], l.found[:0]
	total := 0
	for i := range accts {
		l.offset = append(l.offset, total)
		total += len(accts[i].Storage)
		l.rank = append(l.rank, 0)
		l.found = append(l.found, false)
	}
	if total == 0 || len(dict) == 0 {
		return out
	}
	l.matched = slices.Grow(l.matched[:0], total)[:total]
	clear(l.matched)
	for k, o := range order {
		l.rank[o.pos] = k
	}

	// Known indices.
	l.pend = l.pend[:0]
	clear(l.pendIdx)
	for _, o := range order {
		a := &accts[o.pos]
		if len(a.Storage) == 0 {
			continue
		}
		if c := l.get(a.Address, false); c != nil {
			var hits [learnPerContract]bool
			for k := 0; k < int(c.n); k++ {
				if t := l.table(c.idx[k], dict); t != nil {
					out, hits[k] = l.match(o.pos, a, c.idx[k], t, out)
				}
			}
			idx := c.idx
			for k := int(c.n) - 1; k >= 0; k-- {
				if hits[k] {
					c.touch(idx[k])
				}
			}
		}
		m := l.matched[l.offset[o.pos]:]
		for j := range a.Storage {
			if k := a.Storage[j].Key; !m[j] && candidateKey(&k) {
				if _, dup := l.pendIdx[k]; !dup {
					l.pendIdx[k] = int32(len(l.pend))
				}
				l.pend = append(l.pend, pendingKey{acct: int32(o.pos), slot: int32(j)})
			}
		}
	}

	// Probes: a few indices on a sample of addresses, resuming where the last
	// message stopped.
	if len(l.pend) > 0 {
		budget := min(probeBudgetMax, probeBudgetBase+probeBudgetPerTx*ntx)
		sample := dict[:min(probeAddrs, len(dict))]
		var h common.Hash
		for step := 0; step < learnMaxIndex; step++ {
			p := l.probeNext
			if !l.built[p] && budget < len(sample) {
				break
			}
			l.probeNext = (p + 1) % learnMaxIndex
			clear(l.found)
			any := false
			if l.built[p] {
				for _, pk := range l.pend {
					if l.matched[l.offset[pk.acct]+int(pk.slot)] {
						continue
					}
					if _, ok := l.tables[p][accts[pk.acct].Storage[pk.slot].Key]; ok {
						l.found[pk.acct], any = true, true
					}
				}
			} else {
				budget -= len(sample)
				for _, a := range sample {
					mappingKeyInto(l.hasher, &l.buf, &h, a, uint64(p))
					if pi, ok := l.pendIdx[h]; ok {
						pk := l.pend[pi]
						if !l.matched[l.offset[pk.acct]+int(pk.slot)] {
							l.found[pk.acct], any = true, true
						}
					}
				}
			}
			if !any {
				continue
			}
			t := l.table(p, dict)
			for _, o := range order {
				if !l.found[o.pos] {
					continue
				}
				a := &accts[o.pos]
				l.get(a.Address, true).touch(p)
				if t != nil {
					out, _ = l.match(o.pos, a, p, t, out)
				}
			}
		}
	}
	slices.SortFunc(out, func(x, y derivedSlot) int {
		if c := cmp.Compare(l.rank[x.acct], l.rank[y.acct]); c != 0 {
			return c
		}
		if c := cmp.Compare(x.addr, y.addr); c != 0 {
			return c
		}
		return cmp.Compare(x.index, y.index)
	})
	return out
}

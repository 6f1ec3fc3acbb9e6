package mempool

import (
	"sort"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/common"
	"github.com/holiman/uint256"
)

// account holds one sender's transactions.
//
// list is sorted by nonce. Its prefix list[:contig] has the nonces base,
// base+1, ...; list[:ready] (ready <= contig) is the part of that run whose
// fee caps cover the base fee: what the sender can execute now. That prefix is
// published in run for Ready, which reads it without the account's lock.
//
// Published slices share list's backing array, so the elements a reader may
// see must never be written: list[:pubLen] bounds everything published on the
// current array, and a write below pubLen first copies the array (cow). Only
// front removal (reslicing) is free, since it writes nothing.
type account struct {
	addr common.Address

	// Guarded by the sender shard's lock.
	list     []*Tx
	base     uint64 // state nonce at the last sync
	contig   int
	ready    int
	pubLen   int
	spent    uint256.Int // sum of the costs in list
	pubHead  *Tx         // head the ready heap holds for this account, nil if absent
	pubReady int         // ready count the ready heap holds

	run atomic.Pointer[[]*Tx] // published list[:ready]

	// Guarded by Pool.readyMu.
	heapIdx int
}

func newAccount(addr common.Address, base uint64) *account {
	return &account{addr: addr, base: base, heapIdx: -1}
}

// search returns the index of the first transaction with nonce >= n.
func (a *account) search(n uint64) int {
	return sort.Search(len(a.list), func(i int) bool { return a.list[i].nonce >= n })
}

// cow moves list to a private array, optionally with room for one more.
func (a *account) cow(extra int) {
	nl := make([]*Tx, len(a.list), len(a.list)+extra+len(a.list)/4+2)
	copy(nl, a.list)
	a.list = nl
	a.pubLen = 0
}

func (a *account) insertAt(i int, t *Tx) {
	if i < a.pubLen {
		a.cow(1)
	}
	a.list = append(a.list, nil)
	copy(a.list[i+1:], a.list[i:])
	a.list[i] = t
}

func (a *account) replaceAt(i int, t *Tx) {
	if i < a.pubLen {
		a.cow(0)
	}
	a.list[i] = t
}

func (a *account) removeAt(i int) {
	switch {
	case i == 0:
		a.list = a.list[1:]
		a.pubLen = max(a.pubLen-1, 0)
		return
	case i < a.pubLen:
		a.cow(0)
	}
	copy(a.list[i:], a.list[i+1:])
	a.list[len(a.list)-1] = nil
	a.list = a.list[:len(a.list)-1]
}

// dropFront removes the first k transactions.
func (a *account) dropFront(k int) {
	a.list = a.list[k:]
	a.pubLen = max(a.pubLen-k, 0)
	if len(a.list) == 0 {
		a.list = nil // let the old array go
		a.pubLen = 0
	}
}

// rescan recomputes contig and ready for a list whose entries before from
// are unchanged since the last rescan (from = 0 recomputes everything).
func (a *account) rescan(from int, baseFee *uint256.Int) {
	if from > a.contig {
		return
	}
	c := from
	for c < len(a.list) && a.list[c].nonce == a.base+uint64(c) {
		c++
	}
	a.contig = c
	if a.ready >= from {
		r := from
		for r < c && !a.list[r].feeCap.Lt(baseFee) {
			r++
		}
		a.ready = r
	}
}

// publish makes list[:ready] visible to Ready.
func (a *account) publish() {
	cur := a.run.Load()
	if a.ready == 0 {
		if cur != nil {
			a.run.Store(nil)
		}
		return
	}
	if cur != nil && len(*cur) == a.ready && &(*cur)[0] == &a.list[0] {
		return
	}
	s := a.list[:a.ready:a.ready]
	a.run.Store(&s)
	a.pubLen = max(a.pubLen, a.ready)
}

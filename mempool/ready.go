package mempool

import (
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"
)

// The ready set is a binary max-heap of the accounts that have an executable
// transaction, keyed by their head transaction's effective tip (then arrival).
// Ready walks it lazily: it pops the best of a small candidate heap seeded
// with the root, and each popped heap node offers its two children, each
// taken transaction its sender's next nonce. The walk costs O(k log k) for k
// returned transactions whatever the size of the pool, and leaves the ready
// heap untouched.

// better reports whether (tipA, seqA) orders before (tipB, seqB).
func better(tipA *uint256.Int, seqA uint64, tipB *uint256.Int, seqB uint64) bool {
	if c := tipA.Cmp(tipB); c != 0 {
		return c > 0
	}
	return seqA < seqB
}

// effTip sets dst to min(tipCap, feeCap-baseFee); feeCap must be >= baseFee.
func effTip(dst *uint256.Int, t *Tx, baseFee *uint256.Int) {
	dst.Sub(&t.feeCap, baseFee)
	if t.tipCap.Lt(dst) {
		dst.Set(&t.tipCap)
	}
}

// readyHeap is guarded by Pool.readyMu.
type readyHeap struct {
	items []*account
}

func (h *readyHeap) less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	return better(&a.keyTip, a.keySeq, &b.keyTip, b.keySeq)
}

func (h *readyHeap) swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].heapIdx = i
	h.items[j].heapIdx = j
}

func (h *readyHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

func (h *readyHeap) down(i int) bool {
	i0, n := i, len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && h.less(r, l) {
			j = r
		}
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}

func (h *readyHeap) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

// set inserts a or updates its position after a key change.
func (h *readyHeap) set(a *account, sift bool) {
	if a.heapIdx < 0 {
		a.heapIdx = len(h.items)
		h.items = append(h.items, a)
		if sift {
			h.up(a.heapIdx)
		}
		return
	}
	if sift {
		h.fix(a.heapIdx)
	}
}

func (h *readyHeap) remove(a *account, sift bool) {
	i, n := a.heapIdx, len(h.items)-1
	if i < 0 {
		return
	}
	if i != n {
		h.swap(i, n)
	}
	h.items[n] = nil
	h.items = h.items[:n]
	a.heapIdx = -1
	if i != n && sift {
		h.fix(i)
	}
}

func (h *readyHeap) init() {
	for i := len(h.items)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

// syncReady brings a's ready-heap entry in line with its ready run. Called
// with a's shard lock held.
func (p *Pool) syncReady(a *account, env *envState) {
	var head *Tx
	if a.ready > 0 {
		head = a.list[0]
	}
	if head == a.pubHead {
		return
	}
	p.readyMu.Lock()
	if head == nil {
		p.heap.remove(a, true)
	} else {
		effTip(&a.keyTip, head, &env.baseFee)
		a.keySeq = head.seq
		p.heap.set(a, true)
	}
	p.readyMu.Unlock()
	a.pubHead = head
}

// candidate is a transaction Ready may take next: the head of the ready heap's
// node (node >= 0), or the next nonce of a sender already taken from.
type candidate struct {
	tip  uint256.Int
	seq  uint64
	run  []*Tx
	idx  int
	node int
}

type candHeap []candidate

func (h candHeap) less(i, j int) bool {
	return better(&h[i].tip, h[i].seq, &h[j].tip, h[j].seq)
}

func (h *candHeap) push(c candidate) {
	*h = append(*h, c)
	s := *h
	j := len(s) - 1
	for j > 0 {
		i := (j - 1) / 2
		if !s.less(j, i) {
			break
		}
		s[i], s[j] = s[j], s[i]
		j = i
	}
}

func (h *candHeap) pop() candidate {
	s := *h
	n := len(s) - 1
	top := s[0]
	s[0] = s[n]
	s[n] = candidate{}
	s = s[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && s.less(r, l) {
			j = r
		}
		if !s.less(j, i) {
			break
		}
		s[i], s[j] = s[j], s[i]
		i = j
	}
	*h = s
	return top
}

// Ready returns up to max transactions, using at most gas gas in total, that
// are executable now: for every sender the nonce-contiguous run starting at
// its state nonce whose fee caps cover the base fee. Senders are interleaved
// by effective tip (highest first), ties going to the earlier arrival; a
// sender's transactions keep nonce order. A transaction that does not fit in
// the remaining gas ends its sender's run for this call. Ready does not
// remove anything: report the outcome with Included and Drop. The returned
// transactions are shared with the pool and must not be modified.
func (p *Pool) Ready(max int, gas uint64) []*Tx {
	if max <= 0 || gas < params.TxGas {
		return nil
	}
	env := p.env.Load()
	baseFee := &env.baseFee

	p.readyMu.Lock()
	defer p.readyMu.Unlock()
	nodes := p.heap.items
	if len(nodes) == 0 {
		return nil
	}
	out := make([]*Tx, 0, min(max, len(nodes)*2))
	cands := p.cands[:0]
	pushNode := func(i int) {
		a := nodes[i]
		c := candidate{tip: a.keyTip, seq: a.keySeq, node: i}
		if r := a.run.Load(); r != nil {
			c.run = *r
		}
		cands.push(c)
	}
	pushNode(0)
	for len(cands) > 0 && len(out) < max {
		c := cands.pop()
		if c.node >= 0 {
			if l := 2*c.node + 1; l < len(nodes) {
				pushNode(l)
				if l+1 < len(nodes) {
					pushNode(l + 1)
				}
			}
		}
		if c.idx >= len(c.run) {
			continue
		}
		t := c.run[c.idx]
		if t.gas > gas || t.feeCap.Lt(baseFee) {
			continue // the sender can't go on in this call
		}
		out = append(out, t)
		gas -= t.gas
		if gas < params.TxGas {
			break
		}
		if next := c.idx + 1; next < len(c.run) {
			nt := c.run[next]
			if nt.feeCap.Lt(baseFee) {
				continue
			}
			nc := candidate{seq: nt.seq, run: c.run, idx: next, node: -1}
			effTip(&nc.tip, nt, baseFee)
			cands.push(nc)
		}
	}
	clear(cands)
	p.cands = cands[:0]
	return out
}

package mempool

import (
	"math"

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

// A ranking key is an effective tip, then arrival (seq). Tips are saturated
// to 64 bits: effective tips above 2^64-1 wei (18.4 ETH per gas, a tip of
// 387k ETH for a plain transfer) rank equal, by arrival.

func tip64(tip *uint256.Int) uint64 {
	if tip.IsUint64() {
		return tip.Uint64()
	}
	return math.MaxUint64
}

// effTip sets dst to min(tipCap, feeCap-baseFee); feeCap must be >= baseFee.
func effTip(dst *uint256.Int, t *Tx, baseFee *uint256.Int) {
	dst.Sub(&t.feeCap, baseFee)
	if t.tipCap.Lt(dst) {
		dst.Set(&t.tipCap)
	}
}

// The ready heap keeps its entries in two parallel arrays: the ranking keys,
// which sifting and Ready's walk read for many nodes, and the rest, which
// Ready reads only for the nodes it takes from. The rest caches what Ready
// needs for a sender with a single ready transaction, so that Ready reads no
// other memory for it.
type heapKey struct {
	tip uint64
	seq uint64
}

type heapItem struct {
	head   *Tx
	a      *account
	gas    uint64 // head.gas
	feeCap uint64 // head.feeCap, saturated
	runLen int    // a.ready
}

// readyHeap is guarded by Pool.readyMu.
type readyHeap struct {
	keys  []heapKey
	items []heapItem
}

func (h *readyHeap) less(i, j int) bool {
	x, y := &h.keys[i], &h.keys[j]
	return x.tip > y.tip || (x.tip == y.tip && x.seq < y.seq)
}

func (h *readyHeap) swap(i, j int) {
	h.keys[i], h.keys[j] = h.keys[j], h.keys[i]
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].a.heapIdx = i
	h.items[j].a.heapIdx = j
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

// set inserts a or updates its entry for its ready run's head and length,
// restoring the heap order if sift is set.
func (h *readyHeap) set(a *account, head *Tx, runLen int, baseFee *uint256.Int, sift bool) {
	var tip uint256.Int
	effTip(&tip, head, baseFee)
	key := heapKey{tip: tip64(&tip), seq: head.seq}
	item := heapItem{gas: head.gas, feeCap: tip64(&head.feeCap), head: head, a: a, runLen: runLen}
	if a.heapIdx < 0 {
		a.heapIdx = len(h.items)
		h.keys = append(h.keys, key)
		h.items = append(h.items, item)
		if sift {
			h.up(a.heapIdx)
		}
		return
	}
	h.keys[a.heapIdx] = key
	h.items[a.heapIdx] = item
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
	h.items[n] = heapItem{}
	h.items = h.items[:n]
	h.keys = h.keys[:n]
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
	if head == a.pubHead && a.ready == a.pubReady {
		return
	}
	p.readyMu.Lock()
	switch {
	case head == nil:
		p.heap.remove(a, true)
	case head != a.pubHead || a.heapIdx < 0:
		p.heap.set(a, head, a.ready, &env.baseFee, true)
	default:
		p.heap.items[a.heapIdx].runLen = a.ready
	}
	p.readyMu.Unlock()
	a.pubHead, a.pubReady = head, a.ready
}

// candidate is a transaction Ready may take next: the head of the ready
// heap's node id (id >= 0), or runs[^id][idx], the next nonce of a sender
// already taken from.
type candidate struct {
	tip uint64
	seq uint64
	id  int32
	idx int32
}

// readyScratch is Ready's reusable working memory, guarded by readyMu.
type readyScratch struct {
	cands []candidate
	runs  [][]*Tx
	tip   uint256.Int
}

func (s *readyScratch) less(x, y *candidate) bool {
	return x.tip > y.tip || (x.tip == y.tip && x.seq < y.seq)
}

func (s *readyScratch) push(c candidate) {
	s.cands = append(s.cands, c)
	h := s.cands
	j := len(h) - 1
	for j > 0 {
		i := (j - 1) / 2
		if !s.less(&c, &h[i]) {
			break
		}
		h[j] = h[i]
		j = i
	}
	h[j] = c
}

// replaceTop replaces the best candidate with c.
func (s *readyScratch) replaceTop(c candidate) {
	h := s.cands
	n := len(h)
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		if r := l + 1; r < n && s.less(&h[r], &h[l]) {
			l = r
		}
		if !s.less(&h[l], &c) {
			break
		}
		h[i] = h[l]
		i = l
	}
	h[i] = c
}

// pop removes the best candidate. It moves the hole at the root down to a
// leaf along the better children, then sifts the last element up from there
// (about half the comparisons of a plain sift-down).
func (s *readyScratch) pop() candidate {
	h := s.cands
	top := h[0]
	n := len(h) - 1
	last := h[n]
	h = h[:n]
	s.cands = h
	if n == 0 {
		return top
	}
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		if r := l + 1; r < n && s.less(&h[r], &h[l]) {
			l = r
		}
		h[i] = h[l]
		i = l
	}
	for i > 0 {
		up := (i - 1) / 2
		if !s.less(&last, &h[up]) {
			break
		}
		h[i] = h[up]
		i = up
	}
	h[i] = last
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
	keys, items := p.heap.keys, p.heap.items
	if len(keys) == 0 {
		return nil
	}
	s := &p.scratch
	baseFee64 := tip64(baseFee)
	out := make([]*Tx, 0, min(max, int(p.pending.Load())+1))
	s.push(candidate{tip: keys[0].tip, seq: keys[0].seq, id: 0})
	for len(s.cands) > 0 && len(out) < max {
		c := s.cands[0]
		// The candidates that replace c: its heap children, its sender's next.
		var (
			add  [3]candidate
			nadd int
		)
		if c.id >= 0 {
			if l := 2*int(c.id) + 1; l < len(keys) {
				add[0] = candidate{tip: keys[l].tip, seq: keys[l].seq, id: int32(l)}
				nadd = 1
				if l++; l < len(keys) {
					add[1] = candidate{tip: keys[l].tip, seq: keys[l].seq, id: int32(l)}
					nadd = 2
				}
			}
		}
		var (
			run  []*Tx
			t    *Tx
			tgas uint64
		)
		if c.id >= 0 {
			// Taking a head reads only the heap's own memory. Heads in the
			// heap cover the base fee, unless SetEnv is running right now.
			it := &items[c.id]
			if it.gas <= gas && it.feeCap >= baseFee64 {
				t, tgas = it.head, it.gas
				if it.runLen > 1 {
					if r := it.a.run.Load(); r != nil && len(*r) > 1 && (*r)[0].nonce == t.nonce {
						run = *r
					}
				}
			}
		} else {
			run = s.runs[^c.id]
			if t = run[c.idx]; t.gas > gas || t.feeCap.Lt(baseFee) {
				t = nil
			} else {
				tgas = t.gas
			}
		}
		// t == nil: the sender can't go on in this call.
		if t != nil {
			out = append(out, t)
			gas -= tgas
			if gas < params.TxGas {
				break
			}
			if next := int(c.idx) + 1; next < len(run) && !run[next].feeCap.Lt(baseFee) {
				nt := run[next]
				id := c.id
				if id >= 0 {
					id = ^int32(len(s.runs))
					s.runs = append(s.runs, run)
				}
				effTip(&s.tip, nt, baseFee)
				add[nadd] = candidate{tip: tip64(&s.tip), seq: nt.seq, id: id, idx: int32(next)}
				nadd++
			}
		}
		if nadd == 0 {
			s.pop()
			continue
		}
		// The best replacement takes c's place at the top: it ranks close to c,
		// so it sifts down only a little.
		best := 0
		for i := 1; i < nadd; i++ {
			if s.less(&add[i], &add[best]) {
				best = i
			}
		}
		s.replaceTop(add[best])
		for i := range nadd {
			if i != best {
				s.push(add[i])
			}
		}
	}
	s.cands = s.cands[:0]
	clear(s.runs)
	s.runs = s.runs[:0]
	return out
}

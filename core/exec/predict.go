package exec

import (
	"encoding/binary"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/kestrel-l2/kestrel/core/blockstm"
)

// Access-list inference (SALI). Before a request runs, the predictor guesses
// which locations each transaction will write, from:
//   - its sender: the nonce and balance, when the sender has another
//     transaction later in the request (a nonce chain);
//   - its recipient, when the recipient sends a later transaction (whose
//     balance read would see this payment);
//   - its EIP-2930 access list (storage keys it declares);
//   - what earlier executions of the same (contract, 4-byte selector) wrote
//     in most of their runs: the contract's "hot" slots, such as an AMM
//     pool's reserves, learned online in bounded memory.
// Only locations that at least two transactions of the request are predicted
// to touch are kept: a prediction that conflicts with nothing is useless.
// Predicted writes start as ESTIMATEs in the multi-version memory, and a
// transaction waits, before executing at all, while a lower transaction's
// predicted write to a location it is predicted to touch is pending. Likely
// conflicting transactions are so grouped into chains that run in order,
// while the independent ones run beside them, instead of executing on stale
// values and aborting at validation.

// DefaultPredictorEntries bounds the (contract, selector) pairs learned.
const DefaultPredictorEntries = 4096

const (
	predictMaxKeys   = 32  // learned locations per (contract, selector)
	predictDecayRuns = 256 // counts are halved every this many learned runs
	predictWarmRuns  = 64  // learn from every run until then, then sample
	predictSample    = 8   // learn from one run in this many once warm
)

type selector struct {
	to  common.Address
	sel [4]byte
}

type selStats struct {
	runs  int
	count map[blockstm.Key]int
	seen  uint64 // runs observed, sampled or not
}

// predictor learns the hot locations of (contract, selector) pairs. Memory
// is bounded by two generations of at most max/2 entries each.
type predictor struct {
	mu        sync.Mutex
	max       int
	cur, prev map[selector]*selStats
}

func newPredictor(max int) *predictor {
	if max <= 0 {
		max = DefaultPredictorEntries
	}
	return &predictor{max: max, cur: make(map[selector]*selStats), prev: make(map[selector]*selStats)}
}

func selectorOf(tx Tx) (selector, bool) {
	to, data := txTo(tx), txData(tx)
	if to == nil || len(data) < 4 {
		return selector{}, false
	}
	var s selector
	s.to = *to
	copy(s.sel[:], data[:4])
	return s, true
}

// lookup returns the stats of s, promoting them from the previous
// generation; create makes them if absent. Called with mu held.
func (p *predictor) lookup(s selector, create bool) *selStats {
	if st := p.cur[s]; st != nil {
		return st
	}
	st := p.prev[s]
	if st == nil && !create {
		return nil
	}
	if st != nil {
		delete(p.prev, s)
	} else {
		st = &selStats{count: make(map[blockstm.Key]int)}
	}
	if len(p.cur) >= p.max/2 {
		p.prev, p.cur = p.cur, make(map[selector]*selStats)
	}
	p.cur[s] = st
	return st
}

// Entries is the number of (contract, selector) pairs the predictor holds.
func (p *predictor) entries() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.cur) + len(p.prev)
}

// hot returns the locations most runs of s wrote.
func (p *predictor) hot(s selector) []blockstm.Key {
	st := p.lookup(s, false)
	if st == nil || st.runs < 2 {
		return nil
	}
	var out []blockstm.Key
	for k, c := range st.count {
		if 2*c > st.runs {
			out = append(out, k)
		}
	}
	return out
}

// predict returns the predicted writes of every task (off system tasks
// first, with none), per transaction the locations to wait for, and the
// length of the longest chain of predicted dependencies (a transaction
// depends on the closest lower one predicted to write a location it touches).
func (p *predictor) predict(txs []Tx, off int, coinbase common.Address) (writes [][]blockstm.Key, wait [][]blockstm.Key, chain int) {
	n := len(txs)
	guess := make([][]blockstm.Key, n)
	uses := make(map[blockstm.Key]int)
	note := func(i int, k blockstm.Key) {
		guess[i] = append(guess[i], k)
		uses[k]++
	}
	// Senders with several transactions, and recipients that send later:
	// per sender, its transaction count and how many were seen so far.
	senders := newAddrCounts(n)
	for _, tx := range txs {
		senders.get(txSender(tx), true).total++
	}
	hot := make(map[selector][]blockstm.Key) // per request: one lookup per (contract, selector)
	p.mu.Lock()
	for i, tx := range txs {
		from := txSender(tx)
		c := senders.get(from, false)
		c.seen++
		if c.total > 1 {
			note(i, accountKey(kindNonce, from))
			note(i, accountKey(kindBalance, from))
		}
		if to := txTo(tx); to != nil && *to != coinbase {
			if r := senders.get(*to, false); r != nil && r.total > r.seen {
				note(i, accountKey(kindBalance, *to))
			}
		}
		for _, t := range txAccessList(tx) {
			for _, k := range t.StorageKeys {
				note(i, storageKey(t.Address, k))
			}
		}
		if s, ok := selectorOf(tx); ok {
			keys, ok := hot[s]
			if !ok {
				keys = p.hot(s)
				hot[s] = keys
			}
			for _, k := range keys {
				note(i, k)
			}
		}
	}
	p.mu.Unlock()
	found := false
	depth := make(map[blockstm.Key]int)
	for i := range guess {
		kept := guess[i][:0]
		d := 0
		for _, k := range guess[i] {
			if uses[k] > 1 {
				kept = append(kept, k)
				d = max(d, depth[k])
			}
		}
		d++
		for _, k := range kept {
			depth[k] = d
		}
		chain = max(chain, d)
		guess[i] = kept
		found = found || len(kept) > 0
	}
	if !found {
		return nil, nil, 1
	}
	writes = make([][]blockstm.Key, off+n)
	copy(writes[off:], guess)
	return writes, guess, chain
}

// learn records what the final incarnations wrote.
func (p *predictor) learn(txs []Tx, results []blockstm.TxResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, tx := range txs {
		s, ok := selectorOf(tx)
		if !ok {
			continue
		}
		st := p.lookup(s, true)
		st.seen++
		if st.runs >= predictWarmRuns && st.seen%predictSample != 0 {
			continue
		}
		if o, ok := results[i].Output.(*txOutput); !ok || o.err != nil {
			continue
		}
		st.runs++
		for _, w := range results[i].Writes {
			// Deltas never conflict, and existence is written blindly by
			// payments: neither is worth holding a transaction back for.
			if w.Delta || w.Key.Kind == kindExist {
				continue
			}
			if _, ok := st.count[w.Key]; ok || len(st.count) < predictMaxKeys {
				st.count[w.Key]++
			}
		}
		if st.runs%predictDecayRuns == 0 {
			for k, c := range st.count {
				if c /= 2; c == 0 {
					delete(st.count, k)
				} else {
					st.count[k] = c
				}
			}
			st.runs /= 2
		}
	}
}

func txSender(tx Tx) common.Address {
	if tx.Msg != nil {
		return tx.Msg.From
	}
	return tx.Sender
}

func txTo(tx Tx) *common.Address {
	if tx.Msg != nil {
		return tx.Msg.To
	}
	return tx.Tx.To()
}

func txData(tx Tx) []byte {
	if tx.Msg != nil {
		return tx.Msg.Data
	}
	return tx.Tx.Data()
}

func txAccessList(tx Tx) types.AccessList {
	if tx.Msg != nil {
		return tx.Msg.AccessList
	}
	return tx.Tx.AccessList()
}

// addrCounts counts transactions per address in an open-addressing table
// sized for the request (a Go map of 10,000 addresses costs milliseconds).
type addrCounts struct {
	slots []addrCount
	shift uint
}

type addrCount struct {
	addr        common.Address
	used        bool
	total, seen int32
}

func newAddrCounts(n int) *addrCounts {
	size, shift := 16, uint(60)
	for size < 2*n {
		size, shift = size<<1, shift-1
	}
	return &addrCounts{slots: make([]addrCount, size), shift: shift}
}

// get returns the address's counters, adding them when add is set (nil when
// absent and not added).
func (c *addrCounts) get(a common.Address, add bool) *addrCount {
	h := (binary.LittleEndian.Uint64(a[:8]) ^ binary.LittleEndian.Uint64(a[12:])) * 0x9E3779B97F4A7C15
	mask := len(c.slots) - 1
	for i := int(h >> c.shift); ; i = (i + 1) & mask {
		s := &c.slots[i]
		if !s.used {
			if !add {
				return nil
			}
			s.used, s.addr = true, a
			return s
		}
		if s.addr == a {
			return s
		}
	}
}

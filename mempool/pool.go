// Package mempool is the sequencer's transaction pool.
//
// Ingress (DecodeBatch, Add) validates transactions statelessly and against
// the pending state, with go-ethereum's error values and messages. Sender
// recovery, the dominant cost, runs in parallel. Accounts are sharded by
// sender, each shard with its own lock, so many RPC goroutines can add at
// once. Every sender keeps a nonce-sorted list whose executable prefix is
// published lock-free, and a heap of the senders that have one orders them by
// effective tip, so Ready (called every mini-block) costs O(k log k) for k
// returned transactions, independent of the pool's size.
//
// Lock order: sender shard, then readyMu / hash shard / tombMu (never two of
// the latter at once). Ready takes readyMu only.
package mempool

import (
	"errors"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/log"
	"github.com/holiman/uint256"
)

const (
	numSenderShards = 256
	numHashShards   = 256

	// A replaced transaction's hash is remembered (for Included) for between
	// tombstoneRotate and twice as many Included calls.
	tombstoneRotate = 128
)

type senderShard struct {
	mu       sync.Mutex
	accounts map[common.Address]*account
	_        [48]byte // keep shards on separate cache lines
}

type hashShard struct {
	mu  sync.RWMutex
	txs map[common.Hash]*Tx
	_   [32]byte
}

// Pool is the transaction pool. All methods are safe for concurrent use.
type Pool struct {
	cfg     Config
	state   State
	signer  types.Signer
	chainID *big.Int

	envMu sync.Mutex // serialises SetEnv
	env   atomic.Pointer[envState]

	senders [numSenderShards]senderShard
	hashes  [numHashShards]hashShard

	readyMu sync.Mutex
	heap    readyHeap
	scratch readyScratch

	count   atomic.Int64 // transactions in the pool
	pending atomic.Int64 // of which executable now (sum of account.ready)
	seq     atomic.Uint64

	// Hashes of replaced transactions, so Included can find their sender if
	// the replaced version is the one that got executed.
	tombMu    sync.Mutex
	tombCur   map[common.Hash]common.Address
	tombOld   map[common.Hash]common.Address
	tombCalls int
}

// New creates a pool validating against state in the environment env.
func New(cfg Config, env Env, state State) (*Pool, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if state == nil {
		return nil, errors.New("mempool: nil state")
	}
	es, err := newEnvState(env)
	if err != nil {
		return nil, err
	}
	id := env.ChainConfig.ChainID
	if id == nil || id.Sign() <= 0 {
		return nil, fmt.Errorf("mempool: invalid chain id %v", id)
	}
	p := &Pool{
		cfg:     cfg,
		state:   state,
		signer:  types.LatestSignerForChainID(id),
		chainID: new(big.Int).Set(id),
		tombCur: make(map[common.Hash]common.Address),
		tombOld: make(map[common.Hash]common.Address),
	}
	for i := range p.senders {
		p.senders[i].accounts = make(map[common.Address]*account)
	}
	for i := range p.hashes {
		p.hashes[i].txs = make(map[common.Hash]*Tx)
	}
	p.env.Store(es)
	return p, nil
}

func (p *Pool) shardIndex(addr common.Address) int {
	return int(uint(addr[7]^addr[13]^addr[19]) % numSenderShards)
}

func (p *Pool) shard(addr common.Address) *senderShard {
	return &p.senders[p.shardIndex(addr)]
}

func (p *Pool) hashShard(h common.Hash) *hashShard {
	return &p.hashes[uint(h[0])%numHashShards]
}

// Get returns the pooled transaction with the given hash, or nil.
func (p *Pool) Get(hash common.Hash) *Tx {
	s := p.hashShard(hash)
	s.mu.RLock()
	t := s.txs[hash]
	s.mu.RUnlock()
	return t
}

func (p *Pool) index(t *Tx) {
	s := p.hashShard(t.Hash)
	s.mu.Lock()
	s.txs[t.Hash] = t
	s.mu.Unlock()
}

func (p *Pool) unindex(t *Tx) {
	s := p.hashShard(t.Hash)
	s.mu.Lock()
	delete(s.txs, t.Hash)
	s.mu.Unlock()
}

// Stats returns the number of executable (pending) and other (queued)
// transactions.
func (p *Pool) Stats() (pending, queued int) {
	n, pend := p.count.Load(), p.pending.Load()
	return int(pend), int(max(n-pend, 0))
}

// PendingNonce returns the nonce following the sender's nonce-contiguous run
// in the pool (the state nonce if the run is empty), and whether the pool
// holds any transaction of the sender.
func (p *Pool) PendingNonce(addr common.Address) (uint64, bool) {
	sh := p.shard(addr)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	a := sh.accounts[addr]
	if a == nil {
		return 0, false
	}
	return a.base + uint64(a.contig), true
}

// Env returns the environment the pool validates against.
func (p *Pool) Env() Env {
	return p.env.Load().Env
}

// Add validates the transactions, statelessly and against the pending state,
// and inserts those that pass. It returns an error (or nil) per transaction.
// Transactions from this pool's DecodeBatch are trusted for their encoding,
// hash and sender; for any other *Tx only Tx (and Added, if set) are used and
// the rest is recomputed, including sender recovery. The caller's *Tx values
// are not modified or retained.
func (p *Pool) Add(txs []*Tx) []error {
	errs := make([]error, len(txs))
	prepared := make([]*Tx, len(txs))
	env := p.env.Load()
	now := time.Now()
	prep := func(i int) { prepared[i], errs[i] = p.prepare(txs[i], env, now) }
	recovering := 0
	for _, t := range txs {
		if t != nil && (t.signer != p.signer || t.Raw == nil) {
			recovering++
		}
	}
	if recovering > 1 {
		p.parallel(len(txs), prep)
	} else {
		for i := range txs {
			prep(i)
		}
	}
	for i, t := range prepared {
		if errs[i] == nil {
			errs[i] = p.add(t)
		}
	}
	return errs
}

// add runs the stateful checks and inserts t.
func (p *Pool) add(t *Tx) error {
	sh := p.shard(t.Sender)
	sh.mu.Lock()
	defer sh.mu.Unlock()

	if p.Get(t.Hash) != nil {
		return ErrAlreadyKnown
	}
	env := p.env.Load() // after taking the lock: see SetEnv
	next := p.state.Nonce(t.Sender)
	a := sh.accounts[t.Sender]
	oldReady := 0
	if a != nil {
		oldReady = a.ready
	}
	// Whatever happens below, leave a (if any) consistent.
	defer func() {
		if a != nil {
			p.settle(sh, a, env, oldReady)
		}
	}()
	if a != nil && a.base != next {
		p.rebase(a, next, env)
	}
	if t.nonce < next {
		return fmt.Errorf("%w: next nonce %v, tx nonce %v", ErrNonceTooLow, next, t.nonce)
	}
	if t.nonce-next > p.cfg.MaxNonceGap {
		return fmt.Errorf("%w: address %v, tx: %d state: %d, max gap %d", ErrNonceTooHigh, t.Sender, t.nonce, next, p.cfg.MaxNonceGap)
	}
	var (
		i   int
		old *Tx
	)
	if a != nil {
		i = a.search(t.nonce)
		if i < len(a.list) && a.list[i].nonce == t.nonce {
			old = a.list[i]
		}
	}
	if old != nil && !p.canReplace(old, t) {
		return fmt.Errorf("%w: nonce %d", ErrReplaceUnderpriced, t.nonce)
	}
	// Funds: the transaction alone, then with the sender's other transactions.
	var balance uint256.Int
	if b := p.state.Balance(t.Sender); b != nil {
		balance.Set(b)
	}
	if balance.Lt(&t.cost) {
		return fmt.Errorf("%w: balance %v, tx cost %v, overshot %v", ErrInsufficientFunds, &balance, &t.cost, new(uint256.Int).Sub(&t.cost, &balance))
	}
	var spent, need uint256.Int
	if a != nil {
		spent.Set(&a.spent)
	}
	need.Set(&spent)
	if old != nil {
		need.Sub(&need, &old.cost)
	}
	need.Add(&need, &t.cost) // can't overflow: need <= spent + cost and spent <= balance
	if balance.Lt(&need) {
		if old != nil {
			bump := new(big.Int).Sub(t.cost.ToBig(), old.cost.ToBig())
			return fmt.Errorf("%w: balance %v, queued cost %v, tx bumped %v, overshot %v", ErrInsufficientFunds, &balance, &spent, bump, new(uint256.Int).Sub(&need, &balance))
		}
		return fmt.Errorf("%w: balance %v, queued cost %v, tx cost %v, overshot %v", ErrInsufficientFunds, &balance, &spent, &t.cost, new(uint256.Int).Sub(&need, &balance))
	}
	if old == nil {
		if a != nil && len(a.list) >= p.cfg.AccountSlots {
			return fmt.Errorf("%w: pooled %d txs", ErrAccountLimitExceeded, len(a.list))
		}
		if p.count.Add(1) > int64(p.cfg.GlobalSlots) {
			p.count.Add(-1)
			return fmt.Errorf("%w: %d transactions", ErrTxPoolOverflow, p.cfg.GlobalSlots)
		}
	}

	// Commit.
	t.seq = p.seq.Add(1)
	if a == nil {
		a = newAccount(t.Sender, next)
		sh.accounts[t.Sender] = a
	}
	if old != nil {
		a.replaceAt(i, t)
		a.spent.Sub(&a.spent, &old.cost)
		p.unindex(old)
		p.tombstone(old.Hash, t.Sender)
	} else {
		a.insertAt(i, t)
	}
	a.spent.Add(&a.spent, &t.cost)
	p.index(t)
	a.rescan(i, &env.baseFee)
	return nil
}

// canReplace reports whether t may replace old: both its fee cap and tip must
// exceed old's by at least PriceBump percent.
func (p *Pool) canReplace(old, t *Tx) bool {
	if !old.feeCap.Lt(&t.feeCap) || !old.tipCap.Lt(&t.tipCap) {
		return false
	}
	var thr uint256.Int
	num, den := uint256.NewInt(100+p.cfg.PriceBump), uint256.NewInt(100)
	if _, overflow := thr.MulDivOverflow(&old.feeCap, num, den); overflow || t.feeCap.Lt(&thr) {
		return false
	}
	if _, overflow := thr.MulDivOverflow(&old.tipCap, num, den); overflow || t.tipCap.Lt(&thr) {
		return false
	}
	return true
}

// rebase moves a to the state nonce next, dropping transactions below it, and
// recomputes its runs. The caller publishes and settles.
func (p *Pool) rebase(a *account, next uint64, env *envState) {
	if k := a.search(next); k > 0 {
		for _, t := range a.list[:k] {
			p.forget(a, t)
		}
		a.dropFront(k)
	}
	a.base = next
	a.rescan(0, &env.baseFee)
}

// forget does the bookkeeping of a transaction leaving a's list.
func (p *Pool) forget(a *account, t *Tx) {
	a.spent.Sub(&a.spent, &t.cost)
	p.unindex(t)
	p.count.Add(-1)
}

// settle publishes a's run after changes, updates the counters (oldReady is
// a.ready before the changes) and the ready heap, and deletes a if empty.
func (p *Pool) settle(sh *senderShard, a *account, env *envState, oldReady int) {
	a.publish()
	p.pending.Add(int64(a.ready - oldReady))
	p.syncReady(a, env)
	if len(a.list) == 0 && sh.accounts[a.addr] == a {
		delete(sh.accounts, a.addr)
	}
}

// refresh re-reads a sender's nonce and balance, removing the given
// transactions (if still pooled), those below the state nonce and those whose
// cost alone exceeds the balance; later nonces of removed ones become queued.
func (p *Pool) refresh(addr common.Address, remove []*Tx) {
	sh := p.shard(addr)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	a := sh.accounts[addr]
	if a == nil {
		return
	}
	env := p.env.Load()
	oldReady := a.ready
	for _, t := range remove {
		if t == nil {
			continue
		}
		if i := a.search(t.nonce); i < len(a.list) && a.list[i] == t {
			p.forget(a, t)
			a.removeAt(i)
		}
	}
	p.rebase(a, p.state.Nonce(addr), env)
	if len(a.list) > 0 {
		var balance uint256.Int
		if b := p.state.Balance(addr); b != nil {
			balance.Set(b)
		}
		for i := 0; i < len(a.list); {
			if t := a.list[i]; balance.Lt(&t.cost) {
				p.forget(a, t)
				a.removeAt(i)
				continue
			}
			i++
		}
		a.rescan(0, &env.baseFee)
	}
	p.settle(sh, a, env, oldReady)
}

// Included tells the pool that a mini-block with the given transactions was
// committed and State now reflects it. It removes those transactions, then
// re-syncs their senders with the state: transactions below the new nonce are
// dropped, ones the balance no longer covers too, and later nonces of dropped
// ones are demoted to queued.
func (p *Pool) Included(hashes []common.Hash) {
	// Find the senders: pooled transactions, or replaced ones (tombstones).
	txs := make([]*Tx, len(hashes))
	senders := make([]common.Address, len(hashes))
	found := make([]bool, len(hashes))
	p.parallelMin(len(hashes), func(i int) {
		if t := p.Get(hashes[i]); t != nil {
			txs[i], senders[i], found[i] = t, t.Sender, true
		} else {
			senders[i], found[i] = p.tombstoned(hashes[i])
		}
	})
	// Group by sender, keeping the order, and the senders by shard.
	bySender := make(map[common.Address][]*Tx)
	var order []common.Address
	for i, addr := range senders {
		if !found[i] {
			continue
		}
		list, seen := bySender[addr]
		if !seen {
			order = append(order, addr)
		}
		bySender[addr] = append(list, txs[i])
	}
	if len(order) < parallelMinItems {
		for _, addr := range order {
			p.refresh(addr, bySender[addr])
		}
	} else {
		// Shards are independent: refresh them in parallel.
		var byShard [numSenderShards][]common.Address
		for _, addr := range order {
			i := p.shardIndex(addr)
			byShard[i] = append(byShard[i], addr)
		}
		p.parallel(numSenderShards, func(i int) {
			for _, addr := range byShard[i] {
				p.refresh(addr, bySender[addr])
			}
		})
	}
	p.tombMu.Lock()
	if p.tombCalls++; p.tombCalls >= tombstoneRotate {
		p.tombCalls = 0
		p.tombOld, p.tombCur = p.tombCur, make(map[common.Hash]common.Address)
	}
	p.tombMu.Unlock()
}

// Drop removes a transaction the executor refused and re-syncs its sender
// with the state; its sender's later nonces become queued.
func (p *Pool) Drop(hash common.Hash, reason error) {
	t := p.Get(hash)
	if t == nil {
		return
	}
	log.Debug("Dropping refused transaction", "hash", hash, "sender", t.Sender, "nonce", t.nonce, "reason", reason)
	p.refresh(t.Sender, []*Tx{t})
}

// Refresh re-syncs the given senders with the state, as Included does for the
// senders of included transactions. Use it when their nonce or balance
// changed otherwise (deposits, transactions that did not come from the pool).
func (p *Pool) Refresh(addrs ...common.Address) {
	for _, addr := range addrs {
		p.refresh(addr, nil)
	}
}

func (p *Pool) tombstone(h common.Hash, sender common.Address) {
	p.tombMu.Lock()
	p.tombCur[h] = sender
	p.tombMu.Unlock()
}

func (p *Pool) tombstoned(h common.Hash) (common.Address, bool) {
	p.tombMu.Lock()
	defer p.tombMu.Unlock()
	if a, ok := p.tombCur[h]; ok {
		return a, true
	}
	a, ok := p.tombOld[h]
	return a, ok
}

// SetEnv switches the pool to a new open block. Validation uses its forks and
// gas limit from now on. When the base fee changes, transactions whose fee
// cap falls below it stay in the pool but are not ready (queued) until the
// base fee allows them again, and effective tips are re-ranked. The chain id
// is fixed at New; a config with another one is ignored for it.
func (p *Pool) SetEnv(env Env) {
	p.envMu.Lock()
	defer p.envMu.Unlock()
	old := p.env.Load()
	if env.ChainConfig == nil {
		env.ChainConfig = old.ChainConfig
	}
	es, err := newEnvState(env)
	if err != nil {
		log.Error("Mempool: invalid environment ignored", "err", err)
		return
	}
	// Store before visiting the shards: an Add that takes a shard lock after
	// SetEnv released it must see the new base fee.
	p.env.Store(es)
	if es.baseFee.Eq(&old.baseFee) {
		return
	}
	baseFee := &es.baseFee
	for i := range p.senders {
		sh := &p.senders[i]
		sh.mu.Lock()
		p.readyMu.Lock()
		for _, a := range sh.accounts {
			oldReady := a.ready
			a.ready = 0
			for a.ready < a.contig && !a.list[a.ready].feeCap.Lt(baseFee) {
				a.ready++
			}
			a.publish()
			p.pending.Add(int64(a.ready - oldReady))
			// Keys change for everyone: update without sifting, heapify below.
			if a.ready == 0 {
				p.heap.remove(a, false)
				a.pubHead = nil
			} else {
				head := a.list[0]
				p.heap.set(a, head, a.ready, baseFee, false)
				a.pubHead = head
			}
			a.pubReady = a.ready
		}
		p.readyMu.Unlock()
		sh.mu.Unlock()
	}
	p.readyMu.Lock()
	p.heap.init()
	p.readyMu.Unlock()
}

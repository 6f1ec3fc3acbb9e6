package sequencer

import (
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/kestrel-l2/kestrel/core/chain"
)

// openBlock is the EVM block being built. The loop goroutine owns it; readers get
// an immutable pendingBlock.
type openBlock struct {
	env        chain.BlockEnv
	firstMini  uint64 // 0 until the first mini-block
	lastMini   uint64
	txs        []*types.Transaction
	senders    []common.Address
	receipts   []*chain.Receipt
	diffs      []*chain.StateDiff
	gasUsed    uint64
	miniCount  uint32
	parentDone bool // the EIP-2935 call has run in this block
	openedAtMs uint64
}

// pendingBlock is what readers see of the open block after a durable mini-block.
// Its slices are prefixes of append-only slices and are never written again.
type pendingBlock struct {
	env       chain.BlockEnv
	txs       []*types.Transaction
	senders   []common.Address
	receipts  []*chain.Receipt
	miniIndex uint64
	// parentDone: the EIP-2935 parent-hash write is in this state.
	parentDone bool
}

// sealed is a sealed block kept in memory.
type sealed struct {
	header    *types.Header
	hash      common.Hash
	sig       []byte
	firstMini uint64
	lastMini  uint64
	txs       []*types.Transaction
	senders   []common.Address
	receipts  []*chain.Receipt
	// miniOffsets[i] is the block position of the first transaction of mini-block
	// firstMini+i; set on blocks loaded from the store (see sealedBlock).
	miniOffsets []int
}

type txLoc struct {
	block uint64
	index int
}

// chainIndex is the shared in-memory view of the chain: recent sealed blocks,
// the pending block and a transaction index over both. Safe for concurrent use.
type chainIndex struct {
	mu      sync.RWMutex
	recent  int
	blocks  map[uint64]*sealed
	byHash  map[common.Hash]uint64
	head    uint64 // newest sealed block
	pending *pendingBlock
	// closing holds blocks the loop has handed to the sealer and not yet seen
	// sealed: their transactions are indexed and must stay readable meanwhile.
	closing  map[uint64]*pendingBlock
	txs      map[common.Hash]txLoc
	sealedCh chan struct{} // closed and replaced on every seal
}

func newChainIndex(recent int) *chainIndex {
	return &chainIndex{
		recent: recent, blocks: make(map[uint64]*sealed), byHash: make(map[common.Hash]uint64),
		closing: make(map[uint64]*pendingBlock), txs: make(map[common.Hash]txLoc), sealedCh: make(chan struct{}),
	}
}

// headerWindow is how many recent headers stay in memory: BLOCKHASH reaches 256
// blocks back.
const headerWindow = 256

// addSealed records a sealed block as the new head. Recent blocks keep their
// transactions and receipts in memory; older ones keep only the header (their
// bodies are read from the store), and blocks past the header window are
// forgotten.
func (c *chainIndex) addSealed(b *sealed) {
	c.mu.Lock()
	n := b.header.Number.Uint64()
	c.blocks[n] = b
	c.byHash[b.hash] = n
	delete(c.closing, n)
	if n > c.head || len(c.blocks) == 1 {
		c.head = n
	}
	for i, tx := range b.txs {
		c.txs[tx.Hash()] = txLoc{block: n, index: i}
	}
	if n >= uint64(c.recent) {
		if old, ok := c.blocks[n-uint64(c.recent)]; ok && old.txs != nil {
			for _, tx := range old.txs {
				if loc, ok := c.txs[tx.Hash()]; ok && loc.block == old.header.Number.Uint64() {
					delete(c.txs, tx.Hash())
				}
			}
			slim := *old
			slim.txs, slim.senders, slim.receipts = nil, nil, nil
			c.blocks[n-uint64(c.recent)] = &slim
		}
	}
	if window := uint64(max(c.recent, headerWindow)); n >= window {
		if old, ok := c.blocks[n-window]; ok {
			delete(c.blocks, n-window)
			delete(c.byHash, old.hash)
		}
	}
	close(c.sealedCh)
	c.sealedCh = make(chan struct{})
	c.mu.Unlock()
}

func (c *chainIndex) setPending(p *pendingBlock, newTxs []*types.Transaction, firstIdx int) {
	c.mu.Lock()
	if old := c.pending; old != nil && old.env.Number < p.env.Number {
		if _, done := c.blocks[old.env.Number]; !done {
			c.closing[old.env.Number] = old
		}
	}
	c.pending = p
	for i, tx := range newTxs {
		c.txs[tx.Hash()] = txLoc{block: p.env.Number, index: firstIdx + i}
	}
	c.mu.Unlock()
}

func (c *chainIndex) getPending() *pendingBlock {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.pending
}

// unsealed returns block n while it is the pending block or closed and waiting
// for its seal; nil otherwise.
func (c *chainIndex) unsealed(n uint64) *pendingBlock {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.pending != nil && c.pending.env.Number == n {
		return c.pending
	}
	return c.closing[n]
}

func (c *chainIndex) headNumber() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.head
}

func (c *chainIndex) block(n uint64) *sealed {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.blocks[n]
}

func (c *chainIndex) numberOf(hash common.Hash) (uint64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n, ok := c.byHash[hash]
	return n, ok
}

func (c *chainIndex) lookupTx(hash common.Hash) (txLoc, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	loc, ok := c.txs[hash]
	return loc, ok
}

// waitSealed blocks until block n is sealed or stop closes, and returns its hash.
func (c *chainIndex) waitSealed(n uint64, stop <-chan struct{}) (common.Hash, bool) {
	for {
		c.mu.RLock()
		b, ok := c.blocks[n]
		head, ch := c.head, c.sealedCh
		c.mu.RUnlock()
		if ok {
			return b.hash, true
		}
		if head >= n && len(c.blocks) > 0 {
			return common.Hash{}, false // sealed but no longer recent
		}
		select {
		case <-ch:
		case <-stop:
			return common.Hash{}, false
		}
	}
}

func (c *chainIndex) pendingNumber() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.pending == nil {
		return 0
	}
	return c.pending.env.Number
}

package rpc

import (
	"context"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/kestrel-l2/kestrel/core/chain"
)

// EventSource is an optional extension of Backend that feeds eth_subscribe over
// WebSocket. The backend publishes into the Hub as things happen; subscribers pull
// from it at their own pace, so publishing never waits for a subscriber.
type EventSource interface {
	Hub() *Hub
	// MiniBlockEvents returns up to max durable mini-blocks from index from on, in
	// order, for subscribers that fell behind the hub's window or asked for an
	// earlier index. It returns fewer (possibly none) when the newest durable
	// mini-block is reached. A mini-block that is no longer kept is an error.
	MiniBlockEvents(ctx context.Context, from uint64, max int) ([]*MiniBlockEvent, error)
	// MiniBlockHead is the index of the newest durable mini-block (0: none yet).
	MiniBlockHead() uint64
}

// MiniBlockEvent is one durable mini-block. BlockTxs, BlockSenders and
// BlockReceipts are its block's transactions up to and including this
// mini-block's, which are the last len(Mini.Txs) of them; the slices are never
// written again (prefixes of append-only slices).
type MiniBlockEvent struct {
	Mini          *chain.MiniBlock
	BlockTxs      []*types.Transaction
	BlockSenders  []common.Address
	BlockReceipts []*chain.Receipt
	// At is when the hub received the event (set by PublishMiniBlock): on a
	// sequencer the moment the mini-block became durable and visible, on a
	// replica the moment it was applied.
	At time.Time

	once sync.Once
	json []byte // the notification result, encoded once for every subscriber
}

// HeadEvent is one sealed block. Signature and the mini-block range are set by
// nodes that have them (the diff stream publishes them); subscribers of
// newHeads see only the header.
type HeadEvent struct {
	Header    *types.Header
	Hash      common.Hash
	Signature []byte
	FirstMini uint64
	LastMini  uint64

	once sync.Once
	json []byte
}

// Hub windows: how many recent items a subscriber can catch up on from memory.
// Older mini-blocks and heads are read from the backend; older pending
// transaction hashes are skipped, as go-ethereum skips them for slow subscribers.
const (
	hubMiniBlocks = 1024
	hubHeads      = 256
	hubPendingTxs = 1 << 16
)

// Hub holds the recent events of a node and wakes waiting subscribers. It is safe
// for concurrent use; Publish* never block on subscribers.
type Hub struct {
	mu      sync.Mutex
	wake    chan struct{} // closed and replaced on every publish
	minis   ring[*MiniBlockEvent]
	heads   ring[*HeadEvent]
	pending ring[common.Hash]
	closed  bool
}

// NewHub returns an empty hub.
func NewHub() *Hub {
	return &Hub{
		wake:    make(chan struct{}),
		minis:   newRing[*MiniBlockEvent](hubMiniBlocks),
		heads:   newRing[*HeadEvent](hubHeads),
		pending: newRing[common.Hash](hubPendingTxs),
	}
}

func (h *Hub) notifyLocked() {
	close(h.wake)
	h.wake = make(chan struct{})
}

// PublishMiniBlock records a durable mini-block. Indices must increase by one.
func (h *Hub) PublishMiniBlock(ev *MiniBlockEvent) {
	ev.At = time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.minis.put(ev.Mini.Index, ev)
	h.notifyLocked()
}

// PublishHead records a sealed block. Numbers must increase by one.
func (h *Hub) PublishHead(ev *HeadEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.heads.put(ev.Header.Number.Uint64(), ev)
	h.notifyLocked()
}

// PublishPendingTxs records transactions admitted to the pool.
func (h *Hub) PublishPendingTxs(hashes []common.Hash) {
	if len(hashes) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, x := range hashes {
		h.pending.put(h.pending.next, x)
	}
	h.notifyLocked()
}

// Close wakes every subscriber for the last time; later reads report closed.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.wake)
	}
}

// HubRead is what a reader pulls from one of the hub's rings at once.
type HubRead[T any] struct {
	// Items are the events available now from the requested position on.
	Items []T
	// Oldest is the first position the hub still holds; a reader behind it
	// must catch up from the node's store. Next is the position after the
	// newest event.
	Oldest, Next uint64
	// Wake is closed by the next publish (or Close).
	Wake <-chan struct{}
	// Closed reports a closed hub; Started is false until the first event.
	Closed, Started bool
}

// MiniBlocks returns up to max mini-block events from index from on, appended
// to buf. It never blocks on publishers beyond a mutex.
func (h *Hub) MiniBlocks(from uint64, max int, buf []*MiniBlockEvent) HubRead[*MiniBlockEvent] {
	return exportRead(readRing(h, &h.minis, from, max, buf))
}

// Heads returns up to max sealed-head events from block number from on.
func (h *Hub) Heads(from uint64, max int, buf []*HeadEvent) HubRead[*HeadEvent] {
	return exportRead(readRing(h, &h.heads, from, max, buf))
}

func exportRead[T any](r hubRead[T]) HubRead[T] {
	return HubRead[T]{Items: r.items, Oldest: r.oldest, Next: r.next, Wake: r.wake, Closed: r.closed, Started: r.started}
}

// cursor is what a subscriber reads from one ring: items from next on. It
// returns the items available now (appended to buf), the first sequence number the
// ring still holds, the sequence number after the newest, and a channel closed
// by the next publish.
type hubRead[T any] struct {
	items   []T
	oldest  uint64
	next    uint64
	wake    <-chan struct{}
	closed  bool
	started bool // the ring has seen at least one item
}

func readRing[T any](h *Hub, r *ring[T], from uint64, max int, buf []T) hubRead[T] {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := hubRead[T]{wake: h.wake, closed: h.closed, oldest: r.oldest(), next: r.next, started: r.started}
	if !r.started {
		return out
	}
	if from < out.oldest {
		from = out.oldest
	}
	for seq := from; seq < r.next && len(buf) < max; seq++ {
		buf = append(buf, r.at(seq))
	}
	out.items = buf
	return out
}

// ring keeps the newest len(buf) items of a sequence numbered without gaps.
type ring[T any] struct {
	buf     []T
	next    uint64 // sequence number after the newest item
	count   uint64 // items held
	started bool
}

func newRing[T any](n int) ring[T] { return ring[T]{buf: make([]T, n)} }

// put stores the item with sequence number seq. A seq other than next (a restart
// of the publisher, or the first item) empties the ring and starts over at seq.
func (r *ring[T]) put(seq uint64, v T) {
	if !r.started || seq != r.next {
		clear(r.buf)
		r.count = 0
		r.started = true
	}
	r.buf[seq%uint64(len(r.buf))] = v
	r.next = seq + 1
	r.count = min(r.count+1, uint64(len(r.buf)))
}

func (r *ring[T]) oldest() uint64 { return r.next - r.count }

func (r *ring[T]) at(seq uint64) T { return r.buf[seq%uint64(len(r.buf))] }

package rpc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/kestrel-l2/kestrel/core/chain"
)

// Subscriptions (eth_subscribe over WebSocket):
//
//   - newHeads: each sealed block's header, as go-ethereum prints types.Header.
//   - logs: each log of a sealed block matching {address, topics}, one
//     notification per log, as go-ethereum. Logs of the open block are in the
//     miniBlocks feed, ~1 s earlier.
//   - newPendingTransactions: the hash of each transaction the pool admits (the
//     transaction object with `true`). A subscriber more than 65,536 hashes behind
//     skips the oldest, as go-ethereum drops them.
//   - miniBlocks: each durable mini-block (see appendMiniBlockEvent), in index
//     order, without gaps. {"fromIndex": N} first replays every mini-block from N
//     on (from the hub's window, else from the backend's log), then follows the
//     live feed. If a mini-block cannot be read any more, the subscriber gets one
//     notification {"error": …, "missingIndex": N} and the subscription ends.
//
// A subscriber never blocks the node: it reads from the hub at its own pace and
// catches up from the backend when it fell out of the hub's window.

const subBatch = 64 // events read per step

func init() {
	methods["eth_subscribe"] = method{(*Server).ethSubscribe, 2}
	methods["eth_unsubscribe"] = method{(*Server).ethUnsubscribe, 1}
}

var errNotificationsUnsupported = &Error{Code: CodeMethodNotFound, Message: "notifications not supported"}

type subKind uint8

const (
	subHeads subKind = iota
	subLogs
	subPending
	subMinis
)

func (k subKind) String() string {
	switch k {
	case subHeads:
		return "newHeads"
	case subLogs:
		return "logs"
	case subPending:
		return "newPendingTransactions"
	default:
		return "miniBlocks"
	}
}

type subscription struct {
	id     string
	kind   subKind
	conn   *wsConn
	src    EventSource
	ctx    context.Context
	cancel context.CancelFunc
	head   []byte // {"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x…","result":

	next   uint64     // next mini-block index, block number or pending sequence
	filter *logFilter // logs
	fullTx bool       // newPendingTransactions
}

// newSubID returns a random 128-bit id printed as go-ethereum's rpc.NewID does
// (subscriptions and filters).
func newSubID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := strings.TrimLeft(hex.EncodeToString(b[:]), "0")
	if id == "" {
		id = "0"
	}
	return "0x" + id
}

func (s *Server) ethSubscribe(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	call, _ := ctx.Value(wsCallKey{}).(*wsCall)
	src, ok := s.b.(EventSource)
	if call == nil || !ok {
		return dst, errNotificationsUnsupported
	}
	raw, err := a.required(0)
	if err != nil {
		return dst, err
	}
	name, err := parseString(0, raw)
	if err != nil {
		return dst, err
	}
	hub := src.Hub()
	sub := &subscription{id: newSubID(), conn: call.conn, src: src}
	opt := a.get(1)
	if opt != nil && isNull(opt) {
		opt = nil
	}
	switch name {
	case "newHeads":
		sub.kind = subHeads
		sub.next = nextSeq(hub, &hub.heads, s.b.HeadNumber()+1)
	case "logs":
		sub.kind = subLogs
		sub.filter = &logFilter{}
		if opt != nil {
			if sub.filter, err = parseLogFilter(opt); err != nil {
				return dst, err
			}
			if sub.filter.blockHash != nil {
				return dst, invalidParams("invalid argument 1: a logs subscription follows new blocks; blockHash is not allowed")
			}
		}
		sub.next = nextSeq(hub, &hub.heads, s.b.HeadNumber()+1)
	case "newPendingTransactions":
		sub.kind = subPending
		if opt != nil {
			if sub.fullTx, err = parseBool(1, opt); err != nil {
				return dst, err
			}
		}
		sub.next = nextSeq(hub, &hub.pending, 0)
	case "miniBlocks":
		sub.kind = subMinis
		sub.next = nextSeq(hub, &hub.minis, src.MiniBlockHead()+1)
		if opt != nil {
			var o struct {
				FromIndex *hexOrDecUint64 `json:"fromIndex"`
			}
			if opt[0] != '{' {
				return dst, typeError(1, jsonKind(opt), "miniBlocks options")
			}
			if err := json.Unmarshal(opt, &o); err != nil {
				return dst, argError(1, err)
			}
			if o.FromIndex != nil {
				sub.next = max(uint64(*o.FromIndex), 1)
			}
		}
	default:
		return dst, &Error{Code: CodeMethodNotFound, Message: `no "` + name + `" subscription in eth namespace`}
	}
	sub.head = append([]byte(`{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"`), sub.id...)
	sub.head = append(sub.head, `","result":`...)
	sub.ctx, sub.cancel = context.WithCancel(call.conn.ctx)
	if err := call.conn.addSub(sub); err != nil {
		sub.cancel()
		return dst, err
	}
	call.mu.Lock()
	call.started = append(call.started, sub)
	call.mu.Unlock()
	return appendString(dst, sub.id), nil
}

func (s *Server) ethUnsubscribe(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	call, _ := ctx.Value(wsCallKey{}).(*wsCall)
	if call == nil {
		return dst, errNotificationsUnsupported
	}
	raw, err := a.required(0)
	if err != nil {
		return dst, err
	}
	id, err := parseString(0, raw)
	if err != nil {
		return dst, err
	}
	if !call.conn.removeSub(id) {
		return dst, &Error{Code: CodeDefault, Message: "subscription not found"}
	}
	return append(dst, jsonTrue...), nil
}

// nextSeq is where a live subscription starts: after the newest item the hub
// holds, or fallback when the hub has seen nothing yet.
func nextSeq[T any](h *Hub, r *ring[T], fallback uint64) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.started {
		return r.next
	}
	return fallback
}

// hexOrDecUint64 accepts a JSON number or a hex string.
type hexOrDecUint64 uint64

func (v *hexOrDecUint64) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		n, err := parseUint64(1, b, "hexutil.Uint64")
		if err != nil {
			return errors.New("invalid fromIndex: " + err.Error())
		}
		*v = hexOrDecUint64(n)
		return nil
	}
	var n uint64
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("invalid fromIndex: want a uint64")
	}
	*v = hexOrDecUint64(n)
	return nil
}

// run delivers the subscription's events until it is cancelled or the
// connection closes.
func (sub *subscription) run() {
	defer sub.cancel()
	var err error
	switch sub.kind {
	case subHeads, subLogs:
		err = sub.runHeads()
	case subPending:
		err = sub.runPending()
	case subMinis:
		err = sub.runMinis()
	}
	if err != nil && !errors.Is(err, errConnClosed) && sub.ctx.Err() == nil {
		sub.conn.s.log.Debug("Subscription ended", "id", sub.id, "err", err)
	}
	sub.conn.removeSub(sub.id)
}

func (sub *subscription) notify(body []byte) error {
	return sub.conn.enqueue(wsMsg{head: sub.head, body: body, tail: []byte("}}")}, true)
}

// wait blocks until the next publish or cancellation.
func (sub *subscription) wait(wake <-chan struct{}, closed bool) error {
	if closed {
		return errConnClosed
	}
	select {
	case <-wake:
		return nil
	case <-sub.ctx.Done():
		return errConnClosed
	}
}

func (sub *subscription) runMinis() error {
	hub := sub.src.Hub()
	buf := make([]*MiniBlockEvent, 0, subBatch)
	for {
		r := readRing(hub, &hub.minis, sub.next, subBatch, buf[:0])
		evs := r.items
		if len(evs) == 0 || sub.next < r.oldest {
			if r.closed {
				return errConnClosed
			}
			// Not in the hub: behind its window, or nothing published since start.
			if sub.next > sub.src.MiniBlockHead() {
				if err := sub.wait(r.wake, r.closed); err != nil {
					return err
				}
				continue
			}
			var err error
			evs, err = sub.src.MiniBlockEvents(sub.ctx, sub.next, subBatch)
			if err != nil {
				if sub.ctx.Err() != nil {
					return errConnClosed
				}
				body := []byte(`{"error":`)
				body = appendString(body, "mini-block "+string(appendUint(nil, sub.next))+" is not available: "+err.Error())
				body = append(body, `,"missingIndex":`...)
				body = appendUint64Hex(body, sub.next)
				body = append(body, '}')
				_ = sub.notify(body)
				return err
			}
			if len(evs) == 0 {
				if err := sub.wait(r.wake, r.closed); err != nil {
					return err
				}
				continue
			}
		}
		for _, ev := range evs {
			if ev.Mini.Index != sub.next {
				continue // never out of order: the backend gave more than asked
			}
			if err := sub.notify(ev.encode(sub.conn.s)); err != nil {
				return err
			}
			sub.next++
		}
	}
}

func (sub *subscription) runHeads() error {
	s := sub.conn.s
	hub := sub.src.Hub()
	buf := make([]*HeadEvent, 0, subBatch)
	for {
		r := readRing(hub, &hub.heads, sub.next, subBatch, buf[:0])
		evs := r.items
		if len(evs) == 0 || sub.next < r.oldest {
			if r.closed {
				return errConnClosed
			}
			if sub.next > s.b.HeadNumber() {
				if err := sub.wait(r.wake, r.closed); err != nil {
					return err
				}
				continue
			}
			// Behind the hub's window: read the sealed header from the backend.
			h, hash, err := s.b.HeaderByRef(sub.ctx, BlockRef{Tag: TagNumber, Number: sub.next})
			if err != nil {
				return err
			}
			evs = append(evs[:0], &HeadEvent{Header: h, Hash: hash})
		}
		for _, ev := range evs {
			if ev.Header.Number.Uint64() != sub.next {
				continue
			}
			var err error
			if sub.kind == subHeads {
				err = sub.notify(ev.encode())
			} else {
				err = sub.notifyLogs(ev)
			}
			if err != nil {
				return err
			}
			sub.next++
		}
	}
}

func (sub *subscription) notifyLogs(ev *HeadEvent) error {
	if !sub.filter.bloomMatch(ev.Header.Bloom) {
		return nil
	}
	b, err := sub.conn.s.b.BlockByRef(sub.ctx, BlockRef{Tag: TagNumber, Number: ev.Header.Number.Uint64()})
	if err != nil {
		return err
	}
	for _, r := range b.Receipts {
		for _, l := range r.Logs {
			if !sub.filter.match(l) {
				continue
			}
			if err := sub.notify(appendLog(nil, l, true)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (sub *subscription) runPending() error {
	s := sub.conn.s
	hub := sub.src.Hub()
	buf := make([]common.Hash, 0, 1024)
	for {
		r := readRing(hub, &hub.pending, sub.next, cap(buf), buf[:0])
		if r.started && sub.next < r.oldest {
			sub.next = r.oldest // fell behind: the oldest hashes are gone
			continue
		}
		if len(r.items) == 0 {
			if err := sub.wait(r.wake, r.closed); err != nil {
				return err
			}
			continue
		}
		for _, h := range r.items {
			var body []byte
			if sub.fullTx {
				info, err := s.b.Transaction(sub.ctx, h)
				if err != nil || info == nil {
					sub.next++
					continue // gone already; go-ethereum skips it too
				}
				body = s.appendTxInfo(sub.ctx, nil, info)
			} else {
				body = appendHash(make([]byte, 0, 68), h)
			}
			if err := sub.notify(body); err != nil {
				return err
			}
			sub.next++
		}
	}
}

// encode prints a sealed header once for every newHeads subscriber, exactly as
// go-ethereum's types.Header marshals.
func (ev *HeadEvent) encode() []byte {
	ev.once.Do(func() {
		ev.json, _ = json.Marshal(ev.Header)
	})
	return ev.json
}

// encode prints a mini-block once for every miniBlocks subscriber:
//
//	{"index","blockNumber","indexInBlock","timestamp" (ms),"blockTimestamp" (s),
//	 "transactions" (objects, as eth_getTransactionByHash prints them in the open
//	 block), "receipts" (as eth_getTransactionReceipt, blockHash null),
//	 "stateChanges" ([{"address","nonce","balance","codeHash", "code" when
//	 changed, "deleted"/"storageReset" when set, "storage":{slot:value}}]),
//	 "hash" (the signing hash), "signature" (the sequencer's, over hash)}
func (ev *MiniBlockEvent) encode(s *Server) []byte {
	ev.once.Do(func() { ev.json = s.appendMiniBlockEvent(nil, ev) })
	return ev.json
}

func (s *Server) appendMiniBlockEvent(dst []byte, ev *MiniBlockEvent) []byte {
	mb := ev.Mini
	n := len(mb.Txs)
	end := len(ev.BlockTxs)
	first := end - n
	if first < 0 || len(ev.BlockSenders) < end || len(ev.BlockReceipts) < end {
		first, end = 0, 0 // malformed event: print no transactions rather than panic
	}
	rcpts := chain.DeriveReceipts(mb.Env, common.Hash{}, ev.BlockTxs, ev.BlockSenders, ev.BlockReceipts, first, end)
	dst = append(dst, `{"index":`...)
	dst = appendUint64Hex(dst, mb.Index)
	dst = append(dst, `,"blockNumber":`...)
	dst = appendUint64Hex(dst, mb.Env.Number)
	dst = append(dst, `,"indexInBlock":`...)
	dst = appendUint64Hex(dst, uint64(mb.IndexInBlock))
	dst = append(dst, `,"timestamp":`...)
	dst = appendUint64Hex(dst, mb.TimestampMs)
	dst = append(dst, `,"blockTimestamp":`...)
	dst = appendUint64Hex(dst, mb.Env.Time)
	dst = append(dst, `,"transactions":[`...)
	baseFee := mb.Env.BaseFee
	for i := first; i < end; i++ {
		if i > first {
			dst = append(dst, ',')
		}
		loc := txLoc{inBlock: true, number: mb.Env.Number, time: mb.Env.Time, index: uint64(i), baseFee: baseFee}
		dst = s.appendTx(dst, ev.BlockTxs[i], ev.BlockSenders[i], &loc, rcpts[i-first])
	}
	dst = append(dst, `],"receipts":[`...)
	for i := first; i < end; i++ {
		if i > first {
			dst = append(dst, ',')
		}
		dst = appendReceipt(dst, rcpts[i-first], ev.BlockTxs[i], ev.BlockSenders[i], false)
	}
	dst = append(dst, `],"stateChanges":[`...)
	if mb.Diff != nil {
		for i := range mb.Diff.Accounts {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendAccountDiff(dst, &mb.Diff.Accounts[i])
		}
	}
	dst = append(dst, ']')
	if h, err := mb.SigningHash(); err == nil {
		dst = append(dst, `,"hash":`...)
		dst = appendHash(dst, h)
	}
	dst = append(dst, `,"signature":`...)
	dst = appendBytesHex(dst, mb.Signature)
	return append(dst, '}')
}

func appendAccountDiff(dst []byte, a *chain.AccountDiff) []byte {
	dst = append(dst, `{"address":`...)
	dst = appendAddress(dst, a.Address)
	if a.Deleted {
		dst = append(dst, `,"deleted":true`...)
	}
	if a.StorageReset {
		dst = append(dst, `,"storageReset":true`...)
	}
	dst = append(dst, `,"nonce":`...)
	dst = appendUint64Hex(dst, a.Nonce)
	dst = append(dst, `,"balance":`...)
	dst = appendU256Hex(dst, &a.Balance)
	dst = append(dst, `,"codeHash":`...)
	dst = appendHash(dst, a.CodeHash)
	if a.Code != nil {
		dst = append(dst, `,"code":`...)
		dst = appendBytesHex(dst, a.Code)
	}
	dst = append(dst, `,"storage":{`...)
	for i, sl := range a.Storage {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendHash(dst, sl.Key)
		dst = append(dst, ':')
		dst = appendHash(dst, sl.Value)
	}
	return append(dst, '}', '}')
}

// parseString decodes a JSON string parameter.
func parseString(i int, raw []byte) (string, error) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", typeError(i, jsonKind(raw), "string")
	}
	var str string
	if err := json.Unmarshal(raw, &str); err != nil {
		return "", argError(i, err)
	}
	return str, nil
}

package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	gethrpc "github.com/ethereum/go-ethereum/rpc"
	"github.com/fasthttp/websocket"
	"github.com/holiman/uint256"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kestrel-l2/kestrel/core/chain"
)

// eventFake adds rpc.EventSource to the fake backend: a log of synthetic
// mini-blocks (all "durable") of which the test publishes what it wants to the
// hub, and a head number the test moves.
type eventFake struct {
	*fakeBackend
	hub *Hub

	mu    sync.Mutex
	minis []*MiniBlockEvent // minis[i].Mini.Index == i+1
	head  uint64
	gone  uint64 // mini-blocks below this index are "pruned"
}

func newEventFake(t testing.TB) *eventFake {
	return &eventFake{fakeBackend: newFakeBackend(t), hub: NewHub()}
}

func (f *eventFake) Hub() *Hub { return f.hub }

func (f *eventFake) HeadNumber() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.head
}

func (f *eventFake) MiniBlockHead() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return uint64(len(f.minis))
}

func (f *eventFake) MiniBlockEvents(_ context.Context, from uint64, max int) ([]*MiniBlockEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if from < f.gone {
		return nil, fmt.Errorf("pruned below %d", f.gone)
	}
	var out []*MiniBlockEvent
	for i := from; i <= uint64(len(f.minis)) && len(out) < max; i++ {
		out = append(out, f.minis[i-1])
	}
	return out, nil
}

// addMinis appends n mini-blocks (one transaction-free account change each,
// padded with pad storage slots) and publishes them when publish is set.
func (f *eventFake) addMinis(n, pad int, publish bool) {
	for range n {
		f.mu.Lock()
		idx := uint64(len(f.minis) + 1)
		diff := &chain.StateDiff{Accounts: []chain.AccountDiff{{Address: common.Address{byte(idx)}, Nonce: idx, Balance: *uint256.NewInt(idx)}}}
		for k := range pad {
			diff.Accounts[0].Storage = append(diff.Accounts[0].Storage, chain.SlotDiff{Key: common.Hash{byte(k >> 8), byte(k)}, Value: common.Hash{1}})
		}
		mb := &chain.MiniBlock{Index: idx, IndexInBlock: uint32(idx % 10), TimestampMs: 1000 * idx,
			Env: chain.BlockEnv{Number: idx / 10, Time: idx / 10, BaseFee: big.NewInt(gwei), GasLimit: 30_000_000}, Diff: diff,
			Signature: []byte{1, 2, 3}}
		ev := &MiniBlockEvent{Mini: mb}
		f.minis = append(f.minis, ev)
		f.mu.Unlock()
		if publish {
			f.hub.PublishMiniBlock(ev)
		}
	}
}

func dialWS(t testing.TB, s *Server) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial("ws://"+s.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type wsFrame struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *respError      `json:"error"`
	Method string          `json:"method"`
	Params struct {
		Subscription string          `json:"subscription"`
		Result       json.RawMessage `json:"result"`
	} `json:"params"`
}

func readFrame(t testing.TB, c *websocket.Conn) wsFrame {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var f wsFrame
	if err := json.Unmarshal(msg, &f); err != nil {
		t.Fatalf("bad frame %s: %v", msg, err)
	}
	return f
}

func wsDo(t testing.TB, c *websocket.Conn, body string) wsFrame {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(body)); err != nil {
		t.Fatal(err)
	}
	return readFrame(t, c)
}

func subscribe(t testing.TB, c *websocket.Conn, params string) string {
	t.Helper()
	f := wsDo(t, c, `{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":`+params+`}`)
	if f.Error != nil {
		t.Fatalf("subscribe %s: %+v", params, f.Error)
	}
	var id string
	if err := json.Unmarshal(f.Result, &id); err != nil || !strings.HasPrefix(id, "0x") {
		t.Fatalf("subscription id %s", f.Result)
	}
	return id
}

// readMinis reads mini-block notifications and checks they are index, index+1, …
func readMinis(t testing.TB, c *websocket.Conn, sub string, from uint64, n int) {
	t.Helper()
	for i := range n {
		f := readFrame(t, c)
		if f.Method != "eth_subscription" || f.Params.Subscription != sub {
			t.Fatalf("not a notification of %s: %+v", sub, f)
		}
		var ev struct {
			Index        hexOrDecUint64 `json:"index"`
			StateChanges []struct {
				Nonce string `json:"nonce"`
			} `json:"stateChanges"`
		}
		if err := json.Unmarshal(f.Params.Result, &ev); err != nil {
			t.Fatal(err)
		}
		want := from + uint64(i)
		if uint64(ev.Index) != want {
			t.Fatalf("mini-block %d arrived where %d was due", ev.Index, want)
		}
		if len(ev.StateChanges) != 1 || ev.StateChanges[0].Nonce != fmt.Sprintf("0x%x", want) {
			t.Fatalf("mini-block %d: wrong state changes %s", want, f.Params.Result)
		}
	}
}

func TestWSCallsAndBatches(t *testing.T) {
	s := startServer(t, newEventFake(t), Config{})
	c := dialWS(t, s)
	f := wsDo(t, c, `{"jsonrpc":"2.0","id":7,"method":"eth_chainId","params":[]}`)
	if string(f.ID) != "7" || string(f.Result) != `"0x385"` {
		t.Fatalf("eth_chainId over WS: %+v", f)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(`[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"net_version"}]`)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, msg, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if string(msg) != `[{"jsonrpc":"2.0","id":1,"result":"0x385"},{"jsonrpc":"2.0","id":2,"result":"901"}]` {
		t.Fatalf("batch over WS: %s", msg)
	}
}

func TestWSSubscribeErrors(t *testing.T) {
	f := newEventFake(t)
	s := startServer(t, f, Config{WSMaxSubscriptions: 2})
	// Over HTTP, as go-ethereum.
	e := callErr(t, s, reqBody(t, 1, "eth_subscribe", "newHeads"))
	if e == nil || e.Code != CodeMethodNotFound || e.Message != "notifications not supported" {
		t.Fatalf("eth_subscribe over HTTP: %+v", e)
	}
	c := dialWS(t, s)
	for _, tc := range []struct{ params, msg string }{
		{`["foo"]`, `no "foo" subscription in eth namespace`},
		{`[]`, "missing value for required argument 0"},
		{`[7]`, "invalid argument 0: json: cannot unmarshal number into Go value of type string"},
		{`["logs",{"address":"0x12"}]`, ""},
		{`["logs",{"blockHash":"0x0000000000000000000000000000000000000000000000000000000000000001"}]`, ""},
		{`["miniBlocks",{"fromIndex":"0xzz"}]`, ""},
		{`["miniBlocks",{"fromIndex":-1}]`, ""},
		{`["miniBlocks",[1]]`, ""},
		{`["newPendingTransactions","yes"]`, ""},
		{`["newHeads",{},3]`, ""},
	} {
		fr := wsDo(t, c, `{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":`+tc.params+`}`)
		if fr.Error == nil {
			t.Errorf("%s: no error: %s", tc.params, fr.Result)
			continue
		}
		if tc.msg != "" && fr.Error.Message != tc.msg {
			t.Errorf("%s: error %q, want %q", tc.params, fr.Error.Message, tc.msg)
		}
	}
	// Unsubscribe: true once, then "subscription not found".
	id := subscribe(t, c, `["newHeads"]`)
	if fr := wsDo(t, c, `{"jsonrpc":"2.0","id":2,"method":"eth_unsubscribe","params":["`+id+`"]}`); string(fr.Result) != "true" {
		t.Fatalf("unsubscribe: %+v", fr)
	}
	if fr := wsDo(t, c, `{"jsonrpc":"2.0","id":3,"method":"eth_unsubscribe","params":["`+id+`"]}`); fr.Error == nil || fr.Error.Message != "subscription not found" {
		t.Fatalf("second unsubscribe: %+v", fr)
	}
	// The per-connection limit.
	subscribe(t, c, `["newHeads"]`)
	subscribe(t, c, `["newPendingTransactions"]`)
	if fr := wsDo(t, c, `{"jsonrpc":"2.0","id":4,"method":"eth_subscribe","params":["newHeads"]}`); fr.Error == nil || fr.Error.Code != CodeLimitExceeded {
		t.Fatalf("subscription over the limit: %+v", fr)
	}
}

func TestWSMalformedFrames(t *testing.T) {
	s := startServer(t, newEventFake(t), Config{MaxBodyBytes: 4096})
	c := dialWS(t, s)
	for _, body := range []string{`{`, `nonsense`, "\xff\xfe", `[]`, `{"jsonrpc":"2.0","id":1}`, `""`} {
		f := wsDo(t, c, body)
		if f.Error == nil {
			t.Errorf("%q: no error", body)
		}
	}
	// Still serving after the bad frames.
	if f := wsDo(t, c, `{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}`); f.Error != nil {
		t.Fatalf("after bad frames: %+v", f.Error)
	}
	// A frame over the body limit closes the connection with 1009 (the client may
	// see the reset of its unread rest of the frame instead of the close frame).
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"web3_sha3","params":["0x`+strings.Repeat("ab", 4096)+`"]}`)); err != nil {
		return // reset while writing: closed
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := c.ReadMessage()
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("oversized frame: %v, want the connection closed", err)
	}
	if _, isClose := err.(*websocket.CloseError); isClose && !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("oversized frame: %v, want close 1009", err)
	}
}

func TestWSMiniBlocksFromIndex(t *testing.T) {
	f := newEventFake(t)
	f.addMinis(1500, 0, true) // the hub keeps the newest 1024; 1..476 only in the "log"
	s := startServer(t, f, Config{})
	c := dialWS(t, s)
	sub := subscribe(t, c, `["miniBlocks",{"fromIndex":5}]`)
	readMinis(t, c, sub, 5, 1496)
	f.addMinis(20, 0, true) // live
	readMinis(t, c, sub, 1501, 20)

	// A live subscriber (no fromIndex) starts after the newest.
	c2 := dialWS(t, s)
	sub2 := subscribe(t, c2, `["miniBlocks"]`)
	f.addMinis(3, 0, true)
	readMinis(t, c2, sub2, 1521, 3)

	// Reconnect: drop the socket, mini-blocks go by, ask from the next index.
	c2.Close()
	f.addMinis(1200, 0, true) // more than the hub holds
	c3 := dialWS(t, s)
	sub3 := subscribe(t, c3, `["miniBlocks",{"fromIndex":"0x5f4"}]`) // 1524
	readMinis(t, c3, sub3, 1524, 1200)

	// A mini-block that cannot be read any more is reported, not skipped.
	f.mu.Lock()
	f.gone = 10
	f.mu.Unlock()
	c4 := dialWS(t, s)
	sub4 := subscribe(t, c4, `["miniBlocks",{"fromIndex":3}]`)
	fr := readFrame(t, c4)
	var gap struct {
		Error        string `json:"error"`
		MissingIndex string `json:"missingIndex"`
	}
	if fr.Params.Subscription != sub4 || json.Unmarshal(fr.Params.Result, &gap) != nil || gap.MissingIndex != "0x3" || gap.Error == "" {
		t.Fatalf("pruned mini-block: %s", fr.Params.Result)
	}
}

func TestWSMiniBlockPayload(t *testing.T) {
	f := newEventFake(t)
	s := startServer(t, f, Config{})
	// A real block's transactions as one mini-block.
	b := f.c.blocks[2]
	stored := make([]*chain.Receipt, len(b.Receipts))
	var cum uint64
	for i, r := range b.Receipts {
		cum += r.GasUsed
		stored[i] = &chain.Receipt{Status: r.Status, CumulativeGasUsed: cum, GasUsed: r.GasUsed, Logs: r.Logs}
	}
	mb := &chain.MiniBlock{Index: 1, Env: chain.BlockEnv{Number: 2, Time: b.Header.Time, BaseFee: b.Header.BaseFee, GasLimit: b.Header.GasLimit},
		Txs: b.Txs, Senders: b.Senders, Receipts: stored, Diff: &chain.StateDiff{}}
	ev := &MiniBlockEvent{Mini: mb, BlockTxs: b.Txs, BlockSenders: b.Senders, BlockReceipts: stored}
	f.minis = append(f.minis, ev)
	c := dialWS(t, s)
	sub := subscribe(t, c, `["miniBlocks",{"fromIndex":1}]`)
	fr := readFrame(t, c)
	if fr.Params.Subscription != sub {
		t.Fatal("wrong subscription")
	}
	var got struct {
		Transactions []map[string]any `json:"transactions"`
		Receipts     []map[string]any `json:"receipts"`
		Hash         common.Hash      `json:"hash"`
	}
	if err := json.Unmarshal(fr.Params.Result, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Transactions) != len(b.Txs) || len(got.Receipts) != len(b.Txs) {
		t.Fatalf("transactions %d receipts %d, want %d", len(got.Transactions), len(got.Receipts), len(b.Txs))
	}
	for i, tx := range b.Txs {
		if got.Transactions[i]["hash"] != tx.Hash().Hex() || got.Receipts[i]["transactionHash"] != tx.Hash().Hex() {
			t.Errorf("tx %d: wrong hash", i)
		}
		if got.Receipts[i]["blockHash"] != nil || got.Transactions[i]["blockHash"] != nil {
			t.Errorf("tx %d: block hash printed before the block is sealed", i)
		}
		if got.Receipts[i]["gasUsed"] != fmt.Sprintf("0x%x", b.Receipts[i].GasUsed) {
			t.Errorf("tx %d: gasUsed %v want %d", i, got.Receipts[i]["gasUsed"], b.Receipts[i].GasUsed)
		}
	}
	if want, _ := mb.SigningHash(); got.Hash != want {
		t.Errorf("hash %s, want the signing hash %s", got.Hash, want)
	}
}

// TestWSGethClient drives newHeads, logs and newPendingTransactions through
// go-ethereum's own client, which decodes every notification.
func TestWSGethClient(t *testing.T) {
	f := newEventFake(t)
	s := startServer(t, f, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rc, err := gethrpc.DialContext(ctx, "ws://"+s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	ec := ethclient.NewClient(rc)
	heads := make(chan *types.Header, 4)
	hs, err := ec.SubscribeNewHead(ctx, heads)
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Unsubscribe()
	logs := make(chan types.Log, 8)
	ls, err := ec.SubscribeFilterLogs(ctx, ethereum.FilterQuery{Addresses: []common.Address{f.c.contract}, Topics: [][]common.Hash{{f.c.topicB}}}, logs)
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Unsubscribe()
	pend := make(chan common.Hash, 4)
	ps, err := rc.EthSubscribe(ctx, pend, "newPendingTransactions")
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Unsubscribe()

	// Blocks 1 and 2 are sealed now.
	f.mu.Lock()
	f.head = 2
	f.mu.Unlock()
	for n := 1; n <= 2; n++ {
		f.hub.PublishHead(&HeadEvent{Header: f.c.blocks[n].Header, Hash: f.c.blocks[n].Header.Hash()})
	}
	f.hub.PublishPendingTxs([]common.Hash{f.c.poolTx.Hash()})
	for n := 1; n <= 2; n++ {
		select {
		case h := <-heads:
			if h.Hash() != f.c.blocks[n].Header.Hash() {
				t.Fatalf("head %d: hash %s, want %s", n, h.Hash(), f.c.blocks[n].Header.Hash())
			}
		case err := <-hs.Err():
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatal("no head")
		}
	}
	// Block 2 has one log with topic B first... and one with topic B alone; the
	// filter wants topic B in position 0: only the second.
	select {
	case l := <-logs:
		want := f.c.blocks[2].Receipts[1].Logs[1]
		if l.Index != want.Index || l.TxHash != want.TxHash || l.BlockHash != f.c.blocks[2].Header.Hash() {
			t.Fatalf("log %+v, want %+v", l, want)
		}
	case <-ctx.Done():
		t.Fatal("no log")
	}
	select {
	case l := <-logs:
		t.Fatalf("unexpected log %+v", l)
	case h := <-pend:
		if h != f.c.poolTx.Hash() {
			t.Fatalf("pending %s", h)
		}
	case <-ctx.Done():
		t.Fatal("no pending hash")
	}
}

// TestWSHeadsCatchUp: a newHeads subscriber behind the hub's window reads the
// missing headers from the backend, in order.
func TestWSHeadsCatchUp(t *testing.T) {
	f := newEventFake(t)
	s := startServer(t, f, Config{})
	c := dialWS(t, s)
	sub := subscribe(t, c, `["newHeads"]`) // starts at block 1 (head 0)
	f.mu.Lock()
	f.head = 2
	f.mu.Unlock()
	// Only block 2 is published: block 1 comes from the backend.
	f.hub.PublishHead(&HeadEvent{Header: f.c.blocks[2].Header, Hash: f.c.blocks[2].Header.Hash()})
	for n := 1; n <= 2; n++ {
		fr := readFrame(t, c)
		want, _ := json.Marshal(f.c.blocks[n].Header)
		if fr.Params.Subscription != sub || string(fr.Params.Result) != string(want) {
			t.Fatalf("head %d:\n got %s\nwant %s", n, fr.Params.Result, want)
		}
	}
}

// TestWSSlowReader: a subscriber that never reads holds at most WSQueueBytes
// queued, never slows the publisher, and is closed when a write times out.
func TestWSSlowReader(t *testing.T) {
	f := newEventFake(t)
	cfg := Config{WSQueueBytes: 256 << 10, WriteTimeout: 500 * time.Millisecond}
	s := startServer(t, f, cfg)
	c := dialWS(t, s)
	subscribe(t, c, `["miniBlocks"]`)
	// ~12 KiB per mini-block, 4,000 of them (~48 MiB) while the client reads nothing.
	start := time.Now()
	var peak int64
	for range 40 {
		f.addMinis(100, 128, true)
		peak = max(peak, s.wsQueued.Load())
		time.Sleep(5 * time.Millisecond)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("publishing took %v: a slow subscriber blocked the publisher", d)
	}
	limit := int64(cfg.WSQueueBytes) + 16<<10 // one frame may exceed the limit when the queue is empty
	deadline := time.Now().Add(10 * time.Second)
	for {
		peak = max(peak, s.wsQueued.Load())
		s.wsMu.Lock()
		open := s.wsConns
		s.wsMu.Unlock()
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow connection was never closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if peak > limit {
		t.Errorf("queued %d bytes for one slow connection, limit %d", peak, limit)
	}
	if q := s.wsQueued.Load(); q != 0 {
		t.Errorf("%d bytes still accounted after close", q)
	}
}

// TestWSFloodWithoutReading: a client that sends requests and never reads the
// answers is closed once its answers exceed the queue limit.
func TestWSFloodWithoutReading(t *testing.T) {
	f := newEventFake(t)
	s := startServer(t, f, Config{WSQueueBytes: 64 << 10, WriteTimeout: 300 * time.Millisecond})
	c := dialWS(t, s)
	req := []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["0x2",true]}`)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		if err := c.WriteMessage(websocket.TextMessage, req); err != nil {
			return // closed by the server
		}
	}
	t.Fatal("a client that never reads was not closed")
}

func TestWSLimitsAndOrigin(t *testing.T) {
	f := newEventFake(t)
	s := startServer(t, f, Config{WSMaxConns: 1})
	dialWS(t, s)
	_, resp, err := websocket.DefaultDialer.Dial("ws://"+s.Addr(), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second connection over WSMaxConns=1: %v %v", err, resp)
	}
	s2 := startServer(t, f, Config{CORSOrigins: []string{"https://wallet.example"}})
	for origin, ok := range map[string]bool{"https://evil.example": false, "https://wallet.example": true, "http://localhost:3000": true} {
		c, resp, err := websocket.DefaultDialer.Dial("ws://"+s2.Addr(), http.Header{"Origin": {origin}})
		if ok != (err == nil) {
			t.Errorf("origin %s: err %v resp %v", origin, err, resp)
		}
		if c != nil {
			c.Close()
		}
	}
}

func TestWSStopClosesConnections(t *testing.T) {
	f := newEventFake(t)
	s := startServer(t, f, Config{})
	c := dialWS(t, s)
	subscribe(t, c, `["miniBlocks"]`)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Stop took %v with an open WebSocket", d)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); err == nil {
		t.Fatal("connection still open after Stop")
	}
}

func TestWSMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := newEventFake(t)
	s := startServer(t, f, Config{Metrics: NewPromMetrics(reg), MaxBodyBytes: 1024})
	c := dialWS(t, s)
	subscribe(t, c, `["miniBlocks"]`)
	subscribe(t, c, `["newHeads"]`)
	out := scrape(t, reg)
	for _, want := range []string{
		"kestrel_rpc_ws_connections 1",
		`kestrel_rpc_ws_subscriptions{kind="miniBlocks"} 1`,
		`kestrel_rpc_ws_subscriptions{kind="newHeads"} 1`,
		`kestrel_rpc_requests_total{method="eth_subscribe"} 2`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// An oversized frame closes the connection: counted by reason.
	_ = c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat(" ", 2048)))
	deadline := time.Now().Add(5 * time.Second)
	for {
		out = scrape(t, reg)
		if strings.Contains(out, `kestrel_rpc_ws_closed_total{reason="frame_too_large"} 1`) &&
			strings.Contains(out, "kestrel_rpc_ws_connections 0") &&
			strings.Contains(out, `kestrel_rpc_ws_subscriptions{kind="miniBlocks"} 0`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the oversized frame:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// FuzzWSBody feeds arbitrary frames to the WebSocket dispatch (eth_subscribe and
// eth_unsubscribe included): no panic, every answer valid JSON-RPC, and the
// connection never holds more subscriptions than its limit.
func FuzzWSBody(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["miniBlocks",{"fromIndex":"0x10"}]}`,
		`{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["logs",{"address":[],"topics":[null,["0x00"]]}]}`,
		`[{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]},{"jsonrpc":"2.0","id":2,"method":"eth_unsubscribe","params":["0x1"]}]`,
		`{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newPendingTransactions",true]}`,
		`{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["miniBlocks",{"fromIndex":1e99}]}`,
		`{"jsonrpc":"2.0","id":1,"method":"eth_unsubscribe","params":[{}]}`,
	} {
		f.Add([]byte(seed))
	}
	s := newTestServer(f, newEventFake(f), Config{WSMaxSubscriptions: 4})
	w := newWSConn(s, nil, "fuzz") // handlers only: no socket, subscriptions are not started
	f.Fuzz(func(t *testing.T, body []byte) {
		call := &wsCall{conn: w}
		out := s.serveWSBody(context.WithValue(w.ctx, wsCallKey{}, call), body, nil)
		checkResponseBody(t, body, out)
		w.mu.Lock()
		n := len(w.subs)
		w.mu.Unlock()
		if n > 4 {
			t.Fatalf("%d subscriptions on a connection limited to 4", n)
		}
		call.cancelAll()
	})
}

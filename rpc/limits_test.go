package rpc

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/holiman/uint256"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// gateBackend makes eth_getBalance block until release is closed or the request
// context ends; every call first signals on entered.
type gateBackend struct {
	*fakeBackend
	entered chan struct{}
	release chan struct{}
}

func newGateBackend(t *testing.T) *gateBackend {
	return &gateBackend{fakeBackend: newFakeBackend(t), entered: make(chan struct{}, 64), release: make(chan struct{})}
}

func (g *gateBackend) Balance(ctx context.Context, addr common.Address, ref BlockRef) (*uint256.Int, error) {
	g.entered <- struct{}{}
	select {
	case <-g.release:
		return g.fakeBackend.Balance(ctx, addr, ref)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// stubbornBackend answers eth_getBalance after a delay, ignoring the context.
type stubbornBackend struct {
	*fakeBackend
	delay time.Duration
}

func (b *stubbornBackend) Balance(ctx context.Context, addr common.Address, ref BlockRef) (*uint256.Int, error) {
	time.Sleep(b.delay)
	return b.fakeBackend.Balance(ctx, addr, ref)
}

// slowSyncBackend delays eth_sendRawTransactionSync (observing the context).
type slowSyncBackend struct {
	*fakeBackend
	delay time.Duration
}

func (b *slowSyncBackend) SendRawTransactionSync(ctx context.Context, raw []byte, timeout time.Duration) (*ReceiptInfo, error) {
	select {
	case <-time.After(b.delay):
		return b.fakeBackend.SendRawTransactionSync(ctx, raw, timeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// readyBackend implements Readiness.
type readyBackend struct {
	*fakeBackend
	err atomic.Pointer[error]
}

func (b *readyBackend) Ready() error {
	if p := b.err.Load(); p != nil {
		return *p
	}
	return nil
}

func decodeOne(out []byte) (response, error) {
	var r response
	err := json.Unmarshal(out, &r)
	return r, err
}

func decodeBatch(t *testing.T, out []byte) []response {
	t.Helper()
	var rs []response
	if err := json.Unmarshal(out, &rs); err != nil {
		t.Fatalf("invalid batch answer %q: %v", out, err)
	}
	return rs
}

func scrape(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

func TestLimitConcurrency(t *testing.T) {
	g := newGateBackend(t)
	reg := prometheus.NewRegistry()
	const queue = 100 * time.Millisecond
	s := newTestServer(t, g, Config{MaxConcurrent: 2, QueueTimeout: queue, Metrics: NewPromMetrics(reg)})
	ctx := context.Background()
	bal := reqBody(t, 1, "eth_getBalance", g.c.addrs[1], "latest")

	var wg sync.WaitGroup
	outs := make([][]byte, 2)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = s.HandleBody(ctx, bal)
		}()
	}
	<-g.entered
	<-g.entered
	if text := scrape(t, reg); !strings.Contains(text, "kestrel_rpc_requests_in_flight 2") {
		t.Errorf("in-flight gauge while two requests run:\n%s", grepLines(text, "in_flight"))
	}

	// The third request waits QueueTimeout, then is refused.
	start := time.Now()
	e := callErr(t, s, reqBody(t, 7, "eth_chainId"))
	if e.Code != CodeLimitExceeded || !strings.Contains(e.Message, "too many concurrent requests") {
		t.Errorf("busy answer: %d %q", e.Code, e.Message)
	}
	if waited := time.Since(start); waited < queue {
		t.Errorf("refused after %v, before the queue timeout %v", waited, queue)
	}
	// A batch is refused call by call; notifications get nothing.
	out := s.HandleBody(ctx, []byte(`[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber"}]`))
	rs := decodeBatch(t, out)
	if len(rs) != 2 || rs[0].Error == nil || rs[0].Error.Code != CodeLimitExceeded || string(rs[0].ID) != "1" ||
		rs[1].Error == nil || rs[1].Error.Code != CodeLimitExceeded || string(rs[1].ID) != "2" {
		t.Errorf("busy batch: %s", out)
	}

	close(g.release)
	wg.Wait()
	for i, o := range outs {
		if r, err := decodeOne(o); err != nil || r.Error != nil {
			t.Errorf("blocked request %d: %s", i, o)
		}
	}
	// Slots are given back.
	if got := result(t, s, "eth_chainId"); string(got) != `"0x385"` {
		t.Errorf("after release: %s", got)
	}
	out = s.HandleBody(ctx, []byte(`[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber"}]`))
	if string(out) != `[{"jsonrpc":"2.0","id":1,"result":"0x385"},{"jsonrpc":"2.0","id":2,"result":"0x2"}]` {
		t.Errorf("batch after release: %s", out)
	}
	if n := len(s.slots); n != 0 {
		t.Errorf("%d slots still held", n)
	}
	text := scrape(t, reg)
	for _, want := range []string{
		`kestrel_rpc_errors_total{class="limit_exceeded",method="eth_chainId"} 3`, // the notification was refused too
		`kestrel_rpc_errors_total{class="limit_exceeded",method="eth_blockNumber"} 1`,
		"kestrel_rpc_requests_in_flight 0",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q:\n%s", want, grepLines(text, "kestrel_rpc_errors_total", "in_flight"))
		}
	}
}

// TestLimitConcurrencyQueues: a request that finds no slot gets the next free one.
func TestLimitConcurrencyQueues(t *testing.T) {
	g := newGateBackend(t)
	s := newTestServer(t, g, Config{MaxConcurrent: 1, QueueTimeout: 10 * time.Second})
	ctx := context.Background()
	bal := reqBody(t, 1, "eth_getBalance", g.c.addrs[1], "latest")
	first := make(chan []byte, 1)
	go func() { first <- s.HandleBody(ctx, bal) }()
	<-g.entered
	second := make(chan []byte, 1)
	go func() { second <- s.HandleBody(ctx, reqBody(t, 2, "eth_chainId")) }()
	select {
	case out := <-second:
		t.Fatalf("second request ran beside the first: %s", out)
	case <-time.After(50 * time.Millisecond):
	}
	close(g.release)
	for _, ch := range []chan []byte{first, second} {
		if r, err := decodeOne(<-ch); err != nil || r.Error != nil {
			t.Errorf("queued request failed: %+v %v", r.Error, err)
		}
	}
	// A batch running on several goroutines never holds more slots than exist.
	out := s.HandleBody(ctx, []byte(`[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"eth_chainId"},{"jsonrpc":"2.0","id":3,"method":"eth_chainId"}]`))
	if rs := decodeBatch(t, out); len(rs) != 3 || rs[2].Error != nil {
		t.Errorf("batch with one slot: %s", out)
	}
}

func TestLimitRequestTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	ctx := context.Background()

	// A handler that observes its context.
	g := newGateBackend(t)
	s := newTestServer(t, g, Config{RequestTimeout: timeout})
	bal := reqBody(t, 1, "eth_getBalance", g.c.addrs[1], "latest")
	start := time.Now()
	e := callErr(t, s, bal)
	if e.Code != CodeTimeout || e.Message != "request timed out" {
		t.Errorf("timeout answer: %d %q", e.Code, e.Message)
	}
	if d := time.Since(start); d < timeout || d > timeout+2*time.Second {
		t.Errorf("answered after %v", d)
	}
	// Batch items finished in time keep their answers; the rest time out.
	out := s.HandleBody(ctx, []byte(`[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},`+string(bal)+`]`))
	rs := decodeBatch(t, out)
	if len(rs) != 2 || rs[0].Error != nil || rs[1].Error == nil || rs[1].Error.Code != CodeTimeout {
		t.Errorf("batch with a slow item: %s", out)
	}
	// On one goroutine (one slot), an item after the deadline is not run at all.
	s1 := newTestServer(t, g, Config{RequestTimeout: timeout, MaxConcurrent: 1})
	out = s1.HandleBody(ctx, []byte(`[`+string(bal)+`,{"jsonrpc":"2.0","id":2,"method":"eth_chainId"}]`))
	rs = decodeBatch(t, out)
	if len(rs) != 2 || rs[0].Error == nil || rs[0].Error.Code != CodeTimeout || rs[1].Error == nil || rs[1].Error.Code != CodeTimeout {
		t.Errorf("sequential batch past the deadline: %s", out)
	}

	// A handler that ignores its context: its late result is replaced.
	sb := &stubbornBackend{fakeBackend: newFakeBackend(t), delay: 2 * timeout}
	s2 := newTestServer(t, sb, Config{RequestTimeout: timeout})
	if e := callErr(t, s2, bal); e.Code != CodeTimeout {
		t.Errorf("late result: %d %q", e.Code, e.Message)
	}

	// eth_sendRawTransactionSync may wait its own timeout, beyond RequestTimeout.
	sync := &slowSyncBackend{fakeBackend: newFakeBackend(t), delay: 2 * timeout}
	s3 := newTestServer(t, sync, Config{RequestTimeout: timeout / 2, SyncSendMaxTimeout: 4 * timeout})
	c := sync.c
	tx, err := types.SignNewTx(c.keys[2], c.signer, &types.DynamicFeeTx{ChainID: c.cfg.ChainID, Nonce: 4, GasFeeCap: big1(), Gas: 21000, To: &c.addrs[0]})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tx.MarshalBinary()
	r := do(t, s3, reqBody(t, 1, "eth_sendRawTransactionSync", hexutil.Encode(raw)))
	if r.Error != nil || !strings.Contains(string(r.Result), tx.Hash().Hex()) {
		t.Errorf("sync send beyond RequestTimeout: %+v %s", r.Error, r.Result)
	}

	var cfg Config
	if err := cfg.Check(); err != nil || cfg.RequestTimeout != DefaultRequestTimeout || cfg.RequestTimeout < cfg.SyncSendMaxTimeout {
		t.Errorf("default RequestTimeout %v (sync max %v)", cfg.RequestTimeout, cfg.SyncSendMaxTimeout)
	}
}

func TestLimitResponseSize(t *testing.T) {
	ctx := context.Background()
	f := newFakeBackend(t)
	big := func(id int) string {
		return `{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"eth_getBlockByNumber","params":["0x2",true]}`
	}
	plain := newTestServer(t, f, Config{}).HandleBody(ctx, []byte(big(1)))
	size := len(plain)
	if size < 1200 {
		t.Fatalf("test answer too small (%d bytes) to exceed the smallest limit", size)
	}

	// A single answer over the limit.
	s := newTestServer(t, f, Config{MaxResponseBytes: size - 1})
	e := callErr(t, s, []byte(big(9)))
	if e.Code != CodeTooLarge || e.Message != "response too large" {
		t.Errorf("single too large: %d %q", e.Code, e.Message)
	}
	if r := do(t, s, reqBody(t, 1, "eth_chainId")); r.Error != nil {
		t.Errorf("small answer refused: %+v", r.Error)
	}
	// Exactly at the limit is fine.
	if r := do(t, newTestServer(t, f, Config{MaxResponseBytes: size}), []byte(big(1))); r.Error != nil {
		t.Errorf("answer at the limit refused: %+v", r.Error)
	}

	// Batches: room for two of five answers.
	limit := 2*size + size/2
	body := "[" + big(1) + "," + big(2) + `,{"jsonrpc":"2.0","method":"eth_chainId"},` + big(3) + "," + big(4) + "," + big(5) + "]"
	check := func(name string, s *Server, prefix bool) {
		t.Helper()
		out := s.HandleBody(ctx, []byte(body))
		rs := decodeBatch(t, out)
		if len(rs) != 5 {
			t.Fatalf("%s: %d answers: %.300s", name, len(rs), out)
		}
		ok := 0
		for i, r := range rs {
			if string(r.ID) != strconv.Itoa(i+1) {
				t.Errorf("%s: answer %d has id %s", name, i, r.ID)
			}
			switch {
			case r.Error == nil:
				ok++
				if prefix && i >= 2 {
					t.Errorf("%s: item %d answered after the limit was crossed", name, i)
				}
			case r.Error.Code != CodeTooLarge:
				t.Errorf("%s: item %d: %d %q", name, i, r.Error.Code, r.Error.Message)
			}
		}
		if ok != 2 {
			t.Errorf("%s: %d answers fit, want 2", name, ok)
		}
		if len(out) > limit+5*200 {
			t.Errorf("%s: batch answer of %d bytes, limit %d", name, len(out), limit)
		}
	}
	// One slot: one goroutine, request order.
	check("sequential", newTestServer(t, f, Config{MaxResponseBytes: limit, MaxConcurrent: 1}), true)
	check("parallel", newTestServer(t, f, Config{MaxResponseBytes: limit}), false)

	if err := (&Config{MaxResponseBytes: 100}).Check(); err == nil {
		t.Error("MaxResponseBytes 100 accepted")
	}
	for _, bad := range []Config{{MaxConcurrent: -1}, {QueueTimeout: -1}, {RequestTimeout: -1}, {MaxResponseBytes: -1}} {
		if err := bad.Check(); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

func TestHealthAndReady(t *testing.T) {
	rb := &readyBackend{fakeBackend: newFakeBackend(t)}
	s := startServer(t, rb, Config{})
	url := "http://" + s.Addr()

	resp, out := httpDo(t, http.MethodGet, url+"/health", "", nil)
	if resp.StatusCode != 200 || string(out) != `{"status":"ok"}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("health: %d %s %v", resp.StatusCode, out, resp.Header)
	}
	resp, out = httpDo(t, http.MethodGet, url+"/ready", "", nil)
	if resp.StatusCode != 200 || string(out) != `{"status":"ok"}` {
		t.Errorf("ready: %d %s", resp.StatusCode, out)
	}
	notReady := errors.New("loop not running")
	rb.err.Store(&notReady)
	resp, out = httpDo(t, http.MethodGet, url+"/ready", "", nil)
	var body struct{ Status, Reason string }
	if resp.StatusCode != http.StatusServiceUnavailable || json.Unmarshal(out, &body) != nil || body.Status != "unavailable" || body.Reason != "loop not running" {
		t.Errorf("not ready: %d %s", resp.StatusCode, out)
	}
	// Liveness does not depend on readiness.
	if resp, _ = httpDo(t, http.MethodGet, url+"/health", "", nil); resp.StatusCode != 200 {
		t.Errorf("health while not ready: %d", resp.StatusCode)
	}
	if resp, _ = httpDo(t, http.MethodHead, url+"/ready", "", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("HEAD /ready: %d", resp.StatusCode)
	}
	rb.err.Store(nil)
	if resp, _ = httpDo(t, http.MethodGet, url+"/ready", "", nil); resp.StatusCode != 200 {
		t.Errorf("ready again: %d", resp.StatusCode)
	}
	// GET / still answers an empty 200.
	if resp, out = httpDo(t, http.MethodGet, url, "", nil); resp.StatusCode != 200 || len(out) != 0 {
		t.Errorf("GET /: %d %q", resp.StatusCode, out)
	}

	// A stopping server is not ready, whatever its backend says.
	s2 := newTestServer(t, newFakeBackend(t), Config{})
	if err := s2.ready(); err != nil {
		t.Errorf("backend without Readiness: %v", err)
	}
	s2.cancelBase()
	if err := s2.ready(); err == nil {
		t.Error("stopping server ready")
	}
}

// postEncoded posts body with the given Accept-Encoding (set explicitly, so the
// Go client neither adds gzip nor decompresses).
func postEncoded(t *testing.T, url, acceptEncoding string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept-Encoding", acceptEncoding)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, out
}

func TestGzip(t *testing.T) {
	s := startServer(t, newFakeBackend(t), Config{})
	url := "http://" + s.Addr()
	large := []byte(`[{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["0x1",true]},{"jsonrpc":"2.0","id":2,"method":"eth_getBlockByNumber","params":["0x2",true]}]`)

	resp, plain := postEncoded(t, url, "identity", large)
	if resp.Header.Get("Content-Encoding") != "" || len(plain) < gzipMinBytes || !json.Valid(plain) {
		t.Fatalf("identity: %v %d bytes", resp.Header, len(plain))
	}
	resp, zipped := postEncoded(t, url, "gzip, deflate, br", large)
	if resp.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Accept-Encoding") {
		t.Fatalf("gzip headers: %v", resp.Header)
	}
	if len(zipped) >= len(plain) {
		t.Errorf("compressed %d bytes, plain %d", len(zipped), len(plain))
	}
	zr, err := gzip.NewReader(bytes.NewReader(zipped))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(unzipped, plain) {
		t.Errorf("decompressed answer differs from the plain one:\n%s\n%s", unzipped, plain)
	}
	// The Go client asks for gzip on its own and decompresses transparently.
	resp, out := httpDo(t, http.MethodPost, url, "", large)
	if !resp.Uncompressed || !bytes.Equal(out, plain) {
		t.Errorf("transparent gzip: uncompressed=%v equal=%v", resp.Uncompressed, bytes.Equal(out, plain))
	}
	// Small answers are not compressed.
	resp, out = postEncoded(t, url, "gzip", []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`))
	if resp.Header.Get("Content-Encoding") != "" || string(out) != `{"jsonrpc":"2.0","id":1,"result":"0x385"}` {
		t.Errorf("small answer: %v %q", resp.Header, out)
	}
	// Keep-alive requests alternate between compressed and plain answers.
	for i := range 3 {
		if _, out := postEncoded(t, url, "identity", large); !bytes.Equal(out, plain) {
			t.Fatalf("round %d: plain answer changed", i)
		}
		if resp, _ := postEncoded(t, url, "gzip", large); resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("round %d: not compressed", i)
		}
	}
}

func TestCORSPreflight(t *testing.T) {
	s := startServer(t, newFakeBackend(t), Config{CORSOrigins: []string{"https://wallet.example"}})
	url := "http://" + s.Addr()
	vary := func(h http.Header) string { return strings.Join(h.Values("Vary"), ", ") }

	req, _ := http.NewRequest(http.MethodOptions, url, nil)
	req.Header.Set("Origin", "https://wallet.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type, x-wallet-version")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "https://wallet.example" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
		h.Get("Access-Control-Allow-Headers") != "content-type, x-wallet-version" || h.Get("Access-Control-Max-Age") == "" {
		t.Errorf("pre-flight: %d %v", resp.StatusCode, h)
	}
	for _, v := range []string{"Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"} {
		if !strings.Contains(vary(h), v) {
			t.Errorf("pre-flight Vary lacks %s: %q", v, vary(h))
		}
	}
	// A foreign origin gets no grant, but the answer still varies by Origin.
	resp, _ = httpDo(t, http.MethodOptions, url, "https://evil.example", nil)
	if resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Allow-Methods") != "" || !strings.Contains(vary(resp.Header), "Origin") {
		t.Errorf("foreign pre-flight: %v", resp.Header)
	}
	resp, _ = httpDo(t, http.MethodPost, url, "https://evil.example", []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`))
	if resp.Header.Get("Access-Control-Allow-Origin") != "" || !strings.Contains(vary(resp.Header), "Origin") {
		t.Errorf("foreign post: %v", resp.Header)
	}
	// So does an answer to a request without Origin (a cache must not serve it to a browser).
	resp, _ = httpDo(t, http.MethodPost, url, "", []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`))
	if !strings.Contains(vary(resp.Header), "Origin") {
		t.Errorf("post without Origin: %v", resp.Header)
	}
	resp, _ = httpDo(t, http.MethodPost, url, "https://WALLET.example", []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`))
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://WALLET.example" {
		t.Errorf("origin match is case-insensitive: %v", resp.Header)
	}
	// Without CORS origins, no CORS headers at all.
	s2 := startServer(t, newFakeBackend(t), Config{})
	resp, _ = httpDo(t, http.MethodOptions, "http://"+s2.Addr(), "https://wallet.example", nil)
	if resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Vary") != "" {
		t.Errorf("CORS off: %v", resp.Header)
	}
}

func TestMetricsSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := newFakeBackend(t)
	s := newTestServer(t, f, Config{Metrics: NewPromMetrics(reg)})
	ctx := context.Background()
	chainID := s.HandleBody(ctx, reqBody(t, 1, "eth_chainId"))
	s.HandleBody(ctx, reqBody(t, 1, "eth_chainId"))
	callErr(t, s, reqBody(t, 1, "eth_getBalance", "0xzz", "latest"))
	callErr(t, s, []byte(`{"jsonrpc":`))
	f.callErr = &RevertError{Reason: "nope", Data: []byte{1}}
	callErr(t, s, reqBody(t, 1, "eth_call", map[string]any{"to": f.c.contract}, "latest"))
	s.HandleBody(ctx, []byte(`[{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"},{"jsonrpc":"2.0","method":"eth_blockNumber"}]`))

	text := scrape(t, reg)
	for _, want := range []string{
		`kestrel_rpc_requests_total{method="eth_chainId"} 2`,
		`kestrel_rpc_requests_total{method="eth_blockNumber"} 2`,
		`kestrel_rpc_request_duration_seconds_count{method="eth_chainId"} 2`,
		`kestrel_rpc_request_duration_seconds_bucket{method="eth_chainId",le="+Inf"} 2`,
		`kestrel_rpc_response_bytes_total{method="eth_chainId"} ` + strconv.Itoa(2*len(chainID)),
		`kestrel_rpc_errors_total{class="invalid_params",method="eth_getBalance"} 1`,
		`kestrel_rpc_errors_total{class="parse_error",method="unknown"} 1`,
		`kestrel_rpc_errors_total{class="reverted",method="eth_call"} 1`,
		`kestrel_rpc_requests_in_flight 0`,
		`kestrel_rpc_response_size_bytes_count 7`,
		`kestrel_rpc_requests_total{method="eth_getLogs"} 0`, // every method's series exist from the start
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(text, `class="invalid_params",method="eth_chainId"`) {
		t.Error("error series for a method without errors")
	}
	if t.Failed() {
		t.Log(grepLines(text, "kestrel_rpc_requests_total{method=\"eth_c", "kestrel_rpc_errors", "in_flight", "size_bytes_count", "eth_chainId"))
	}

	// A metrics hook given as NoopMetrics is skipped; nil records nothing.
	if s := newTestServer(t, f, Config{Metrics: NoopMetrics{}}); s.metrics != nil {
		t.Error("NoopMetrics kept")
	}
}

// TestMetricUnknownMethodLabel: method names clients make up do not become
// label values.
func TestMetricUnknownMethodLabel(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newTestServer(t, newFakeBackend(t), Config{Metrics: NewPromMetrics(reg)})
	ctx := context.Background()
	var batch strings.Builder
	batch.WriteByte('[')
	for i := range 100 {
		s.HandleBody(ctx, reqBody(t, i, "bogus_"+strconv.Itoa(i)))
		if i > 0 {
			batch.WriteByte(',')
		}
		batch.WriteString(`{"jsonrpc":"2.0","id":1,"method":"alsoBogus` + strconv.Itoa(i) + `"}`)
	}
	batch.WriteString(`,{"jsonrpc":"2.0","id":{},"method":"eth_chainId"}]`) // invalid id: invalid request
	s.HandleBody(ctx, []byte(batch.String()))

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	labels := make(map[string]bool)
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() != "method" {
					continue
				}
				v := lp.GetValue()
				labels[v] = true
				if _, ok := methods[v]; !ok && v != MethodUnknown {
					t.Errorf("%s has method label %q", mf.GetName(), v)
				}
			}
		}
	}
	if len(labels) > len(methods)+1 {
		t.Errorf("%d method labels for %d methods", len(labels), len(methods))
	}
	text := scrape(t, reg)
	for _, want := range []string{
		`kestrel_rpc_requests_total{method="unknown"} 201`,
		`kestrel_rpc_errors_total{class="method_not_found",method="unknown"} 200`,
		`kestrel_rpc_errors_total{class="invalid_request",method="unknown"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q:\n%s", want, grepLines(text, `method="unknown"`))
		}
	}
	// A direct call with a made-up name is folded too.
	pm := NewPromMetrics(nil)
	pm.RecordRequest("made_up", CodeMethodNotFound, time.Millisecond, 10)
	if _, ok := pm.byMethod["made_up"]; ok {
		t.Error("made-up method got its own series")
	}
}

func TestMetricCodeClass(t *testing.T) {
	for code, want := range map[int]string{
		CodeParseError: "parse_error", CodeInvalidRequest: "invalid_request", CodeMethodNotFound: "method_not_found",
		CodeInvalidParams: "invalid_params", CodeInternal: "internal_error", CodeDefault: "server_error", -32099: "server_error",
		CodeTimeout: "timeout", CodeTooLarge: "response_too_large", CodeLimitExceeded: "limit_exceeded",
		CodeReverted: "reverted", CodeTxSyncTimeout: "tx_sync_timeout", 12345: "other", -31999: "other",
	} {
		if got := codeClass(code); got != want {
			t.Errorf("codeClass(%d) = %q, want %q", code, got, want)
		}
	}
}

// grepLines returns the lines of text containing any of subs (for failure output).
func grepLines(text string, subs ...string) string {
	var b strings.Builder
	for _, line := range strings.Split(text, "\n") {
		for _, s := range subs {
			if strings.Contains(line, s) {
				b.WriteString(line)
				b.WriteByte('\n')
				break
			}
		}
	}
	return b.String()
}

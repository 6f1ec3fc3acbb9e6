package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/ethclient/gethclient"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	kesthttptest "github.com/kestrel-l2/kestrel/internal/httptest"
)

func startServer(t testing.TB, b Backend, cfg Config) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s := newTestServer(t, b, cfg)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return s
}

func TestEthclient(t *testing.T) {
	f := newFakeBackend(t)
	s := startServer(t, f, Config{})
	if strings.HasSuffix(s.Addr(), ":0") {
		t.Fatalf("Addr not resolved: %s", s.Addr())
	}
	ctx := context.Background()
	rc, err := gethrpc.DialContext(ctx, "http://"+s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	ec := ethclient.NewClient(rc)
	c := f.c

	id, err := ec.ChainID(ctx)
	if err != nil || id.Int64() != 901 {
		t.Fatalf("chain id %v %v", id, err)
	}
	if n, err := ec.BlockNumber(ctx); err != nil || n != 2 {
		t.Fatalf("block number %v %v", n, err)
	}
	if nv, err := ec.NetworkID(ctx); err != nil || nv.Int64() != 901 {
		t.Fatalf("network id %v %v", nv, err)
	}

	// Blocks decode into go-ethereum blocks with the same hash and transactions.
	for n, want := range c.blocks {
		got, err := ec.BlockByNumber(ctx, big.NewInt(int64(n)))
		if err != nil {
			t.Fatalf("block %d: %v", n, err)
		}
		if got.Hash() != want.Hash || len(got.Transactions()) != len(want.Txs) {
			t.Fatalf("block %d: hash %v want %v", n, got.Hash(), want.Hash)
		}
		for i, tx := range got.Transactions() {
			if tx.Hash() != want.Txs[i].Hash() {
				t.Errorf("block %d tx %d hash", n, i)
			}
			if from, err := types.Sender(types.LatestSigner(c.cfg), tx); err != nil || from != want.Senders[i] {
				t.Errorf("block %d tx %d sender %v", n, i, err)
			}
		}
		byHash, err := ec.BlockByHash(ctx, want.Hash)
		if err != nil || byHash.Hash() != want.Hash {
			t.Fatalf("block by hash %d: %v", n, err)
		}
		h, err := ec.HeaderByHash(ctx, want.Hash)
		if err != nil || h.Hash() != want.Hash || h.BaseFee.Cmp(want.Header.BaseFee) != 0 || *h.ParentBeaconRoot != *want.Header.ParentBeaconRoot {
			t.Fatalf("header %d: %v", n, err)
		}
		if cnt, err := ec.TransactionCount(ctx, want.Hash); err != nil || int(cnt) != len(want.Txs) {
			t.Fatalf("tx count %d: %v %v", n, cnt, err)
		}
	}
	if _, err := ec.BlockByNumber(ctx, big.NewInt(50)); err != ethereum.NotFound {
		t.Fatalf("unknown block: %v", err)
	}
	latest, err := ec.HeaderByNumber(ctx, nil)
	if err != nil || latest.Hash() != c.blocks[2].Hash {
		t.Fatalf("latest header: %v", err)
	}

	// Transactions and receipts.
	for _, b := range c.blocks[1:] {
		for i, want := range b.Txs {
			tx, pending, err := ec.TransactionByHash(ctx, want.Hash())
			if err != nil || pending || tx.Hash() != want.Hash() {
				t.Fatalf("tx %v: %v pending=%v", want.Hash(), err, pending)
			}
			if from, err := ec.TransactionSender(ctx, tx, b.Hash, uint(i)); err != nil || from != b.Senders[i] {
				t.Fatalf("sender: %v %v", from, err)
			}
			inBlock, err := ec.TransactionInBlock(ctx, b.Hash, uint(i))
			if err != nil || inBlock.Hash() != want.Hash() {
				t.Fatalf("tx in block: %v", err)
			}
			r, err := ec.TransactionReceipt(ctx, want.Hash())
			if err != nil {
				t.Fatalf("receipt: %v", err)
			}
			wr := b.Receipts[i]
			if r.TxHash != wr.TxHash || r.BlockHash != b.Hash || r.BlockNumber.Cmp(wr.BlockNumber) != 0 || r.GasUsed != wr.GasUsed ||
				r.CumulativeGasUsed != wr.CumulativeGasUsed || r.Status != wr.Status || r.ContractAddress != wr.ContractAddress ||
				r.EffectiveGasPrice.Cmp(wr.EffectiveGasPrice) != 0 || r.Bloom != wr.Bloom || len(r.Logs) != len(wr.Logs) ||
				r.TransactionIndex != wr.TransactionIndex || r.Type != wr.Type {
				t.Fatalf("receipt mismatch for %v:\n got %+v\nwant %+v", want.Hash(), r, wr)
			}
			for j, l := range r.Logs {
				wl := wr.Logs[j]
				if l.Address != wl.Address || l.Index != wl.Index || l.BlockHash != wl.BlockHash || l.TxHash != wl.TxHash || !bytes.Equal(l.Data, wl.Data) {
					t.Fatalf("log mismatch %+v vs %+v", l, wl)
				}
			}
		}
		rs, err := ec.BlockReceipts(ctx, gethrpc.BlockNumberOrHashWithHash(b.Hash, false))
		if err != nil || len(rs) != len(b.Receipts) {
			t.Fatalf("block receipts: %v", err)
		}
	}
	// Pool transaction: pending.
	if _, pending, err := ec.TransactionByHash(ctx, c.poolTx.Hash()); err != nil || !pending {
		t.Fatalf("pool tx: pending=%v %v", pending, err)
	}
	if _, err := ec.TransactionReceipt(ctx, common.Hash{7}); err != ethereum.NotFound {
		t.Fatalf("unknown receipt: %v", err)
	}

	// Logs.
	logs, err := ec.FilterLogs(ctx, ethereum.FilterQuery{FromBlock: big.NewInt(0), Addresses: []common.Address{c.contract}, Topics: [][]common.Hash{{c.topicA}}})
	if err != nil || len(logs) != 2 || logs[0].BlockHash != c.blocks[1].Hash || logs[1].Index != 0 || logs[1].TxIndex != 1 {
		t.Fatalf("logs: %v %+v", err, logs)
	}
	bh := c.blocks[2].Hash
	logs, err = ec.FilterLogs(ctx, ethereum.FilterQuery{BlockHash: &bh})
	if err != nil || len(logs) != 2 {
		t.Fatalf("logs by hash: %v %d", err, len(logs))
	}

	// State.
	bal, err := ec.BalanceAt(ctx, c.addrs[0], nil)
	if err != nil || bal.String() != "1000000000000000000000000" {
		t.Fatalf("balance %v %v", bal, err)
	}
	if n, err := ec.NonceAt(ctx, c.addrs[0], big.NewInt(1)); err != nil || n != 3 {
		t.Fatalf("nonce %v %v", n, err)
	}
	if n, err := ec.PendingNonceAt(ctx, c.addrs[0]); err != nil || n != 13 {
		t.Fatalf("pending nonce %v %v", n, err)
	}
	if code, err := ec.CodeAt(ctx, c.contract, nil); err != nil || len(code) != 5 {
		t.Fatalf("code %x %v", code, err)
	}
	if v, err := ec.StorageAt(ctx, c.contract, common.Hash{31: 4}, nil); err != nil || v[31] != 5 {
		t.Fatalf("storage %x %v", v, err)
	}
	if out, err := ec.CallContract(ctx, ethereum.CallMsg{From: c.addrs[0], To: &c.contract, Data: []byte{1}}, nil); err != nil || !bytes.Equal(out, []byte{0xca, 0xfe}) {
		t.Fatalf("call %x %v", out, err)
	}
	if out, err := ec.PendingCallContract(ctx, ethereum.CallMsg{To: &c.contract}); err != nil || len(out) != 2 || f.lastRef.Tag != TagPending {
		t.Fatalf("pending call %x %v", out, err)
	}
	if gas, err := ec.EstimateGas(ctx, ethereum.CallMsg{From: c.addrs[0], To: &c.contract, Value: big.NewInt(1)}); err != nil || gas != 21512 {
		t.Fatalf("estimate %v %v", gas, err)
	}
	if tip, err := ec.SuggestGasTipCap(ctx); err != nil || tip.Int64() != gwei {
		t.Fatalf("tip %v %v", tip, err)
	}
	if price, err := ec.SuggestGasPrice(ctx); err != nil || price.Cmp(new(big.Int).Add(c.pending.Header.BaseFee, big.NewInt(gwei))) != 0 {
		t.Fatalf("gas price %v %v", price, err)
	}
	fh, err := ec.FeeHistory(ctx, 2, nil, []float64{25, 75})
	if err != nil || fh.OldestBlock.Int64() != 1 || len(fh.BaseFee) != 3 || len(fh.Reward) != 2 || len(fh.GasUsedRatio) != 2 {
		t.Fatalf("fee history %+v %v", fh, err)
	}
	if sp, err := ec.SyncProgress(ctx); err != nil || sp != nil {
		t.Fatalf("syncing %v %v", sp, err)
	}

	// Revert data reaches the client.
	f.callErr = &RevertError{Reason: "nope", Data: []byte{1, 2, 3}}
	_, err = ec.CallContract(ctx, ethereum.CallMsg{To: &c.contract}, nil)
	if data, ok := ethclient.RevertErrorData(err); !ok || !bytes.Equal(data, []byte{1, 2, 3}) || err.Error() != "execution reverted: nope" {
		t.Fatalf("revert: %v %x", err, data)
	}
	f.callErr = nil

	// Proof.
	gc := gethclient.New(rc)
	proof, err := gc.GetProof(ctx, c.addrs[1], []string{"0x01"}, nil)
	if err != nil || proof.Nonce != 7 || len(proof.StorageProof) != 1 || proof.StorageProof[0].Value.Int64() != 0x42 || proof.Balance.Int64() != 12345 {
		t.Fatalf("proof %+v %v", proof, err)
	}

	// Sending.
	tx, _ := types.SignNewTx(c.keys[2], c.signer, &types.DynamicFeeTx{ChainID: c.cfg.ChainID, Nonce: 4, GasFeeCap: big1(), Gas: 21000, To: &c.addrs[0]})
	if err := ec.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	low, _ := types.SignNewTx(c.keys[2], c.signer, &types.DynamicFeeTx{ChainID: c.cfg.ChainID, Nonce: 0, GasFeeCap: big1(), Gas: 21000, To: &c.addrs[0]})
	if err := ec.SendTransaction(ctx, low); err == nil || err.Error() != "nonce too low: address "+c.addrs[2].Hex()+", tx: 0 state: 1" {
		t.Fatalf("nonce too low: %v", err)
	}
	timeout := 300 * time.Millisecond
	r, err := ec.SendTransactionSync(ctx, tx, &timeout)
	if err != nil || r.TxHash != tx.Hash() || r.BlockNumber.Int64() != 3 {
		t.Fatalf("sync send: %v %+v", err, r)
	}
	f.syncTimeout = true
	_, err = ec.SendTransactionSync(ctx, tx, nil)
	var de gethrpc.DataError
	var ce gethrpc.Error
	if !errorsAs(err, &de) || !errorsAs(err, &ce) || ce.ErrorCode() != 4 || de.ErrorData() != tx.Hash().Hex() {
		t.Fatalf("sync timeout: %v", err)
	}

	// Batches through the go-ethereum client.
	var n1, n2 string
	batch := []gethrpc.BatchElem{
		{Method: "eth_blockNumber", Result: &n1},
		{Method: "eth_chainId", Result: &n2},
		{Method: "eth_nope", Result: new(string)},
	}
	if err := rc.BatchCallContext(ctx, batch); err != nil || n1 != "0x2" || n2 != "0x385" || batch[2].Error == nil {
		t.Fatalf("batch: %v %s %s %v", err, n1, n2, batch[2].Error)
	}
}

func errorsAs(err error, target any) bool {
	switch t := target.(type) {
	case *gethrpc.DataError:
		v, ok := err.(gethrpc.DataError)
		*t = v
		return ok
	case *gethrpc.Error:
		v, ok := err.(gethrpc.Error)
		*t = v
		return ok
	}
	return false
}

func httpDo(t *testing.T, method, url, origin string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if method == http.MethodOptions {
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

func TestHTTP(t *testing.T) {
	s := startServer(t, newFakeBackend(t), Config{CORSOrigins: []string{"https://app.example"}, MaxBodyBytes: 1 << 20})
	url := "http://" + s.Addr()

	resp, out := httpDo(t, http.MethodPost, url, "https://app.example", []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`))
	if resp.StatusCode != 200 || string(out) != `{"jsonrpc":"2.0","id":1,"result":"0x385"}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("post: %d %s %v", resp.StatusCode, out, resp.Header)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("CORS header missing: %v", resp.Header)
	}
	resp, _ = httpDo(t, http.MethodPost, url, "https://evil.example", []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`))
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS for a foreign origin: %v", resp.Header)
	}
	resp, out = httpDo(t, http.MethodOptions, url, "https://app.example", nil)
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") || resp.Header.Get("Access-Control-Allow-Headers") != "content-type" {
		t.Errorf("preflight: %d %v %s", resp.StatusCode, resp.Header, out)
	}
	resp, out = httpDo(t, http.MethodGet, url, "", nil)
	if resp.StatusCode != 200 || len(out) != 0 {
		t.Errorf("get: %d %s", resp.StatusCode, out)
	}
	resp, out = httpDo(t, http.MethodPut, url, "", []byte(`{}`))
	if resp.StatusCode != http.StatusMethodNotAllowed || !json.Valid(out) {
		t.Errorf("put: %d %s", resp.StatusCode, out)
	}
	// Over the body limit: 413 with a JSON-RPC error.
	// It is refused from the Content-Length, before the body is read, so the
	// request only declares it (a client still writing would race the close).
	resp, out, err := kesthttptest.PostDeclaredLength(s.Addr(), 2<<20)
	if err != nil {
		t.Fatalf("no answer to an oversized body: %v", err)
	}
	var r response
	if resp.StatusCode != http.StatusRequestEntityTooLarge || json.Unmarshal(out, &r) != nil || r.Error == nil || r.Error.Code != CodeInvalidRequest {
		t.Errorf("too large: %d %s", resp.StatusCode, out)
	}
	// Parse errors are JSON-RPC errors with HTTP 200.
	resp, out = httpDo(t, http.MethodPost, url, "", []byte(`{"jsonrpc":`))
	if resp.StatusCode != 200 || !strings.Contains(string(out), `"code":-32700`) || !strings.Contains(string(out), `"id":null`) {
		t.Errorf("parse error: %d %s", resp.StatusCode, out)
	}
	// Only notifications: empty body.
	resp, out = httpDo(t, http.MethodPost, url, "", []byte(`{"jsonrpc":"2.0","method":"eth_chainId"}`))
	if resp.StatusCode != 200 || len(out) != 0 {
		t.Errorf("notification: %d %q", resp.StatusCode, out)
	}
	// Several requests on one keep-alive connection reuse the response buffer.
	for i := range 5 {
		_, out = httpDo(t, http.MethodPost, url, "", []byte(`[{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"},{"jsonrpc":"2.0","id":2,"method":"eth_chainId"}]`))
		if string(out) != `[{"jsonrpc":"2.0","id":1,"result":"0x2"},{"jsonrpc":"2.0","id":2,"result":"0x385"}]` {
			t.Fatalf("round %d: %s", i, out)
		}
	}
}

func TestCORSWildcard(t *testing.T) {
	s := startServer(t, newFakeBackend(t), Config{CORSOrigins: []string{"*"}})
	resp, _ := httpDo(t, http.MethodPost, "http://"+s.Addr(), "https://any.example", []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`))
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("wildcard CORS: %v", resp.Header)
	}
}

func TestServerLifecycle(t *testing.T) {
	s := newTestServer(t, newFakeBackend(t), Config{Addr: "127.0.0.1:0"})
	if err := s.Stop(context.Background()); err != nil {
		t.Fatalf("stop before start: %v", err)
	}
	s = newTestServer(t, newFakeBackend(t), Config{Addr: "127.0.0.1:0"})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Fatal("second start succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Post("http://"+s.Addr(), "application/json", strings.NewReader(`{}`)); err == nil {
		t.Fatal("server still answers after Stop")
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	if err := s.Start(); err == nil {
		t.Fatal("start after stop succeeded")
	}
}

func TestConfigCheck(t *testing.T) {
	var c Config
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8545" || c.MaxBodyBytes != 5<<20 || c.MaxBatch != 1000 || c.MaxLogsRange != 10000 || c.MaxLogs != 10000 ||
		c.SyncSendMaxTimeout != 10*time.Second || c.ReadTimeout == 0 || c.WriteTimeout == 0 || c.IdleTimeout == 0 {
		t.Fatalf("defaults: %+v", c)
	}
	if c.WSMaxSubscriptions != DefaultWSMaxSubscriptions || c.WSMaxInflight != DefaultWSMaxInflight || c.WSMaxConns != DefaultWSMaxConns ||
		c.WSQueueBytes != DefaultWSQueueBytes || c.WSPingInterval != DefaultWSPingInterval || c.FilterTimeout != DefaultFilterTimeout ||
		c.MaxFilters != DefaultMaxFilters {
		t.Fatalf("WebSocket and filter defaults: %+v", c)
	}
	for _, bad := range []Config{{MaxBodyBytes: -1}, {MaxBatch: -1}, {MaxLogs: -1}, {ReadTimeout: -1}, {SyncSendMaxTimeout: -1}, {MaxBodyBytes: 10}, {CORSOrigins: []string{""}},
		{WSMaxSubscriptions: -1}, {WSMaxInflight: -1}, {WSMaxConns: -1}, {WSQueueBytes: -1}, {WSPingInterval: -1}, {FilterTimeout: -1}, {MaxFilters: -1}} {
		if err := bad.Check(); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
	if _, err := NewServer(Config{}, nil, nil); err == nil {
		t.Error("nil backend accepted")
	}
}

// blockingSync waits in SendRawTransactionSync until its context ends.
type blockingSync struct {
	*fakeBackend
	entered chan struct{}
}

func (b blockingSync) SendRawTransactionSync(ctx context.Context, raw []byte, timeout time.Duration) (*ReceiptInfo, error) {
	close(b.entered)
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestStopCancelsWaitingSyncSend(t *testing.T) {
	b := blockingSync{newFakeBackend(t), make(chan struct{})}
	s := newTestServer(t, b, Config{Addr: "127.0.0.1:0"})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Post("http://"+s.Addr(), "application/json",
			strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransactionSync","params":["0x01",60000]}`))
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		done <- result{out, err}
	}()
	<-b.entered
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	select {
	case r := <-done:
		if r.err == nil && !strings.Contains(string(r.out), "context canceled") {
			t.Errorf("waiting call answered %s", r.out)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiting call not released by Stop")
	}
}

package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

// checkResponseBody asserts that out is a valid JSON-RPC response body (one
// object or an array of them, all with jsonrpc "2.0") or empty.
func checkResponseBody(t testing.TB, body, out []byte) {
	t.Helper()
	if len(out) == 0 {
		return
	}
	if !utf8.Valid(out) {
		t.Fatalf("response to %q is not UTF-8: %q", body, out)
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil || dec.More() {
		t.Fatalf("response to %q is not JSON: %q: %v", body, out, err)
	}
	check := func(m any) {
		obj, ok := m.(map[string]any)
		if !ok || obj["jsonrpc"] != "2.0" {
			t.Fatalf("response to %q: bad member %q", body, out)
		}
		_, hasRes := obj["result"]
		_, hasErr := obj["error"]
		if hasRes == hasErr {
			t.Fatalf("response to %q: need exactly one of result/error: %q", body, out)
		}
		if _, ok := obj["id"]; !ok {
			t.Fatalf("response to %q: no id: %q", body, out)
		}
	}
	switch x := v.(type) {
	case []any:
		if len(x) == 0 {
			t.Fatalf("response to %q: empty array", body)
		}
		for _, m := range x {
			check(m)
		}
	default:
		check(x)
	}
}

func TestProtocolErrors(t *testing.T) {
	f := newFakeBackend(t)
	s := newTestServer(t, f, Config{MaxBatch: 5})
	addr := f.c.addrs[0].Hex()
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	tests := []struct {
		name string
		body string
		code int
		msg  string // substring
		id   string // expected raw id
	}{
		// Malformed JSON: go-ethereum's HTTP server reads the first JSON value
		// and answers "parse error" when there is none (empty bodies: see
		// TestMalformedBodies).
		{"truncated", `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"`, CodeParseError, "parse error", "null"},
		{"garbage", `hello`, CodeParseError, "parse error", "null"},
		{"trailing garbage", `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"} x`, 0, "", "1"},
		{"trailing value", `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}{"jsonrpc":"2.0","id":2,"method":"eth_chainId"}`, 0, "", "1"},
		{"number and garbage", `1 x`, CodeInvalidRequest, "invalid request", "null"},
		{"deep nesting", deep, CodeParseError, "parse error", "null"},
		{"bad escape", `{"jsonrpc":"2.0","id":1,"method":"\q"}`, CodeParseError, "parse error", "null"},
		{"number", `1`, CodeInvalidRequest, "invalid request", "null"},
		{"string", `"eth_chainId"`, CodeInvalidRequest, "invalid request", "null"},
		{"null", `null`, CodeInvalidRequest, "invalid request", "null"},
		{"empty object", `{}`, CodeInvalidRequest, "invalid request", "null"},
		{"no version", `{"id":7,"method":"eth_chainId"}`, CodeInvalidRequest, "invalid request", "7"},
		{"wrong version", `{"jsonrpc":"1.0","id":7,"method":"eth_chainId"}`, CodeInvalidRequest, "invalid request", "7"},
		{"numeric version", `{"jsonrpc":2.0,"id":7,"method":"eth_chainId"}`, CodeInvalidRequest, "invalid request", "7"},
		{"method not string", `{"jsonrpc":"2.0","id":7,"method":5}`, CodeInvalidRequest, "invalid request", "7"},
		{"method null", `{"jsonrpc":"2.0","id":7,"method":null}`, CodeInvalidRequest, "invalid request", "7"},
		{"empty method", `{"jsonrpc":"2.0","id":7,"method":""}`, CodeInvalidRequest, "invalid request", "7"},
		{"no method", `{"jsonrpc":"2.0","id":7}`, CodeInvalidRequest, "invalid request", "7"},
		{"object id", `{"jsonrpc":"2.0","id":{"a":1},"method":"eth_chainId"}`, CodeInvalidRequest, "invalid request", "null"},
		{"array id", `{"jsonrpc":"2.0","id":[1],"method":"eth_chainId"}`, CodeInvalidRequest, "invalid request", "null"},
		{"empty batch", `[]`, CodeInvalidRequest, "empty batch", "null"},
		{"empty batch spaces", ` [ ] `, CodeInvalidRequest, "empty batch", "null"},
		{"unknown method", `{"jsonrpc":"2.0","id":"x","method":"eth_foo"}`, CodeMethodNotFound, "the method eth_foo does not exist/is not available", `"x"`},
		{"long method", `{"jsonrpc":"2.0","id":1,"method":"` + strings.Repeat("a", 3000) + `"}`, CodeInvalidRequest, "method name too long", "1"},
		{"escaped method", `{"jsonrpc":"2.0","id":1,"method":"eth_c\u0068ainId"}`, 0, "", "1"},
		{"params object", `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":{"a":1}}`, CodeInvalidParams, "non-array args", "1"},
		{"params string", `{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":"x"}`, CodeInvalidParams, "non-array args", "1"},
		{"too many params", `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[1]}`, CodeInvalidParams, "too many arguments, want at most 0", "1"},
		{"too many params 2", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["` + addr + `","latest",1]}`, CodeInvalidParams, "too many arguments, want at most 2", "1"},
		{"missing param", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":[]}`, CodeInvalidParams, "missing value for required argument 0", "1"},
		{"null required param", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":[null]}`, CodeInvalidParams, "invalid argument 0: json: cannot unmarshal non-string into Go value of type common.Address", "1"},
		{"missing block", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["` + addr + `"]}`, CodeInvalidParams, "missing value for required argument 1", "1"},
		{"null block", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["` + addr + `",null]}`, CodeDefault, "header not found", "1"},
		{"no params", `{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber"}`, CodeInvalidParams, "missing value for required argument 0", "1"},
		{"missing bool", `{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["latest"]}`, CodeInvalidParams, "missing value for required argument 1", "1"},
		{"bool as string", `{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["latest","true"]}`, CodeInvalidParams, "cannot unmarshal string into Go value of type bool", "1"},
		{"address number", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":[12]}`, CodeInvalidParams, "non-string", "1"},
		{"address short", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x1234"]}`, CodeInvalidParams, "hex string has length 4, want 40 for common.Address", "1"},
		{"address no prefix", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["` + addr[2:] + `"]}`, CodeInvalidParams, "without 0x prefix", "1"},
		{"address bad hex", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0x` + strings.Repeat("zz", 20) + `"]}`, CodeInvalidParams, "invalid hex string", "1"},
		{"block leading zero", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["` + addr + `","0x01"]}`, CodeInvalidParams, "leading zero", "1"},
		{"block empty number", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["` + addr + `","0x"]}`, CodeInvalidParams, `hex string "0x"`, "1"},
		{"block decimal", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["` + addr + `","12"]}`, CodeInvalidParams, "without 0x prefix", "1"},
		{"block number type", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["` + addr + `",12]}`, CodeInvalidParams, "", "1"},
		{"block negative", `{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":[-1,false]}`, CodeInvalidParams, "", "1"},
		{"block huge", `{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["0x1ffffffffffffffff",false]}`, CodeInvalidParams, "hex number > 64 bits", "1"},
		{"block over int64", `{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["0x8000000000000000",false]}`, CodeInvalidParams, "larger than int64", "1"},
		{"block tag unknown", `{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["newest",false]}`, CodeInvalidParams, "", "1"},
		{"block huge number literal", `{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":[1e400,false]}`, CodeInvalidParams, "", "1"},
		{"block both", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["` + addr + `",{"blockNumber":"0x1","blockHash":"` + common.Hash{}.Hex() + `"}]}`, CodeInvalidParams, "cannot specify both", "1"},
		{"block neither", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["` + addr + `",{}]}`, CodeDefault, "header not found", "1"},
		{"block object bad", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["` + addr + `",{"blockNumber":12}]}`, CodeInvalidParams, "invalid argument 1: json: cannot unmarshal object into Go value of type string", "1"},
		{"block hash short", `{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByHash","params":["0x1234",false]}`, CodeInvalidParams, "want 64 for common.Hash", "1"},
		{"unknown block state", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["` + addr + `","0x99"]}`, CodeDefault, "header not found", "1"},
		{"raw tx odd", `{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x123"]}`, CodeInvalidParams, "odd length", "1"},
		{"raw tx no prefix", `{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["1234"]}`, CodeInvalidParams, "without 0x prefix", "1"},
		{"raw tx not string", `{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":[[1,2]]}`, CodeInvalidParams, "non-string", "1"},
		{"raw tx bad char", `{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0xgg"]}`, CodeInvalidParams, "invalid hex", "1"},
		{"raw tx garbage", `{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x02c0"]}`, CodeDefault, "", "1"},
		{"index leading zero", `{"jsonrpc":"2.0","id":1,"method":"eth_getTransactionByBlockNumberAndIndex","params":["0x1","0x00"]}`, CodeInvalidParams, "leading zero", "1"},
		{"logs hash and range", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"blockHash":"` + common.Hash{}.Hex() + `","fromBlock":"0x1"}]}`, CodeInvalidParams, "cannot specify both BlockHash and FromBlock/ToBlock", "1"},
		{"logs bad range", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"fromBlock":"0x2","toBlock":"0x1"}]}`, CodeInvalidParams, "invalid block range params", "1"},
		{"logs future", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"fromBlock":"0x1","toBlock":"0x9"}]}`, CodeInvalidParams, "beyond current head", "1"},
		{"logs pending", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"fromBlock":"pending"}]}`, CodeInvalidParams, "pending logs are not supported", "1"},
		{"logs unknown hash", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"blockHash":"` + common.Hash{9}.Hex() + `"}]}`, CodeDefault, "unknown block", "1"},
		{"logs 5 topics", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"topics":[null,null,null,null,null]}]}`, CodeInvalidParams, "exceed max topics", "1"},
		{"logs bad topic", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"topics":["0x12"]}]}`, CodeInvalidParams, "expected 32 for topic", "1"},
		{"logs topic type", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"topics":[1]}]}`, CodeInvalidParams, "invalid topic", "1"},
		{"logs address type", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"address":1}]}`, CodeInvalidParams, "invalid addresses in query", "1"},
		{"logs address item", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"address":["` + addr + `",1]}]}`, CodeInvalidParams, "non-string address at index 1", "1"},
		{"logs not object", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":["latest"]}`, CodeInvalidParams, "", "1"},
		{"storage key long", `{"jsonrpc":"2.0","id":1,"method":"eth_getStorageAt","params":["` + addr + `","0x` + strings.Repeat("1", 66) + `","latest"]}`, CodeInvalidParams, "storage key too long", "1"},
		{"call empty block object", `{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{"to":"` + addr + `"},{}]}`, CodeDefault, "header not found", "1"},
		{"estimate empty block object", `{"jsonrpc":"2.0","id":1,"method":"eth_estimateGas","params":[{"to":"` + addr + `"},{}]}`, CodeDefault, "header not found", "1"},
		{"receipts empty block object", `{"jsonrpc":"2.0","id":1,"method":"eth_getBlockReceipts","params":[{}]}`, CodeDefault, "invalid arguments; neither block nor hash specified", "1"},
		{"receipts null block", `{"jsonrpc":"2.0","id":1,"method":"eth_getBlockReceipts","params":[null]}`, CodeDefault, "invalid arguments; neither block nor hash specified", "1"},
		{"proof null block", `{"jsonrpc":"2.0","id":1,"method":"eth_getProof","params":["` + addr + `",[],null]}`, CodeDefault, "header not found", "1"},
		{"proof bad key, no block", `{"jsonrpc":"2.0","id":1,"method":"eth_getProof","params":["` + addr + `",["0xzz"],"0x99"]}`, CodeDefault, "header not found", "1"},
		{"proof bad key", `{"jsonrpc":"2.0","id":1,"method":"eth_getProof","params":["` + addr + `",["0xzz"],"latest"]}`, CodeInvalidParams, `invalid hex in storage key: "0xzz"`, "1"},
		{"block number null", `{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":[null,false]}`, CodeInvalidParams, "invalid argument 0: hex string without 0x prefix", "1"},
		{"block flag null", `{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["0x1",null]}`, 0, "", "1"},
		{"hash null", `{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByHash","params":[null,false]}`, CodeInvalidParams, "invalid argument 0: json: cannot unmarshal non-string into Go value of type common.Hash", "1"},
		{"index null", `{"jsonrpc":"2.0","id":1,"method":"eth_getTransactionByBlockNumberAndIndex","params":["0x1",null]}`, CodeInvalidParams, "invalid argument 1: json: cannot unmarshal non-string into Go value of type hexutil.Uint", "1"},
		{"raw tx null", `{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":[null]}`, CodeInvalidParams, "invalid argument 0: json: cannot unmarshal non-string into Go value of type hexutil.Bytes", "1"},
		{"logs null filter", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[null]}`, 0, "", "1"},
		{"logs not object type", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":["latest"]}`, CodeInvalidParams, "invalid argument 0: json: cannot unmarshal string into Go value of type filters.input", "1"},
		{"logs 5 topics prefix", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"topics":[null,null,null,null,"0xzz"]}]}`, CodeInvalidParams, "invalid argument 0: exceed max topics", "1"},
		{"logs topics string", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"topics":"x"}]}`, CodeInvalidParams, "invalid argument 0: json: cannot unmarshal string into Go struct field input.topics of type []interface {}", "1"},
		{"logs topic number", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"topics":[5]}]}`, CodeInvalidParams, "invalid argument 0: invalid topic(s)", "1"},
		{"logs alternatives after null", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"fromBlock":"0x0","topics":[[null,"0xzz"]]}]}`, 0, "", "1"},
		{"logs empty address", `{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{"address":""}]}`, CodeInvalidParams, "invalid argument 0: invalid address: empty hex string", "1"},
		{"storage key bad, no block", `{"jsonrpc":"2.0","id":1,"method":"eth_getStorageAt","params":["` + addr + `","0xzz","0x99"]}`, CodeDefault, "header not found", "1"},
		{"storage key number", `{"jsonrpc":"2.0","id":1,"method":"eth_getStorageAt","params":["` + addr + `",1]}`, CodeInvalidParams, "", "1"},
		{"invalid utf8 method", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_\xff\xfe\"}", CodeMethodNotFound, "\ufffd", "1"},
		{"invalid utf8 param", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_getBalance\",\"params\":[\"0x\xff\"]}", CodeInvalidParams, "", "1"},
	}
	for _, tt := range tests {
		out := s.HandleBody(context.Background(), []byte(tt.body))
		checkResponseBody(t, []byte(tt.body), out)
		var r response
		if err := json.Unmarshal(out, &r); err != nil {
			t.Errorf("%s: %s: %v", tt.name, out, err)
			continue
		}
		if tt.code == 0 {
			if r.Error != nil {
				t.Errorf("%s: unexpected error %s", tt.name, out)
			}
			continue
		}
		if r.Error == nil || r.Error.Code != tt.code || !strings.Contains(r.Error.Message, tt.msg) || string(r.ID) != tt.id {
			t.Errorf("%s: got %s; want code %d msg ~%q id %s", tt.name, out, tt.code, tt.msg, tt.id)
		}
	}
}

// TestMalformedBodies: an empty HTTP body gets no answer (go-ethereum's HTTP
// server answers nothing when there is no JSON value to read); over
// WebSocket, malformed JSON gets -32700 with the decoder's message, as
// go-ethereum's WebSocket server sends for a syntax error.
func TestMalformedBodies(t *testing.T) {
	s := newTestServer(t, newFakeBackend(t), Config{})
	for _, body := range []string{``, " \n\t "} {
		if out := s.HandleBody(context.Background(), []byte(body)); out != nil {
			t.Errorf("HTTP body %q: answered %s", body, out)
		}
	}
	for _, tt := range []struct{ body, msg string }{
		{``, "empty request body"},
		{`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"`, "unexpected end of JSON input"},
		{`hello`, "invalid character 'h' looking for beginning of value"},
		{`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"} x`, "invalid character 'x' after top-level value"},
	} {
		out := s.serveWSBody(context.Background(), []byte(tt.body), nil)
		var r response
		if err := json.Unmarshal(out, &r); err != nil || r.Error == nil || r.Error.Code != CodeParseError || r.Error.Message != tt.msg {
			t.Errorf("WebSocket message %q: got %s, want -32700 %q", tt.body, out, tt.msg)
		}
	}
}

func TestIDsEchoedVerbatim(t *testing.T) {
	s := newTestServer(t, newFakeBackend(t), Config{})
	for _, id := range []string{`1`, `0`, `-5`, `1.5e3`, `18446744073709551616123`, `"abc"`, `"a\"b\u00e9"`, `""`, `null`, `true`} {
		body := `{"jsonrpc":"2.0","method":"eth_chainId","id":` + id + `}`
		out := s.HandleBody(context.Background(), []byte(body))
		want := `{"jsonrpc":"2.0","id":` + id + `,"result":"0x385"}`
		if string(out) != want {
			t.Errorf("id %s: got %s", id, out)
		}
	}
	// Whitespace around the id is not part of it.
	out := s.HandleBody(context.Background(), []byte(`{ "id" : 7 , "method" : "eth_chainId" , "jsonrpc" : "2.0" }`))
	if string(out) != `{"jsonrpc":"2.0","id":7,"result":"0x385"}` {
		t.Errorf("spaced: %s", out)
	}
}

func TestNotifications(t *testing.T) {
	f := newFakeBackend(t)
	s := newTestServer(t, f, Config{})
	c := f.c
	tx, _ := types.SignNewTx(c.keys[1], c.signer, &types.DynamicFeeTx{ChainID: c.cfg.ChainID, Nonce: 5, GasFeeCap: big1(), Gas: 21000, To: &c.addrs[0]})
	raw, _ := tx.MarshalBinary()

	if out := s.HandleBody(context.Background(), []byte(`{"jsonrpc":"2.0","method":"eth_sendRawTransaction","params":["`+hexutil.Encode(raw)+`"]}`)); out != nil {
		t.Errorf("notification answered: %s", out)
	}
	if len(f.sent) != 1 {
		t.Errorf("notification not executed")
	}
	if out := s.HandleBody(context.Background(), []byte(`[{"jsonrpc":"2.0","method":"eth_chainId"},{"jsonrpc":"2.0","method":"nope"}]`)); out != nil {
		t.Errorf("notification batch answered: %s", out)
	}
	out := s.HandleBody(context.Background(), []byte(`[{"jsonrpc":"2.0","method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber"},{"jsonrpc":"2.0","method":"eth_chainId"}]`))
	if string(out) != `[{"jsonrpc":"2.0","id":2,"result":"0x2"}]` {
		t.Errorf("mixed batch: %s", out)
	}
	// Invalid "notifications" (no version) are answered, like go-ethereum does.
	out = s.HandleBody(context.Background(), []byte(`{"method":"eth_chainId"}`))
	if !strings.Contains(string(out), `"code":-32600`) {
		t.Errorf("invalid notification: %s", out)
	}
}

func TestBatchOrderAndLimits(t *testing.T) {
	f := newFakeBackend(t)
	s := newTestServer(t, f, Config{MaxBatch: 100})
	var sb strings.Builder
	sb.WriteString("[")
	methods := []string{"eth_chainId", "eth_blockNumber", "net_version", "eth_foo", "eth_syncing"}
	for i := range 100 {
		if i > 0 {
			sb.WriteString(",")
		}
		m := methods[i%len(methods)]
		fmt.Fprintf(&sb, `{"jsonrpc":"2.0","id":%d,"method":%q}`, i, m)
	}
	sb.WriteString("]")
	out := s.HandleBody(context.Background(), []byte(sb.String()))
	checkResponseBody(t, []byte(sb.String()), out)
	var rs []response
	if err := json.Unmarshal(out, &rs); err != nil || len(rs) != 100 {
		t.Fatalf("batch: %v %d", err, len(rs))
	}
	wants := []string{`"0x385"`, `"0x2"`, `"901"`, ``, `false`}
	for i, r := range rs {
		if string(r.ID) != fmt.Sprint(i) {
			t.Fatalf("order: item %d has id %s", i, r.ID)
		}
		if w := wants[i%5]; w == "" {
			if r.Error == nil || r.Error.Code != CodeMethodNotFound {
				t.Errorf("item %d: %+v", i, r)
			}
		} else if string(r.Result) != w {
			t.Errorf("item %d: %s want %s", i, r.Result, w)
		}
	}

	// Over the limit: one error in an array, with the first call's id.
	body := `[{"jsonrpc":"2.0","method":"eth_chainId"},` + strings.TrimPrefix(sb.String(), "[")
	out = s.HandleBody(context.Background(), []byte(body))
	if string(out) != `[{"jsonrpc":"2.0","id":0,"error":{"code":-32600,"message":"batch too large"}}]` {
		t.Errorf("too large batch: %s", out)
	}

	// Invalid members get their own errors in place.
	out = s.HandleBody(context.Background(), []byte(`[1,{"jsonrpc":"2.0","id":"a","method":"eth_chainId"},"x",{}]`))
	want := `[{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"invalid request"}},{"jsonrpc":"2.0","id":"a","result":"0x385"},` +
		`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"invalid request"}},{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"invalid request"}}]`
	if string(out) != want {
		t.Errorf("invalid members:\n got %s\nwant %s", out, want)
	}
}

func TestBatchSendRaw(t *testing.T) {
	for _, useBatcher := range []bool{false, true} {
		f := newFakeBackend(t)
		var b Backend = f
		if useBatcher {
			b = batchFake{f}
		}
		s := newTestServer(t, b, Config{})
		c := f.c
		var items []string
		var hashes []common.Hash
		for i := range 20 {
			tx, _ := types.SignNewTx(c.keys[1], c.signer, &types.DynamicFeeTx{ChainID: c.cfg.ChainID, Nonce: uint64(i), GasFeeCap: big1(), Gas: 21000, To: &c.addrs[0]})
			raw, _ := tx.MarshalBinary()
			items = append(items, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"eth_sendRawTransaction","params":["%s"]}`, i, hexutil.Encode(raw)))
			hashes = append(hashes, tx.Hash())
		}
		items = append(items, `{"jsonrpc":"2.0","id":"bad","method":"eth_sendRawTransaction","params":["0x1"]}`)
		items = append(items, `{"jsonrpc":"2.0","id":"n","method":"eth_blockNumber"}`)
		body := "[" + strings.Join(items, ",") + "]"
		out := s.HandleBody(context.Background(), []byte(body))
		var rs []response
		if err := json.Unmarshal(out, &rs); err != nil || len(rs) != 22 {
			t.Fatalf("batch: %v %s", err, out)
		}
		for i := range 20 {
			if i < 2 { // nonce too low
				if rs[i].Error == nil || !strings.HasPrefix(rs[i].Error.Message, "nonce too low: address ") {
					t.Errorf("batcher=%v item %d: %+v", useBatcher, i, rs[i])
				}
				continue
			}
			if string(rs[i].Result) != `"`+hashes[i].Hex()+`"` || string(rs[i].ID) != fmt.Sprint(i) {
				t.Errorf("batcher=%v item %d: %s", useBatcher, i, rs[i].Result)
			}
		}
		if rs[20].Error == nil || rs[20].Error.Code != CodeInvalidParams || string(rs[21].Result) != `"0x2"` {
			t.Errorf("batcher=%v tail: %+v %+v", useBatcher, rs[20], rs[21])
		}
		if useBatcher && f.batchCalls != 1 {
			t.Errorf("BatchSender called %d times", f.batchCalls)
		}
	}
}

func TestPanicRecovery(t *testing.T) {
	f := newFakeBackend(t)
	f.panicIn = "Balance"
	s := newTestServer(t, f, Config{})
	addr := f.c.addrs[1].Hex()
	e := callErr(t, s, reqBody(t, 9, "eth_getBalance", addr, "latest"))
	if e.Code != CodeInternal || e.Message != "method handler crashed" {
		t.Errorf("panic: %+v", e)
	}
	// In a batch, only the panicking items fail; order is kept.
	body := `[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"eth_getBalance","params":["` + addr + `","latest"]},` +
		`{"jsonrpc":"2.0","method":"eth_getBalance","params":["` + addr + `","latest"]},{"jsonrpc":"2.0","id":3,"method":"eth_blockNumber"}]`
	out := s.HandleBody(context.Background(), []byte(body))
	want := `[{"jsonrpc":"2.0","id":1,"result":"0x385"},{"jsonrpc":"2.0","id":2,"error":{"code":-32603,"message":"method handler crashed"}},{"jsonrpc":"2.0","id":3,"result":"0x2"}]`
	if string(out) != want {
		t.Errorf("batch with panic:\n got %s\nwant %s", out, want)
	}
	// A panic in the middle of writing a block leaves no partial output.
	f.panicIn = "BlockByRef"
	e = callErr(t, s, reqBody(t, 1, "eth_getBlockByNumber", "latest", true))
	if e.Code != CodeInternal {
		t.Errorf("block panic: %+v", e)
	}
	// A panicking BatchSender fails its items only.
	f.panicIn = "SendRawTransaction"
	sb := newTestServer(t, batchFake{f}, Config{})
	out = sb.HandleBody(context.Background(), []byte(`[{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x01"]},`+
		`{"jsonrpc":"2.0","id":2,"method":"eth_sendRawTransaction","params":["0x02"]},{"jsonrpc":"2.0","id":3,"method":"eth_chainId"}]`))
	want = `[{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"method handler crashed"}},{"jsonrpc":"2.0","id":2,"error":{"code":-32603,"message":"method handler crashed"}},{"jsonrpc":"2.0","id":3,"result":"0x385"}]`
	if string(out) != want {
		t.Errorf("batch sender panic:\n got %s\nwant %s", out, want)
	}
}

func TestBodyLimits(t *testing.T) {
	s := newTestServer(t, newFakeBackend(t), Config{MaxBodyBytes: 1 << 20})
	huge := `{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x` + strings.Repeat("ab", 1<<20) + `"]}`
	out := s.HandleBody(context.Background(), []byte(huge))
	var r response
	if err := json.Unmarshal(out, &r); err != nil || r.Error == nil || r.Error.Code != CodeInvalidRequest || !strings.Contains(r.Error.Message, "too large") {
		t.Errorf("huge body: %s", out)
	}
	// Just under the limit: decoded, then refused by the backend.
	big := `{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x` + strings.Repeat("ab", (1<<20-200)/2) + `"]}`
	e := callErr(t, s, []byte(big))
	if e.Code != CodeDefault {
		t.Errorf("big tx: %+v", e)
	}
}

func TestHandleBodyConcurrent(t *testing.T) {
	s := newTestServer(t, newFakeBackend(t), Config{})
	body := []byte(`[{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["latest",true]},{"jsonrpc":"2.0","id":2,"method":"eth_getLogs","params":[{"fromBlock":"0x0"}]}]`)
	want := s.HandleBody(context.Background(), body)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if got := s.HandleBody(context.Background(), body); string(got) != string(want) {
					t.Error("concurrent answers differ")
					return
				}
			}
		}()
	}
	wg.Wait()
}

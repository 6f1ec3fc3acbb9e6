package rpc

import (
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

func TestUncleMethods(t *testing.T) {
	f := newFakeBackend(t)
	s := newTestServer(t, f, Config{})
	b1 := f.c.blocks[1]
	for _, tc := range []struct {
		method string
		params []any
		want   string
	}{
		{"eth_getUncleCountByBlockNumber", []any{"0x1"}, `"0x0"`},
		{"eth_getUncleCountByBlockNumber", []any{"latest"}, `"0x0"`},
		{"eth_getUncleCountByBlockNumber", []any{"pending"}, `"0x0"`},
		{"eth_getUncleCountByBlockNumber", []any{"0x99"}, `null`},
		{"eth_getUncleCountByBlockHash", []any{b1.Hash}, `"0x0"`},
		{"eth_getUncleCountByBlockHash", []any{common.Hash{0x77}}, `null`},
		{"eth_getUncleByBlockNumberAndIndex", []any{"0x1", "0x0"}, `null`},
		{"eth_getUncleByBlockNumberAndIndex", []any{"0x99", "0x0"}, `null`},
		{"eth_getUncleByBlockHashAndIndex", []any{b1.Hash, "0x0"}, `null`},
		{"eth_getUncleByBlockHashAndIndex", []any{common.Hash{0x77}, "0x3"}, `null`},
	} {
		if got := result(t, s, tc.method, tc.params...); string(got) != tc.want {
			t.Errorf("%s%v: %s, want %s", tc.method, tc.params, got, tc.want)
		}
	}
}

func TestUncleMethodsBadParams(t *testing.T) {
	s := newTestServer(t, newFakeBackend(t), Config{})
	for _, tc := range []struct{ method, params, msg string }{
		{"eth_getUncleCountByBlockNumber", `[]`, "missing value for required argument 0"},
		{"eth_getUncleCountByBlockNumber", `["0x"]`, "invalid argument 0: hex string \"0x\""},
		{"eth_getUncleCountByBlockNumber", `["1"]`, "invalid argument 0: hex string without 0x prefix"},
		{"eth_getUncleCountByBlockNumber", `["0x1","0x2"]`, "too many arguments, want at most 1"},
		{"eth_getUncleCountByBlockHash", `["0x12"]`, "invalid argument 0: hex string has length 2, want 64 for common.Hash"},
		{"eth_getUncleByBlockNumberAndIndex", `["0x1"]`, "missing value for required argument 1"},
		{"eth_getUncleByBlockNumberAndIndex", `["0x1",1]`, "invalid argument 1: json: cannot unmarshal non-string into Go value of type hexutil.Uint"},
		{"eth_getUncleByBlockNumberAndIndex", `["0x1","0x01"]`, "invalid argument 1: json: cannot unmarshal hex number with leading zero digits into Go value of type hexutil.Uint"},
		{"eth_getUncleByBlockHashAndIndex", `[1,"0x0"]`, "invalid argument 0: json: cannot unmarshal non-string into Go value of type common.Hash"},
	} {
		body := []byte(`{"jsonrpc":"2.0","id":1,"method":"` + tc.method + `","params":` + tc.params + `}`)
		e := callErr(t, s, body)
		if e.Code != CodeInvalidParams || e.Message != tc.msg {
			t.Errorf("%s %s: got %d %q, want %q", tc.method, tc.params, e.Code, e.Message, tc.msg)
		}
	}
	if got := string(result(t, s, "eth_protocolVersion")); got != `"0x44"` {
		t.Errorf("eth_protocolVersion %s, want eth/68", got)
	}
	if e := callErr(t, s, reqBody(t, 1, "eth_protocolVersion", 1)); e == nil || e.Code != CodeInvalidParams {
		t.Errorf("eth_protocolVersion with a parameter: %+v", e)
	}
	// Methods go-ethereum no longer serves are unknown here too.
	for _, m := range []string{"eth_coinbase", "eth_mining"} {
		e := callErr(t, s, reqBody(t, 1, m))
		if e.Code != CodeMethodNotFound || e.Message != "the method "+m+" does not exist/is not available" {
			t.Errorf("%s: %d %q", m, e.Code, e.Message)
		}
	}
}

package rpc

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"
)

// FuzzHandleBody feeds arbitrary bodies to the server: it must not panic, and
// every answer must be valid JSON-RPC (objects with jsonrpc "2.0").
func FuzzHandleBody(f *testing.F) {
	fb := newFakeBackend(f)
	raw, _ := fb.c.blocks[1].Txs[2].MarshalBinary()
	addr := fb.c.addrs[0].Hex()
	seeds := []string{
		``, `{`, `[]`, `[1,2]`, `null`, `"x"`, `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`,
		`[{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"},{"jsonrpc":"2.0","method":"eth_chainId"}]`,
		`{"jsonrpc":"2.0","id":"a","method":"eth_getBalance","params":["` + addr + `","latest"]}`,
		`{"jsonrpc":"2.0","id":2,"method":"eth_getBlockByNumber","params":["pending",true]}`,
		`{"jsonrpc":"2.0","id":2,"method":"eth_getBlockByNumber","params":["0x1",false]}`,
		`{"jsonrpc":"2.0","id":3,"method":"eth_getLogs","params":[{"fromBlock":"0x0","topics":[null,["0x` + "00" + `"]]}]}`,
		`{"jsonrpc":"2.0","id":4,"method":"eth_sendRawTransaction","params":["` + hexutil.Encode(raw) + `"]}`,
		`{"jsonrpc":"2.0","id":5,"method":"eth_call","params":[{"to":"` + addr + `","data":"0x00","gasPrice":"0x1"},{"blockNumber":"0x1"}]}`,
		`{"jsonrpc":"2.0","id":6,"method":"eth_feeHistory","params":["0x5","latest",[10,50,90]]}`,
		`{"jsonrpc":"2.0","id":7,"method":"eth_getProof","params":["` + addr + `",["0x1"],"latest"]}`,
		`{"jsonrpc":"2.0","id":8,"method":"eth_getStorageAt","params":["` + addr + `","0x0"]}`,
		`{"jsonrpc":"2.0","id":9,"method":"eth_sendRawTransactionSync","params":["0x00",100]}`,
		`{"jsonrpc":"2.0","id":10,"method":"eth_getTransactionByBlockNumberAndIndex","params":["0x1","0x1"]}`,
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}",
		`{"jsonrpc":"2.0","id":1e999,"method":"eth_chainId","params":[[[[[[]]]]]]}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	s := newTestServer(f, fb, Config{MaxBatch: 20, MaxLogsRange: 100})
	f.Fuzz(func(t *testing.T, body []byte) {
		out := s.HandleBody(context.Background(), body)
		checkResponseBody(t, body, out)
	})
}

// FuzzValidJSON checks that validJSON accepts exactly what json.Valid accepts.
func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{``, ` `, `{}`, `[]`, `[1,2,{"a":[true,false,null]}]`, `"\u00e9\n"`, `-0.5e+3`, `01`, `1.`, `.5`, `-`,
		`{"a" 1}`, `{"a":1,}`, `[1,]`, `[1 2]`, `"\x"`, "\"\x01\"", `"\u12g4"`, `{"a":1}}`, `[[[]]]`, `nul`, `truex`, `1e`, `1e+`, `"abc`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid = %v", b, got, want)
		}
	})
}

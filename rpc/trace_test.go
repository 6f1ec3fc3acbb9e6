package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// traceFake adds Tracer to the fake backend.
type traceFake struct {
	*fakeBackend
	mu   sync.Mutex
	hash common.Hash
	cfg  *TraceConfig
	out  json.RawMessage
	err  error
}

func (f *traceFake) TraceTransaction(_ context.Context, hash common.Hash, cfg *TraceConfig) (json.RawMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hash, f.cfg = hash, cfg
	if f.err != nil {
		return nil, f.err
	}
	if _, ok := f.c.txs[hash]; !ok {
		return nil, ErrTxNotFound
	}
	return f.out, nil
}

func TestTraceTransactionNotAvailable(t *testing.T) {
	s := newTestServer(t, newFakeBackend(t), Config{})
	e := callErr(t, s, reqBody(t, 1, "debug_traceTransaction", common.Hash{}))
	if e.Code != CodeMethodNotFound || e.Message != "the method debug_traceTransaction does not exist/is not available" {
		t.Fatalf("got %d %q", e.Code, e.Message)
	}
}

func TestTraceTransactionConfig(t *testing.T) {
	f := &traceFake{fakeBackend: newFakeBackend(t), out: json.RawMessage(`{"gas":21000,"failed":false,"returnValue":"0x","structLogs":[]}`)}
	s := newTestServer(t, f, Config{})
	tx := f.c.blocks[1].Txs[0].Hash()

	got := result(t, s, "debug_traceTransaction", tx)
	if string(got) != string(f.out) || f.hash != tx {
		t.Fatalf("result %s for %s", got, f.hash)
	}
	if f.cfg == nil || f.cfg.Config != nil || f.cfg.Tracer != nil || f.cfg.Timeout != nil || f.cfg.TracerConfig != nil {
		t.Fatalf("default config %+v", f.cfg)
	}
	if d, err := f.cfg.TraceTimeout(); err != nil || d != DefaultTraceTimeout {
		t.Fatalf("default timeout %v %v", d, err)
	}

	// Struct logger options sit at the top level, case-insensitively as in go-ethereum.
	result(t, s, "debug_traceTransaction", tx, map[string]any{"disableStorage": true, "DisableStack": true, "enableMemory": true,
		"enableReturnData": true, "limit": 10, "timeout": "2h", "reexec": 5})
	c := f.cfg
	if c.Config == nil || !c.DisableStorage || !c.DisableStack || !c.EnableMemory || !c.EnableReturnData || c.Limit != 10 || *c.Reexec != 5 {
		t.Fatalf("struct logger config %+v %+v", c, c.Config)
	}
	if d, err := c.TraceTimeout(); err != nil || d != MaxTraceTimeout {
		t.Fatalf("capped timeout %v %v", d, err)
	}

	// A named tracer keeps its config raw.
	result(t, s, "debug_traceTransaction", tx, map[string]any{"tracer": "callTracer", "tracerConfig": map[string]any{"onlyTopCall": true}, "timeout": "150ms"})
	if *f.cfg.Tracer != "callTracer" || string(f.cfg.TracerConfig) != `{"onlyTopCall":true}` {
		t.Fatalf("named tracer config %+v", f.cfg)
	}
	if d, err := f.cfg.TraceTimeout(); err != nil || d != 150*time.Millisecond {
		t.Fatalf("timeout %v %v", d, err)
	}
	bad := "soon"
	if _, err := (&TraceConfig{Timeout: &bad}).TraceTimeout(); err == nil || err.Error() != `time: invalid duration "soon"` {
		t.Fatalf("bad timeout: %v", err)
	}

	// Unknown transactions and backend errors pass through.
	e := callErr(t, s, reqBody(t, 1, "debug_traceTransaction", common.Hash{0x42}))
	if e.Code != CodeDefault || e.Message != "transaction not found" {
		t.Fatalf("unknown tx: %d %q", e.Code, e.Message)
	}
	f.err = errors.New(`tracer "fooTracer" not found`)
	e = callErr(t, s, reqBody(t, 1, "debug_traceTransaction", tx, map[string]any{"tracer": "fooTracer"}))
	if e.Code != CodeDefault || e.Message != f.err.Error() {
		t.Fatalf("backend error: %d %q", e.Code, e.Message)
	}
	f.err = nil
	f.out = json.RawMessage(`{"broken"`)
	e = callErr(t, s, reqBody(t, 1, "debug_traceTransaction", tx))
	if e.Code != CodeDefault || !strings.Contains(e.Message, "invalid JSON") {
		t.Fatalf("invalid tracer output: %d %q", e.Code, e.Message)
	}
}

func TestTraceTransactionBadParams(t *testing.T) {
	f := &traceFake{fakeBackend: newFakeBackend(t), out: json.RawMessage(`{}`)}
	s := newTestServer(t, f, Config{})
	tx := `"` + f.c.blocks[1].Txs[0].Hash().Hex() + `"`
	cases := []struct{ params, msg string }{
		{`[]`, "missing value for required argument 0"},
		{`[null]`, "invalid argument 0: json: cannot unmarshal non-string into Go value of type common.Hash"},
		{`["0x12"]`, "invalid argument 0: hex string has length 2, want 64 for common.Hash"},
		{`["` + strings.Repeat("z", 66) + `"]`, "invalid argument 0: json: cannot unmarshal hex string without 0x prefix into Go value of type common.Hash"},
		{`[12]`, "invalid argument 0: json: cannot unmarshal non-string into Go value of type common.Hash"},
		{`[` + tx + `,"callTracer"]`, "invalid argument 1: json: cannot unmarshal string into Go value of type tracers.TraceConfig"},
		{`[` + tx + `,[]]`, "invalid argument 1: json: cannot unmarshal array into Go value of type tracers.TraceConfig"},
		{`[` + tx + `,7]`, "invalid argument 1: json: cannot unmarshal number into Go value of type tracers.TraceConfig"},
		{`[` + tx + `,{"tracer":1}]`, "invalid argument 1: json: cannot unmarshal number into Go struct field TraceConfig.Tracer of type string"},
		{`[` + tx + `,{"timeout":5}]`, "invalid argument 1: json: cannot unmarshal number into Go struct field TraceConfig.Timeout of type string"},
		{`[` + tx + `,{"limit":"x"}]`, "invalid argument 1: json: cannot unmarshal string into Go struct field TraceConfig.Config.Limit of type int"},
		{`[` + tx + `,{"limit":1e400}]`, "invalid argument 1: json: cannot unmarshal number 1e400 into Go struct field TraceConfig.Config.Limit of type int"},
		{`[` + tx + `,{"limit":99999999999999999999}]`, "invalid argument 1: json: cannot unmarshal number 99999999999999999999 into Go struct field TraceConfig.Config.Limit of type int"},
		{`[` + tx + `,{"disableStorage":"yes"}]`, "invalid argument 1: json: cannot unmarshal string into Go struct field TraceConfig.Config.DisableStorage of type bool"},
		{`[` + tx + `,{"reexec":-1}]`, "invalid argument 1: json: cannot unmarshal number -1 into Go struct field TraceConfig.Reexec of type uint64"},
		{`[` + tx + `,{},1]`, "too many arguments, want at most 2"},
	}
	for _, tc := range cases {
		body := []byte(`{"jsonrpc":"2.0","id":1,"method":"debug_traceTransaction","params":` + tc.params + `}`)
		e := callErr(t, s, body)
		if e.Code != CodeInvalidParams || e.Message != tc.msg {
			t.Errorf("%s: got %d %q, want %q", tc.params, e.Code, e.Message, tc.msg)
		}
	}
	// A null config is the default one; huge but valid limits decode.
	for _, p := range []string{`[` + tx + `,null]`, `[` + tx + `,{"limit":9223372036854775807,"tracerConfig":null}]`} {
		r := do(t, s, []byte(`{"jsonrpc":"2.0","id":1,"method":"debug_traceTransaction","params":`+p+`}`))
		if r.Error != nil || string(r.Result) != `{}` {
			t.Errorf("%s: %+v %s", p, r.Error, r.Result)
		}
	}
}

// FuzzTraceAndAccessListParams calls the debug_traceTransaction,
// eth_createAccessList and uncle handlers directly (no recovery around them)
// with arbitrary parameters: they must not panic, and a result must be valid JSON.
func FuzzTraceAndAccessListParams(f *testing.F) {
	fb := newFakeBackend(f)
	tx := `"` + fb.c.blocks[1].Txs[0].Hash().Hex() + `"`
	to := `"` + fb.c.contract.Hex() + `"`
	for _, seed := range []string{
		`[]`, `[null]`, `[` + tx + `]`, `[` + tx + `,{"tracer":"callTracer","tracerConfig":{"withLog":true}}]`,
		`[` + tx + `,{"limit":-1,"enableMemory":true,"timeout":"1s"}]`, `[` + tx + `,"x"]`, `["0x1"]`,
		`[{"to":` + to + `,"input":"0x00"}]`, `[{"gasPrice":"0x1"},"pending"]`, `[{"maxFeePerGas":"0x1"},{"blockNumber":"0x1"}]`,
		`[{"authorizationList":[]}]`, `[{"to":` + to + `,"gas":"0x1","authorizationList":[{}]}]`, `["0x1","0x0"]`, `["latest","0x1"]`,
	} {
		f.Add([]byte(seed))
	}
	acl := &aclFake{fakeBackend: fb}
	tr := &traceFake{fakeBackend: fb, out: json.RawMessage(`{"ok":true}`)}
	sACL, sTrace := newTestServer(f, acl, Config{}), newTestServer(f, tr, Config{})
	handlers := []struct {
		s  *Server
		fn handlerFunc
		n  int
	}{
		{sTrace, (*Server).debugTraceTransaction, 2},
		{sACL, (*Server).ethCreateAccessList, 3},
		{sACL, (*Server).ethGetUncleByBlockNumberAndIndex, 2},
		{sACL, (*Server).ethGetUncleByBlockHashAndIndex, 2},
		{sACL, (*Server).ethGetUncleCountByBlockNumber, 1},
	}
	f.Fuzz(func(t *testing.T, params []byte) {
		if !validJSON(params) {
			return
		}
		for _, h := range handlers {
			var a args
			if err := splitParams(params, &a, h.n); err != nil {
				continue
			}
			out, err := h.fn(h.s, context.Background(), &a, nil)
			if err == nil && !validJSON(out) {
				t.Fatalf("params %s: invalid result %q", params, out)
			}
		}
	})
}

// blockTraceFake adds BlockTracer: one result per transaction of the block.
type blockTraceFake struct {
	*traceFake
	ref BlockRef
}

func (f *blockTraceFake) TraceBlock(_ context.Context, ref BlockRef, cfg *TraceConfig) ([]TxTraceResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ref, f.cfg = ref, cfg
	if f.err != nil {
		return nil, f.err
	}
	b, err := f.resolve(ref)
	if err != nil {
		return nil, err
	}
	var out []TxTraceResult
	for i, tx := range b.Txs {
		if i == 1 {
			out = append(out, TxTraceResult{TxHash: tx.Hash(), Error: "execution timeout"})
			continue
		}
		out = append(out, TxTraceResult{TxHash: tx.Hash(), Result: f.out})
	}
	return out, nil
}

func TestTraceBlock(t *testing.T) {
	f := &blockTraceFake{traceFake: &traceFake{fakeBackend: newFakeBackend(t), out: json.RawMessage(`{"type":"CALL"}`)}}
	s := newTestServer(t, f, Config{})
	b := f.c.blocks[2]
	want := `[{"txHash":"` + b.Txs[0].Hash().Hex() + `","result":{"type":"CALL"}},{"txHash":"` + b.Txs[1].Hash().Hex() + `","error":"execution timeout"}]`
	if got := result(t, s, "debug_traceBlockByNumber", "0x2", map[string]any{"tracer": "callTracer"}); string(got) != want {
		t.Fatalf("by number:\n got %s\nwant %s", got, want)
	}
	if f.ref.Tag != TagNumber || f.ref.Number != 2 || f.cfg.Tracer == nil || *f.cfg.Tracer != "callTracer" {
		t.Fatalf("ref %+v cfg %+v", f.ref, f.cfg)
	}
	if got := result(t, s, "debug_traceBlockByHash", b.Hash); string(got) != want {
		t.Fatalf("by hash: %s", got)
	}
	for _, tc := range []struct {
		method string
		params []any
		code   int
		msg    string
	}{
		{"debug_traceBlockByNumber", []any{"0x99"}, CodeDefault, "block #153 not found"},
		{"debug_traceBlockByHash", []any{common.Hash{1}}, CodeDefault, "block " + common.Hash{1}.Hex() + " not found"},
		{"debug_traceBlockByNumber", []any{}, CodeInvalidParams, "missing value for required argument 0"},
		{"debug_traceBlockByNumber", []any{"0x2", "callTracer"}, CodeInvalidParams, ""},
		{"debug_traceBlockByHash", []any{"0x12"}, CodeInvalidParams, ""},
		{"debug_traceBlockByNumber", []any{"0x2", map[string]any{"timeout": 5}}, CodeInvalidParams, ""},
		{"debug_traceBlockByNumber", []any{"0x2", nil, 3}, CodeInvalidParams, ""},
	} {
		e := callErr(t, s, reqBody(t, 1, tc.method, tc.params...))
		if e == nil || e.Code != tc.code || (tc.msg != "" && e.Message != tc.msg) {
			t.Errorf("%s %v: %+v, want %d %q", tc.method, tc.params, e, tc.code, tc.msg)
		}
	}
	// Without the extension: not available.
	s2 := newTestServer(t, newFakeBackend(t), Config{})
	if e := callErr(t, s2, reqBody(t, 1, "debug_traceBlockByNumber", "0x1")); e.Code != CodeMethodNotFound {
		t.Fatalf("no BlockTracer: %+v", e)
	}
}

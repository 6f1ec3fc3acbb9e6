package rpc

import (
	"context"
	"encoding/json"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/eth/tracers"
)

// callTraceFake adds CallTracer to the fake backend: it builds the call with
// base fee 7 and records what it got.
type callTraceFake struct {
	*fakeBackend
	mu  sync.Mutex
	ref BlockRef
	cfg *TraceCallConfig
	msg *CallMsg
	tx  *types.Transaction
}

func (f *callTraceFake) TraceCall(_ context.Context, ref BlockRef, cfg *TraceCallConfig, build CallBuilder) (json.RawMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ref, f.cfg = ref, cfg
	msg, tx, err := build(big.NewInt(7))
	if err != nil {
		return nil, err
	}
	f.msg, f.tx = msg, tx
	return json.RawMessage(`{"ok":true}`), nil
}

func traceCallBody(params string) []byte {
	return []byte(`{"jsonrpc":"2.0","id":1,"method":"debug_traceCall","params":` + params + `}`)
}

func TestTraceCallNotAvailable(t *testing.T) {
	s := newTestServer(t, newFakeBackend(t), Config{})
	e := callErr(t, s, traceCallBody(`[{},"latest"]`))
	if e.Code != CodeMethodNotFound || e.Message != "the method debug_traceCall does not exist/is not available" {
		t.Fatalf("got %d %q", e.Code, e.Message)
	}
}

func TestTraceCallBadParams(t *testing.T) {
	f := &callTraceFake{fakeBackend: newFakeBackend(t)}
	s := newTestServer(t, f, Config{})
	// configErr is go-ethereum's decoding error for a config parameter.
	configErr := func(cfg string) string {
		var c *tracers.TraceCallConfig
		err := json.Unmarshal([]byte(cfg), &c)
		if err == nil {
			t.Fatalf("config %s decodes in go-ethereum", cfg)
		}
		return "invalid argument 2: " + err.Error()
	}
	cases := []struct {
		params string
		code   int
		msg    string
	}{
		{`[]`, CodeInvalidParams, "missing value for required argument 0"},
		{`["0x12"]`, CodeInvalidParams, "invalid argument 0: json: cannot unmarshal string into Go value of type ethapi.TransactionArgs"},
		{`[{"to":"0x12"},"latest"]`, CodeInvalidParams, "invalid argument 0: "},
		{`[{"gas":12},"latest"]`, CodeInvalidParams, "invalid argument 0: "},
		{`[{}]`, CodeInvalidParams, "missing value for required argument 1"},
		{`[{},12]`, CodeInvalidParams, "invalid argument 1: "},
		{`[{},"latest",{},1]`, CodeInvalidParams, "too many arguments, want at most 3"},
		{`[{},"latest","callTracer"]`, CodeInvalidParams, "invalid argument 2: json: cannot unmarshal string into Go value of type tracers.TraceCallConfig"},
		{`[{},"latest",[]]`, CodeInvalidParams, "invalid argument 2: json: cannot unmarshal array into Go value of type tracers.TraceCallConfig"},
		{`[{},"latest",{"txIndex":1}]`, CodeInvalidParams, configErr(`{"txIndex":1}`)},
		{`[{},"latest",{"txIndex":"0xzz"}]`, CodeInvalidParams, configErr(`{"txIndex":"0xzz"}`)},
		{`[{},"latest",{"txIndex":"0x10000000000000000"}]`, CodeInvalidParams, configErr(`{"txIndex":"0x10000000000000000"}`)},
		{`[{},"latest",{"txIndex":"-1"}]`, CodeInvalidParams, configErr(`{"txIndex":"-1"}`)},
		{`[{},"latest",{"tracer":1}]`, CodeInvalidParams, configErr(`{"tracer":1}`)},
		{`[{},"latest",{"timeout":5}]`, CodeInvalidParams, configErr(`{"timeout":5}`)},
		{`[{},"latest",{"stateOverrides":"x"}]`, CodeInvalidParams, configErr(`{"stateOverrides":"x"}`)},
		{`[{},"latest",{"stateOverrides":{"0x01":{"balance":1}}}]`, CodeInvalidParams, configErr(`{"stateOverrides":{"0x01":{"balance":1}}}`)},
		{`[{},"latest",{"blockOverrides":{"number":1}}]`, CodeInvalidParams, configErr(`{"blockOverrides":{"number":1}}`)},
		{`[{},"latest",{"blockOverrides":[]}]`, CodeInvalidParams, configErr(`{"blockOverrides":[]}`)},
		// The config is decoded before the block is found to name none.
		{`[{},null,"x"]`, CodeInvalidParams, "invalid argument 2: json: cannot unmarshal string into Go value of type tracers.TraceCallConfig"},
		{`[{},null]`, CodeDefault, "invalid arguments; neither block nor hash specified"},
		{`[{},{}]`, CodeDefault, "invalid arguments; neither block nor hash specified"},
		{`[{},"pending"]`, CodeDefault, "tracing on top of pending is not supported"},
		{`[{},"pending",{"txIndex":"0x0"}]`, CodeDefault, "tracing on top of pending is not supported"},
		{`[{},"0x99"]`, CodeDefault, "block #153 not found"},
		{`[{},"0x1111111111111111111111111111111111111111111111111111111111111111"]`, CodeDefault,
			"block 0x1111111111111111111111111111111111111111111111111111111111111111 not found"},
		{`[{"gasPrice":"0x1","maxFeePerGas":"0x1"},"latest"]`, CodeDefault, "both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified"},
		{`[{"chainId":"0x1"},"latest"]`, CodeDefault, "chainId does not match node's (have=1, want=901)"},
		// go-ethereum's handler crashes building a blob or set-code
		// transaction without a recipient.
		{`[{"blobVersionedHashes":[]},"latest"]`, CodeInternal, "method handler crashed"},
		{`[{"authorizationList":[]},"latest"]`, CodeInternal, "method handler crashed"},
	}
	for _, tc := range cases {
		e := callErr(t, s, traceCallBody(tc.params))
		if e.Code != tc.code || !strings.HasPrefix(e.Message, tc.msg) || (!strings.HasSuffix(tc.msg, ": ") && e.Message != tc.msg) {
			t.Errorf("%s: got %d %q, want %d %q", tc.params, e.Code, e.Message, tc.code, tc.msg)
		}
	}
}

func TestTraceCallBuild(t *testing.T) {
	f := &callTraceFake{fakeBackend: newFakeBackend(t)}
	s := newTestServer(t, f, Config{})
	to := "0x00000000000000000000000000000000000000aa"
	call := func(params string) {
		t.Helper()
		r := do(t, s, traceCallBody(params))
		if r.Error != nil || string(r.Result) != `{"ok":true}` {
			t.Fatalf("%s: %+v %s", params, r.Error, r.Result)
		}
	}

	// No fee fields: a dynamic-fee transaction with zero fees, the gas cap,
	// nonce zero; the config's parts arrive decoded.
	call(`[{"to":"` + to + `","data":"0x01"},"0x1",{"tracer":"callTracer","tracerConfig":{"onlyTopCall":true},"txIndex":"0x1",` +
		`"stateOverrides":{"` + to + `":{"balance":"0x5"}},"blockOverrides":{"number":"0x2","baseFeePerGas":"0x9"}}]`)
	if f.ref.Tag != TagNumber || f.ref.Number != 1 {
		t.Errorf("ref %+v", f.ref)
	}
	c := f.cfg
	if c.Tracer == nil || *c.Tracer != "callTracer" || string(c.TracerConfig) != `{"onlyTopCall":true}` || c.TxIndex == nil || *c.TxIndex != 1 ||
		c.StateOverrides == nil || len(*c.StateOverrides) != 1 || c.BlockOverrides == nil || c.BlockOverrides.Number.ToInt().Uint64() != 2 {
		t.Errorf("config %+v", c)
	}
	tx := f.tx
	if tx.Type() != types.DynamicFeeTxType || tx.Gas() != f.GasCap() || tx.Nonce() != 0 || tx.GasFeeCap().Sign() != 0 ||
		tx.GasTipCap().Sign() != 0 || tx.ChainId().Uint64() != 901 || tx.To() == nil || !strings.EqualFold(tx.To().Hex(), to) {
		t.Errorf("tx %+v", tx)
	}
	if f.msg.Gas != tx.Gas() || f.msg.GasPrice.Sign() != 0 || len(f.msg.Data) != 1 {
		t.Errorf("msg %+v", f.msg)
	}

	// 1559 fees: the price derived from the base fee the backend gives.
	call(`[{"to":"` + to + `","maxFeePerGas":"0x10","maxPriorityFeePerGas":"0x2","gas":"0x5208","nonce":"0x3"},"latest"]`)
	if f.tx.Type() != types.DynamicFeeTxType || f.tx.Gas() != 21000 || f.tx.Nonce() != 3 || f.tx.GasFeeCap().Uint64() != 16 ||
		f.msg.GasPrice.Uint64() != 9 {
		t.Errorf("1559: tx %+v msg %+v", f.tx, f.msg)
	}
	if f.cfg.Tracer != nil || f.cfg.TxIndex != nil {
		t.Errorf("default config %+v", f.cfg)
	}

	// A gas price makes a legacy transaction; gas above the cap is capped.
	call(`[{"to":"` + to + `","gasPrice":"0x3","gas":"0xffffffffffffff","accessList":[]},{"blockNumber":"0x1"},null]`)
	if f.tx.Type() != types.LegacyTxType || f.tx.GasPrice().Uint64() != 3 || f.tx.Gas() != f.GasCap() {
		t.Errorf("legacy: tx %+v", f.tx)
	}

	// Blob hashes and authorizations with a recipient.
	call(`[{"to":"` + to + `","blobVersionedHashes":[]},"latest"]`)
	if f.tx.Type() != types.BlobTxType || f.tx.BlobGasFeeCap().Sign() != 0 {
		t.Errorf("blob: tx %+v", f.tx)
	}
	call(`[{"to":"` + to + `","authorizationList":[]},"latest"]`)
	if f.tx.Type() != types.SetCodeTxType {
		t.Errorf("set code: tx %+v", f.tx)
	}
}

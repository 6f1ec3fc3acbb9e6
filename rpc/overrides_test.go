package rpc

import (
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

// TestCallOverridesReachTheBackend: the state and block overrides of eth_call
// and eth_estimateGas (parameters 2 and 3) are decoded as go-ethereum's and
// handed to the backend on CallMsg; null means none.
func TestCallOverridesReachTheBackend(t *testing.T) {
	f := newFakeBackend(t)
	s := newTestServer(t, f, Config{})
	c := f.c
	so := map[string]any{c.contract.Hex(): map[string]any{"balance": "0x1", "nonce": "0x2", "code": "0x6001",
		"stateDiff": map[string]any{common.Hash{1}.Hex(): common.Hash{2}.Hex()}}}
	bo := map[string]any{"number": "0x1000", "time": "0x70000000", "feeRecipient": c.addrs[1], "baseFeePerGas": "0x7"}
	for _, method := range []string{"eth_call", "eth_estimateGas"} {
		result(t, s, method, map[string]any{"to": c.contract}, "latest", so, bo)
		m := f.lastCall
		if m.StateOverrides == nil || m.BlockOverrides == nil {
			t.Fatalf("%s: overrides not passed: %+v", method, m)
		}
		acct, ok := (*m.StateOverrides)[c.contract]
		if !ok || acct.Balance.ToInt().Uint64() != 1 || uint64(*acct.Nonce) != 2 || len(*acct.Code) != 2 || acct.StateDiff[common.Hash{1}] != (common.Hash{2}) {
			t.Errorf("%s: state override %+v", method, acct)
		}
		b := m.BlockOverrides
		if b.Number.ToInt().Uint64() != 0x1000 || uint64(*b.Time) != 0x70000000 || *b.FeeRecipient != c.addrs[1] || b.BaseFeePerGas.ToInt().Uint64() != 7 {
			t.Errorf("%s: block override %+v", method, b)
		}
		result(t, s, method, map[string]any{"to": c.contract}, "latest", nil, nil)
		if f.lastCall.StateOverrides != nil || f.lastCall.BlockOverrides != nil {
			t.Errorf("%s: null overrides passed as %+v %+v", method, f.lastCall.StateOverrides, f.lastCall.BlockOverrides)
		}
		result(t, s, method, map[string]any{"to": c.contract}, "latest", map[string]any{})
		if f.lastCall.StateOverrides == nil || len(*f.lastCall.StateOverrides) != 0 || f.lastCall.BlockOverrides != nil {
			t.Errorf("%s: empty state override passed as %+v", method, f.lastCall.StateOverrides)
		}
	}
}

// TestCallBlobFields: blob versioned hashes (even an empty list) make a blob
// call, with a zero blob fee cap unless one is given, as go-ethereum's
// CallDefaults and ToMessage.
func TestCallBlobFields(t *testing.T) {
	f := newFakeBackend(t)
	s := newTestServer(t, f, Config{})
	to := f.c.contract
	result(t, s, "eth_call", map[string]any{"to": to})
	if m := f.lastCall; m.BlobHashes != nil || m.BlobFeeCap != nil {
		t.Errorf("no blob fields: %v %v", m.BlobHashes, m.BlobFeeCap)
	}
	result(t, s, "eth_call", map[string]any{"to": to, "blobVersionedHashes": []string{}})
	if m := f.lastCall; m.BlobHashes == nil || len(m.BlobHashes) != 0 || m.BlobFeeCap == nil || m.BlobFeeCap.Sign() != 0 {
		t.Errorf("empty hashes: %v %v", m.BlobHashes, m.BlobFeeCap)
	}
	h := common.Hash{1, 2}
	result(t, s, "eth_estimateGas", map[string]any{"to": to, "blobVersionedHashes": []common.Hash{h}, "maxFeePerBlobGas": "0x9"})
	if m := f.lastCall; len(m.BlobHashes) != 1 || m.BlobHashes[0] != h || m.BlobFeeCap.Uint64() != 9 {
		t.Errorf("hashes with fee cap: %v %v", m.BlobHashes, m.BlobFeeCap)
	}
	result(t, s, "eth_call", map[string]any{"to": to, "maxFeePerBlobGas": "0x9"})
	if m := f.lastCall; m.BlobHashes != nil || m.BlobFeeCap.Uint64() != 9 {
		t.Errorf("fee cap alone: %v %v", m.BlobHashes, m.BlobFeeCap)
	}
	e := callErr(t, s, reqBody(t, 1, "eth_call", map[string]any{"to": to, "blobVersionedHashes": "0x12"}))
	if want := "invalid argument 0: json: cannot unmarshal string into Go struct field TransactionArgs.blobVersionedHashes of type []common.Hash"; e.Code != CodeInvalidParams || e.Message != want {
		t.Errorf("bad hashes: %d %q", e.Code, e.Message)
	}
}

// TestCallOverrideErrors: go-ethereum's decoding errors (-32602) and its
// override errors (-32000), the latter before the errors of the transaction
// arguments, as go-ethereum applies the overrides first.
func TestCallOverrideErrors(t *testing.T) {
	f := newFakeBackend(t)
	s := newTestServer(t, f, Config{})
	to := map[string]any{"to": f.c.contract}
	acct := "0x00000000000000000000000000000000000000aa"
	acctHex := common.HexToAddress(acct).Hex()
	for _, tc := range []struct {
		name   string
		params []any
		code   int
		msg    string
	}{
		{"state not an object", []any{to, "latest", "0x12"}, CodeInvalidParams,
			"invalid argument 2: json: cannot unmarshal string into Go value of type override.StateOverride"},
		{"account not an object", []any{to, "latest", map[string]any{acct: 5}}, CodeInvalidParams,
			"invalid argument 2: json: cannot unmarshal number into Go value of type override.OverrideAccount"},
		{"bad address", []any{to, "latest", map[string]any{"0x12": map[string]any{}}}, CodeInvalidParams,
			"invalid argument 2: hex string has length 2, want 40 for common.Address"},
		{"bad balance", []any{to, "latest", map[string]any{acct: map[string]any{"balance": "xyz"}}}, CodeInvalidParams,
			"invalid argument 2: json: cannot unmarshal hex string without 0x prefix into Go struct field OverrideAccount.balance of type *hexutil.Big"},
		{"bad slot", []any{to, "latest", map[string]any{acct: map[string]any{"state": map[string]any{"0x1": "0x2"}}}}, CodeInvalidParams,
			"invalid argument 2: json: cannot unmarshal hex string of odd length into Go struct field OverrideAccount.state of type common.Hash"},
		{"block not an object", []any{to, "latest", nil, "0x12"}, CodeInvalidParams,
			"invalid argument 3: json: cannot unmarshal string into Go value of type override.BlockOverrides"},
		{"bad block number", []any{to, "latest", nil, map[string]any{"number": "abc"}}, CodeInvalidParams,
			"invalid argument 3: json: cannot unmarshal hex string without 0x prefix into Go struct field BlockOverrides.Number of type *hexutil.Big"},
		{"state and stateDiff", []any{to, "latest", map[string]any{acct: map[string]any{"state": map[string]any{}, "stateDiff": map[string]any{}}}}, CodeDefault,
			"account " + acctHex + " has both 'state' and 'stateDiff'"},
		{"move a non-precompile", []any{to, "latest", map[string]any{acct: map[string]any{"movePrecompileToAddress": acct}}}, CodeDefault,
			"account " + acctHex + " is not a precompile"},
		{"move onto an overridden account", []any{to, "latest", map[string]any{
			"0x0000000000000000000000000000000000000001": map[string]any{"movePrecompileToAddress": acct}, acct: map[string]any{}}}, CodeDefault,
			"account " + acctHex + " is already overridden"},
		{"beacon root", []any{to, "latest", nil, map[string]any{"beaconRoot": common.Hash{}}}, CodeDefault,
			`block override "beaconRoot" is not supported for this RPC method`},
		{"withdrawals", []any{to, "latest", map[string]any{}, map[string]any{"withdrawals": []any{}}}, CodeDefault,
			`block override "withdrawals" is not supported for this RPC method`},
		{"override error first", []any{map[string]any{"gasPrice": "0x1", "maxFeePerGas": "0x1"}, "latest",
			map[string]any{acct: map[string]any{"state": map[string]any{}, "stateDiff": map[string]any{}}}}, CodeDefault,
			"account " + acctHex + " has both 'state' and 'stateDiff'"},
		{"unknown block first", []any{map[string]any{"gasPrice": "0x1", "maxFeePerGas": "0x1"}, "0x77", map[string]any{}}, CodeDefault,
			"header not found"},
		{"fee fields without override errors", []any{map[string]any{"gasPrice": "0x1", "maxFeePerGas": "0x1"}, "latest", map[string]any{}}, CodeDefault,
			"both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified"},
	} {
		for _, method := range []string{"eth_call", "eth_estimateGas"} {
			e := callErr(t, s, reqBody(t, 1, method, tc.params...))
			if e.Code != tc.code || e.Message != tc.msg {
				t.Errorf("%s %s: %d %q, want %d %q", method, tc.name, e.Code, e.Message, tc.code, tc.msg)
			}
		}
	}
}

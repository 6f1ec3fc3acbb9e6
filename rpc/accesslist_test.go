package rpc

import (
	"context"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
)

// aclFake adds AccessListCreator to the fake backend.
type aclFake struct {
	*fakeBackend
	mu      sync.Mutex
	msg     *CallMsg
	ref     BlockRef
	acl     types.AccessList
	gasUsed uint64
	vmErr   error
	err     error
}

func (f *aclFake) CreateAccessList(_ context.Context, msg *CallMsg, ref BlockRef) (types.AccessList, uint64, error, error) {
	if _, err := f.resolve(ref); err != nil {
		return nil, 0, nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msg, f.ref = msg, ref
	return f.acl, f.gasUsed, f.vmErr, f.err
}

func newACLFake(t *testing.T) (*aclFake, *Server) {
	f := &aclFake{fakeBackend: newFakeBackend(t), gasUsed: 0x6a2c}
	return f, newTestServer(t, f, Config{})
}

func TestCreateAccessListNotAvailable(t *testing.T) {
	s := newTestServer(t, newFakeBackend(t), Config{})
	e := callErr(t, s, reqBody(t, 1, "eth_createAccessList", map[string]any{}))
	if e.Code != CodeMethodNotFound || e.Message != "the method eth_createAccessList does not exist/is not available" {
		t.Fatalf("got %d %q", e.Code, e.Message)
	}
}

func TestCreateAccessListResult(t *testing.T) {
	f, s := newACLFake(t)
	c := f.c
	slot := common.Hash{0x01}
	f.acl = types.AccessList{{Address: c.contract, StorageKeys: []common.Hash{slot}}, {Address: c.addrs[2], StorageKeys: []common.Hash{}}}
	args := map[string]any{"from": c.addrs[0], "to": c.contract, "input": "0xa9059cbb"}
	got := result(t, s, "eth_createAccessList", args)
	want := fmt.Sprintf(`{"accessList":[{"address":"%s","storageKeys":["%s"]},{"address":"%s","storageKeys":[]}],"gasUsed":"0x6a2c"}`,
		strings.ToLower(c.contract.Hex()), slot.Hex(), strings.ToLower(c.addrs[2].Hex()))
	if string(got) != want {
		t.Fatalf("result\n got %s\nwant %s", got, want)
	}
	// Defaults: latest block, fees filled in as for a transaction to send.
	head := c.blocks[len(c.blocks)-1].Header
	m := f.msg
	wantFeeCap := new(big.Int).Add(f.tip, new(big.Int).Mul(head.BaseFee, big.NewInt(2)))
	wantPrice := new(big.Int).Add(f.tip, head.BaseFee)
	if f.ref.Tag != TagLatest || m.Gas != 50_000_000 || m.Nonce != nil || m.From != c.addrs[0] || *m.To != c.contract ||
		m.GasTipCap.Cmp(f.tip) != 0 || m.GasFeeCap.Cmp(wantFeeCap) != 0 || m.GasPrice.Cmp(wantPrice) != 0 || m.SkipNonceAndFeeChecks ||
		string(m.Data) != "\xa9\x05\x9c\xbb" {
		t.Fatalf("message %+v ref %+v", m, f.ref)
	}

	// A failed execution reports its error; an empty list prints as [].
	f.acl, f.vmErr = nil, vm.ErrExecutionReverted
	got = result(t, s, "eth_createAccessList", args, "pending")
	if string(got) != `{"accessList":[],"error":"execution reverted","gasUsed":"0x6a2c"}` {
		t.Fatalf("failed run: %s", got)
	}
	if f.ref.Tag != TagPending {
		t.Fatalf("ref %+v", f.ref)
	}

	// Explicit fields pass through: legacy price, nonce, gas, access list, data
	// over input (go-ethereum takes input).
	result(t, s, "eth_createAccessList", map[string]any{"from": c.addrs[1], "gasPrice": "0x7", "nonce": "0x9", "gas": "0x10000",
		"data": "0x01", "input": "0x02", "accessList": []any{map[string]any{"address": c.contract, "storageKeys": []string{slot.Hex()}}}},
		map[string]any{"blockHash": c.blocks[1].Hash})
	m = f.msg
	if m.GasPrice.Int64() != 7 || m.GasFeeCap.Int64() != 7 || m.GasTipCap.Int64() != 7 || *m.Nonce != 9 || m.Gas != 0x10000 ||
		string(m.Data) != "\x02" || len(m.AccessList) != 1 || f.ref.Tag != TagHash || f.ref.Hash != c.blocks[1].Hash {
		t.Fatalf("message %+v ref %+v", m, f.ref)
	}
	// Gas above the cap is capped; only the priority fee given: fee cap = tip + 2 * base fee.
	result(t, s, "eth_createAccessList", map[string]any{"gas": "0xffffffffff", "maxPriorityFeePerGas": "0x3"}, "0x1")
	m = f.msg
	b1 := c.blocks[1].Header
	if m.Gas != 50_000_000 || m.GasTipCap.Int64() != 3 || m.GasFeeCap.Cmp(new(big.Int).Add(big.NewInt(3), new(big.Int).Mul(b1.BaseFee, big.NewInt(2)))) != 0 ||
		f.ref.Tag != TagNumber || f.ref.Number != 1 {
		t.Fatalf("message %+v ref %+v", m, f.ref)
	}
}

func TestCreateAccessListApplyError(t *testing.T) {
	f, s := newACLFake(t)
	c := f.c
	al := types.AccessList{{Address: c.contract, StorageKeys: []common.Hash{}}}
	f.err = &ApplyError{Err: core.ErrInsufficientFunds, Nonce: 4, AccessList: al}
	to := c.contract
	e := callErr(t, s, reqBody(t, 1, "eth_createAccessList", map[string]any{"from": c.addrs[1], "to": to, "value": "0x5", "input": "0xabcd"}))
	head := c.blocks[len(c.blocks)-1].Header
	feeCap := new(big.Int).Add(f.tip, new(big.Int).Mul(head.BaseFee, big.NewInt(2)))
	want := types.NewTx(&types.DynamicFeeTx{ChainID: c.cfg.ChainID, Nonce: 4, GasTipCap: f.tip, GasFeeCap: feeCap, Gas: 50_000_000,
		To: &to, Value: big.NewInt(5), Data: []byte{0xab, 0xcd}, AccessList: al}).Hash()
	if e.Code != CodeDefault || e.Message != fmt.Sprintf("failed to apply transaction: %s err: %v", want.Hex(), core.ErrInsufficientFunds) {
		t.Fatalf("got %d %q", e.Code, e.Message)
	}
	// With a legacy price the hash is of a legacy transaction.
	e = callErr(t, s, reqBody(t, 1, "eth_createAccessList", map[string]any{"from": c.addrs[1], "to": to, "gasPrice": "0x9"}))
	want = types.NewTx(&types.LegacyTx{Nonce: 4, GasPrice: big.NewInt(9), Gas: 50_000_000, To: &to, Value: new(big.Int)}).Hash()
	if !strings.HasPrefix(e.Message, "failed to apply transaction: "+want.Hex()+" err: ") {
		t.Fatalf("legacy: %q", e.Message)
	}
	// An authorization list without a recipient crashes go-ethereum's handler.
	e = callErr(t, s, reqBody(t, 1, "eth_createAccessList", map[string]any{"from": c.addrs[1], "authorizationList": []any{}}))
	if e.Code != CodeInternal || e.Message != "method handler crashed" {
		t.Fatalf("set-code creation: %d %q", e.Code, e.Message)
	}
	// Other backend errors pass through.
	f.err = ErrStateUnavailable
	e = callErr(t, s, reqBody(t, 1, "eth_createAccessList", map[string]any{"to": to}))
	if e.Code != CodeDefault || e.Message != ErrStateUnavailable.Error() {
		t.Fatalf("state unavailable: %d %q", e.Code, e.Message)
	}
}

func TestCreateAccessListBadParams(t *testing.T) {
	f, s := newACLFake(t)
	c := f.c
	to := c.contract.Hex()
	cases := []struct {
		params string
		code   int
		msg    string
	}{
		{`[]`, CodeInvalidParams, "missing value for required argument 0"},
		{`["0x1"]`, CodeInvalidParams, "invalid argument 0: json: cannot unmarshal string into Go value of type ethapi.TransactionArgs"},
		{`[[1]]`, CodeInvalidParams, "invalid argument 0: json: cannot unmarshal array into Go value of type ethapi.TransactionArgs"},
		{`[{"to":"0x12"}]`, CodeInvalidParams, "invalid argument 0: hex string has length 2, want 40 for common.Address"},
		{`[{"to":"` + to + `"},"bogus"]`, CodeInvalidParams, "invalid argument 1: hex string without 0x prefix"},
		{`[{"to":"` + to + `"},true]`, CodeInvalidParams, "invalid argument 1: json: cannot unmarshal bool into Go value of type string"},
		{`[{"to":"` + to + `"},"latest",{}]`, CodeInvalidParams, "state overrides not supported"},
		{`[{"to":"` + to + `"},"latest",null,{}]`, CodeInvalidParams, "too many arguments, want at most 3"},
		{`[{"to":"` + to + `"},"0x99"]`, CodeDefault, "header not found"},
		{`[{"gasPrice":"0x1","maxFeePerGas":"0x2"}]`, CodeDefault, "both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified"},
		{`[{"gasPrice":"0x0"}]`, CodeDefault, "gasPrice must be non-zero after london fork"},
		{`[{"maxFeePerGas":"0x0","maxPriorityFeePerGas":"0x0"}]`, CodeDefault, "maxFeePerGas must be non-zero"},
		{`[{"maxFeePerGas":"0x1","maxPriorityFeePerGas":"0x2"}]`, CodeDefault, "maxFeePerGas (0x1) < maxPriorityFeePerGas (0x2)"},
		// Only the fee cap given, below the suggested tip (1 gwei).
		{`[{"maxFeePerGas":"0x1"}]`, CodeDefault, "maxFeePerGas (0x1) < maxPriorityFeePerGas (0x3b9aca00)"},
		{`[{"chainId":"0x1"}]`, CodeDefault, "chainId does not match node's (have=1, want=901)"},
		{`[{"to":"` + to + `","gas":"0x5208","authorizationList":[{"chainId":"0x0","address":"` + to +
			`","nonce":"0x0","yParity":"0x0","r":"0x1","s":"0x1"}]}]`, CodeDefault, "insufficient gas to process all authorizations"},
	}
	for _, tc := range cases {
		body := []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_createAccessList","params":` + tc.params + `}`)
		e := callErr(t, s, body)
		if e.Code != tc.code || e.Message != tc.msg {
			t.Errorf("%s: got %d %q, want %d %q", tc.params, e.Code, e.Message, tc.code, tc.msg)
		}
	}
}

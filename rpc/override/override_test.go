package override

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"
)

// recorder is a State that logs what Apply writes.
type recorder struct{ ops []string }

func (r *recorder) add(format string, args ...any) {
	r.ops = append(r.ops, fmt.Sprintf(format, args...))
}
func (r *recorder) SetNonce(a common.Address, n uint64) { r.add("nonce %x %d", a[19:], n) }
func (r *recorder) SetCode(a common.Address, c []byte)  { r.add("code %x %x", a[19:], c) }
func (r *recorder) SetBalance(a common.Address, b *uint256.Int) {
	r.add("balance %x %s", a[19:], b)
}
func (r *recorder) SetStorage(a common.Address, s map[common.Hash]common.Hash) {
	r.add("storage %x %d", a[19:], len(s))
}
func (r *recorder) SetState(a common.Address, k, v common.Hash) {
	r.add("slot %x %x=%x", a[19:], k[31:], v[31:])
}
func (r *recorder) Finalise() { r.add("finalise") }

func decode(t *testing.T, js string) *StateOverride {
	t.Helper()
	var so *StateOverride
	if err := json.Unmarshal([]byte(js), &so); err != nil {
		t.Fatalf("decode %s: %v", js, err)
	}
	return so
}

func precompiles() vm.PrecompiledContracts {
	return vm.ActivePrecompiledContracts(params.MergedTestChainConfig.Rules(big.NewInt(1), true, 1))
}

func TestApplyOrderAndFields(t *testing.T) {
	so := decode(t, `{
		"0x0000000000000000000000000000000000000002": {"stateDiff": {"0x0000000000000000000000000000000000000000000000000000000000000001": "0x0000000000000000000000000000000000000000000000000000000000000002"}},
		"0x0000000000000000000000000000000000000001": {"nonce": "0x7", "code": "0x6001", "balance": "0x10", "state": {"0x0000000000000000000000000000000000000000000000000000000000000003": "0x0000000000000000000000000000000000000000000000000000000000000004"}}
	}`)
	var r recorder
	if err := so.Apply(&r, precompiles()); err != nil {
		t.Fatal(err)
	}
	// Address order; nonce, code, balance, then storage; one Finalise at the end.
	want := []string{"nonce 01 7", "code 01 6001", "balance 01 16", "storage 01 1", "slot 02 01=02", "finalise"}
	if strings.Join(r.ops, "; ") != strings.Join(want, "; ") {
		t.Fatalf("ops %q, want %q", r.ops, want)
	}
	var nilSO *StateOverride
	if err := nilSO.Apply(&r, nil); err != nil || len(r.ops) != len(want) {
		t.Fatalf("nil override: %v %q", err, r.ops)
	}
}

func TestApplyErrors(t *testing.T) {
	for _, tc := range []struct{ js, err string }{
		{`{"0x00000000000000000000000000000000000000aa": {"state": {}, "stateDiff": {}}}`,
			"account " + common.HexToAddress("0xaa").Hex() + " has both 'state' and 'stateDiff'"},
		{`{"0x00000000000000000000000000000000000000aa": {"movePrecompileToAddress": "0x00000000000000000000000000000000000000bb"}}`,
			"account " + common.HexToAddress("0xaa").Hex() + " is not a precompile"},
		{`{"0x0000000000000000000000000000000000000004": {"movePrecompileToAddress": "0x00000000000000000000000000000000000000bb"},
		   "0x00000000000000000000000000000000000000bb": {"balance": "0x1"}}`,
			"account " + common.HexToAddress("0xbb").Hex() + " is already overridden"},
	} {
		so := decode(t, tc.js)
		pc := precompiles()
		if err := so.Check(pc); err == nil || err.Error() != tc.err {
			t.Errorf("%s: Check %v, want %q", tc.js, err, tc.err)
		}
		if len(pc) != len(precompiles()) {
			t.Errorf("Check changed the precompile set")
		}
		if err := so.Apply(&recorder{}, pc); err == nil || err.Error() != tc.err {
			t.Errorf("%s: Apply %v, want %q", tc.js, err, tc.err)
		}
	}
}

func TestMovePrecompile(t *testing.T) {
	identity, dst := common.BytesToAddress([]byte{4}), common.HexToAddress("0x1234")
	sha := common.BytesToAddress([]byte{2})
	so := decode(t, `{"0x0000000000000000000000000000000000000004": {"movePrecompileToAddress": "0x0000000000000000000000000000000000001234"},
		"0x0000000000000000000000000000000000000002": {"balance": "0x1"}}`)
	pc := precompiles()
	want := pc[identity]
	if err := so.Apply(&recorder{}, pc); err != nil {
		t.Fatal(err)
	}
	if _, ok := pc[identity]; ok {
		t.Error("identity still at its address")
	}
	if pc[dst] != want {
		t.Error("identity not at its new address")
	}
	// Any override of a precompile's address makes it a plain account.
	if _, ok := pc[sha]; ok {
		t.Error("overridden SHA-256 address is still a precompile")
	}
}

func TestBlockOverrides(t *testing.T) {
	var bo *BlockOverrides
	if err := json.Unmarshal([]byte(`{"number":"0x10","time":"0x20","gasLimit":"0x30","feeRecipient":"0x00000000000000000000000000000000000000cc",
		"prevRandao":"0x0000000000000000000000000000000000000000000000000000000000000007","baseFeePerGas":"0x40","blobBaseFee":"0x50","difficulty":"0x60"}`), &bo); err != nil {
		t.Fatal(err)
	}
	random := common.Hash{1}
	ctx := vm.BlockContext{BlockNumber: big.NewInt(1), Time: 2, GasLimit: 3, BaseFee: big.NewInt(4), BlobBaseFee: big.NewInt(5), Difficulty: new(big.Int), Random: &random}
	if err := bo.Apply(&ctx); err != nil {
		t.Fatal(err)
	}
	if ctx.BlockNumber.Uint64() != 0x10 || ctx.Time != 0x20 || ctx.GasLimit != 0x30 || ctx.Coinbase != common.HexToAddress("0xcc") ||
		*ctx.Random != common.BigToHash(big.NewInt(7)) || ctx.BaseFee.Uint64() != 0x40 || ctx.BlobBaseFee.Uint64() != 0x50 || ctx.Difficulty.Uint64() != 0x60 {
		t.Fatalf("context %+v", ctx)
	}
	if n, tm := bo.NumberAndTime(big.NewInt(1), 2); n.Uint64() != 0x10 || tm != 0x20 {
		t.Errorf("NumberAndTime %v %d", n, tm)
	}
	var none *BlockOverrides
	if n, tm := none.NumberAndTime(big.NewInt(1), 2); n.Uint64() != 1 || tm != 2 {
		t.Errorf("nil NumberAndTime %v %d", n, tm)
	}
	if err := none.Apply(&ctx); err != nil {
		t.Fatal(err)
	}
	for js, want := range map[string]string{
		`{"beaconRoot":"0x0000000000000000000000000000000000000000000000000000000000000000"}`: `block override "beaconRoot" is not supported for this RPC method`,
		`{"withdrawals":[]}`: `block override "withdrawals" is not supported for this RPC method`,
	} {
		var bo *BlockOverrides
		if err := json.Unmarshal([]byte(js), &bo); err != nil {
			t.Fatal(err)
		}
		if err := bo.Apply(&ctx); err == nil || err.Error() != want {
			t.Errorf("%s: %v", js, err)
		}
	}
}

// TestDecodingErrorsNameGethTypes: the JSON errors name the types as
// go-ethereum's do (package override).
func TestDecodingErrorsNameGethTypes(t *testing.T) {
	for js, want := range map[string]string{
		`"0x12"`: "json: cannot unmarshal string into Go value of type override.StateOverride",
		`{"0x00000000000000000000000000000000000000aa": "x"}`:                "json: cannot unmarshal string into Go value of type override.OverrideAccount",
		`{"0x00000000000000000000000000000000000000aa": {"balance": "xyz"}}`: "json: cannot unmarshal hex string without 0x prefix into Go struct field OverrideAccount.balance of type *hexutil.Big",
	} {
		var so *StateOverride
		if err := json.Unmarshal([]byte(js), &so); err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", js, err, want)
		}
	}
	var bo *BlockOverrides
	if err := json.Unmarshal([]byte(`[]`), &bo); err == nil || err.Error() != "json: cannot unmarshal array into Go value of type override.BlockOverrides" {
		t.Errorf("block overrides: %v", err)
	}
}

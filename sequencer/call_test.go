package sequencer_test

import (
	"context"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/kestrel-l2/kestrel/sequencer"
)

type obj = map[string]any

// blockInfoCode returns NUMBER, TIMESTAMP, COINBASE, BASEFEE, GASLIMIT and
// PREVRANDAO as six words.
const blockInfoCode = "0x435f52426020524160405248606052456080524460a05260c05ff3"

// slotCode returns the storage slot named by the calldata word.
const slotCode = "0x5f35545f5260205ff3"

// selfBalanceCode returns the contract's balance.
const selfBalanceCode = "0x475f5260205ff3"

func words(t *testing.T, b hexutil.Bytes) []*big.Int {
	t.Helper()
	var out []*big.Int
	for i := 0; i+32 <= len(b); i += 32 {
		out = append(out, new(big.Int).SetBytes(b[i:i+32]))
	}
	return out
}

func callRaw(t *testing.T, rc *gethrpc.Client, params ...any) (hexutil.Bytes, error) {
	t.Helper()
	var out hexutil.Bytes
	err := rc.CallContext(context.Background(), &out, "eth_call", params...)
	return out, err
}

// TestCallStateAndBlockOverrides: eth_call's third and fourth parameters as
// go-ethereum applies them.
func TestCallStateAndBlockOverrides(t *testing.T) {
	_, ec, rc := startSequencer(t, t.TempDir(), func(c *sequencer.Config) { c.BlockInterval = 100 * time.Millisecond })
	ctx := context.Background()
	// Wait for a few sealed blocks, so that the history contract has slots.
	for {
		n, err := ec.BlockNumber(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n >= 3 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	head, err := ec.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	latest := hexutil.EncodeBig(head.Number)
	addr := common.HexToAddress("0x00000000000000000000000000000000c0de0001")

	// Code override, no block override: the block's own fields.
	out, err := callRaw(t, rc, obj{"to": addr}, latest, obj{addr.Hex(): obj{"code": blockInfoCode}})
	if err != nil {
		t.Fatal(err)
	}
	w := words(t, out)
	if len(w) != 6 || w[0].Cmp(head.Number) != 0 || w[1].Uint64() != head.Time || w[3].Sign() != 0 || w[4].Uint64() != head.GasLimit {
		t.Fatalf("block fields %v (head %d time %d)", w, head.Number, head.Time)
	}
	// Block override: NUMBER, TIMESTAMP, COINBASE, BASEFEE (fees given), GASLIMIT, PREVRANDAO.
	coinbase := common.HexToAddress("0xcc")
	random := common.Hash{7}
	out, err = callRaw(t, rc, obj{"from": devWallet(0).addr, "to": addr, "gasPrice": "0x100"}, latest, obj{addr.Hex(): obj{"code": blockInfoCode}},
		obj{"number": "0x1000", "time": "0x70000000", "feeRecipient": coinbase, "baseFeePerGas": "0x99", "gasLimit": "0x1234567", "prevRandao": random})
	if err != nil {
		t.Fatal(err)
	}
	w = words(t, out)
	if w[0].Uint64() != 0x1000 || w[1].Uint64() != 0x70000000 || common.BigToAddress(w[2]) != coinbase || w[3].Uint64() != 0x99 ||
		w[4].Uint64() != 0x1234567 || common.BigToHash(w[5]) != random {
		t.Fatalf("overridden block fields %v", w)
	}

	// Balance override on a fresh account.
	out, err = callRaw(t, rc, obj{"to": addr}, latest, obj{addr.Hex(): obj{"code": selfBalanceCode, "balance": "0x1234"}})
	if err != nil || new(big.Int).SetBytes(out).Uint64() != 0x1234 {
		t.Fatalf("balance override: %x %v", out, err)
	}

	// Storage: the EIP-2935 history contract keeps the parent hashes; read its
	// slots with overridden code. stateDiff changes one slot, state replaces
	// all of them.
	hist := params.HistoryStorageAddress
	n1, n2 := head.Number.Uint64()-1, head.Number.Uint64()-2
	slot := func(n uint64) common.Hash {
		return common.BigToHash(new(big.Int).SetUint64(n % params.HistoryServeWindow))
	}
	h2, err := ec.HeaderByNumber(ctx, new(big.Int).SetUint64(n2))
	if err != nil {
		t.Fatal(err)
	}
	x := common.Hash{0xab}
	read := func(n uint64, acct obj) common.Hash {
		t.Helper()
		acct["code"] = slotCode
		out, err := callRaw(t, rc, obj{"to": hist, "data": slot(n)}, latest, obj{hist.Hex(): acct})
		if err != nil {
			t.Fatalf("read slot of %d: %v", n, err)
		}
		return common.BytesToHash(out)
	}
	if got := read(n2, obj{}); got != h2.Hash() {
		t.Fatalf("history slot of %d is %s, want %s", n2, got, h2.Hash())
	}
	if got := read(n1, obj{"stateDiff": obj{slot(n1).Hex(): x}}); got != x {
		t.Errorf("stateDiff slot %s", got)
	}
	if got := read(n2, obj{"stateDiff": obj{slot(n1).Hex(): x}}); got != h2.Hash() {
		t.Errorf("stateDiff cleared another slot: %s", got)
	}
	if got := read(n1, obj{"state": obj{slot(n1).Hex(): x}}); got != x {
		t.Errorf("state slot %s", got)
	}
	if got := read(n2, obj{"state": obj{slot(n1).Hex(): x}}); got != (common.Hash{}) {
		t.Errorf("state kept another slot: %s", got)
	}

	// Errors, as go-ethereum's.
	_, err = callRaw(t, rc, obj{"to": addr}, latest, obj{addr.Hex(): obj{"state": obj{}, "stateDiff": obj{}}})
	if err == nil || err.Error() != "account "+addr.Hex()+" has both 'state' and 'stateDiff'" {
		t.Errorf("state and stateDiff: %v", err)
	}
	_, err = callRaw(t, rc, obj{"to": addr}, latest, obj{}, obj{"beaconRoot": common.Hash{}})
	if err == nil || err.Error() != `block override "beaconRoot" is not supported for this RPC method` {
		t.Errorf("beaconRoot: %v", err)
	}

	// A precompile moved elsewhere runs there; its own address is plain.
	identity, moved := common.BytesToAddress([]byte{4}), common.HexToAddress("0x1234")
	move := obj{identity.Hex(): obj{"movePrecompileToAddress": moved}}
	if out, err := callRaw(t, rc, obj{"to": moved, "data": "0xabcdef"}, latest, move); err != nil || hexutil.Encode(out) != "0xabcdef" {
		t.Errorf("moved identity: %x %v", out, err)
	}
	if out, err := callRaw(t, rc, obj{"to": identity, "data": "0xabcdef"}, latest, move); err != nil || len(out) != 0 {
		t.Errorf("identity's old address: %x %v", out, err)
	}
}

// TestCallFeeAndBlobChecks: eth_call makes go-ethereum's fee and blob checks.
func TestCallFeeAndBlobChecks(t *testing.T) {
	_, _, rc := startSequencer(t, t.TempDir(), nil)
	alice, bob := devWallet(0), devWallet(1)
	_, err := callRaw(t, rc, obj{"from": alice.addr, "to": bob.addr, "maxFeePerGas": "0x3b9aca00", "maxPriorityFeePerGas": "0x77359400"}, "latest")
	want := "err: max priority fee per gas higher than max fee per gas: address " + alice.addr.Hex() +
		", maxPriorityFeePerGas: 2000000000, maxFeePerGas: 1000000000 (supplied gas 50000000)"
	if err == nil || err.Error() != want {
		t.Errorf("tip above fee cap: %v", err)
	}
	_, err = callRaw(t, rc, obj{"to": bob.addr, "blobVersionedHashes": []string{}}, "latest")
	if err == nil || err.Error() != "err: blob transaction missing blob hashes (supplied gas 50000000)" {
		t.Errorf("empty blob hashes: %v", err)
	}
	_, err = callRaw(t, rc, obj{"to": bob.addr, "blobVersionedHashes": []common.Hash{{2}}}, "latest")
	if err == nil || err.Error() != "err: blob 0 has invalid hash version (supplied gas 50000000)" {
		t.Errorf("bad blob hash: %v", err)
	}
}

// TestEstimateGasAsGoEthereum: 21000 for a plain transfer, the estimator's
// error messages, state and block overrides.
func TestEstimateGasAsGoEthereum(t *testing.T) {
	_, _, rc := startSequencer(t, t.TempDir(), nil)
	ctx := context.Background()
	alice := devWallet(0)
	fresh := common.HexToAddress("0x000000000000000000000000000000000000dEaD")
	estimate := func(params ...any) (uint64, error) {
		var gas hexutil.Uint64
		err := rc.CallContext(ctx, &gas, "eth_estimateGas", params...)
		return uint64(gas), err
	}
	if gas, err := estimate(obj{"from": alice.addr, "to": fresh, "value": "0x1"}, "latest"); err != nil || gas != params.TxGas {
		t.Errorf("plain transfer: %d %v", gas, err)
	}
	_, err := estimate(obj{"from": fresh, "to": alice.addr, "value": "0x1"}, "latest")
	want := "failed with 50000000 gas: insufficient funds for gas * price + value: address " + fresh.Hex() + " have 0 want 1"
	if err == nil || err.Error() != want {
		t.Errorf("no funds: %v", err)
	}
	if gas, err := estimate(obj{"from": fresh, "to": alice.addr, "value": "0x1"}, "latest", obj{fresh.Hex(): obj{"balance": "0xde0b6b3a7640000"}}); err != nil || gas != params.TxGas {
		t.Errorf("funds by override: %d %v", gas, err)
	}
	// With a fee, a zero value needs funds too.
	if _, err := estimate(obj{"from": fresh, "to": alice.addr, "gasPrice": "0x1"}, "latest"); err == nil || err.Error() != "insufficient funds for transfer" {
		t.Errorf("fee without funds: %v", err)
	}
	// A failure that is not out of gas is reported as it is.
	addr := common.HexToAddress("0xc0de")
	if _, err := estimate(obj{"to": addr}, "latest", obj{addr.Hex(): obj{"code": "0xfe"}}); err == nil || err.Error() != "invalid opcode: INVALID" {
		t.Errorf("invalid opcode: %v", err)
	}
	if _, err := estimate(obj{"to": addr}, "latest", obj{addr.Hex(): obj{"code": "0x5b5f56"}}); err == nil || err.Error() != "gas required exceeds allowance (50000000)" {
		t.Errorf("endless loop: %v", err)
	}
	// NUMBER PUSH2 0x1000 EQ PUSH1 9 JUMPI INVALID JUMPDEST STOP: runs only
	// at block 0x1000.
	onlyAt := "0x4361100014600957fe5b00"
	if _, err := estimate(obj{"to": addr}, "latest", obj{addr.Hex(): obj{"code": onlyAt}}); err == nil || err.Error() != "invalid opcode: INVALID" {
		t.Errorf("code for block 0x1000 at the head: %v", err)
	}
	if _, err := estimate(obj{"to": addr}, "latest", obj{addr.Hex(): obj{"code": onlyAt}}, obj{"number": "0x1000"}); err != nil {
		t.Errorf("with the block number overridden: %v", err)
	}
}

// TestProofOfMissingAccount: go-ethereum's zero code hash and storage root for
// an account that does not exist.
func TestProofOfMissingAccount(t *testing.T) {
	_, _, rc := startSequencer(t, t.TempDir(), nil)
	var res struct {
		CodeHash    common.Hash `json:"codeHash"`
		StorageHash common.Hash `json:"storageHash"`
	}
	if err := rc.CallContext(context.Background(), &res, "eth_getProof", common.HexToAddress("0xdead"), []string{}, "latest"); err != nil {
		t.Fatal(err)
	}
	if res.CodeHash != (common.Hash{}) || res.StorageHash != (common.Hash{}) {
		t.Errorf("missing account: %+v", res)
	}
	if err := rc.CallContext(context.Background(), &res, "eth_getProof", devWallet(0).addr, []string{}, "latest"); err != nil {
		t.Fatal(err)
	}
	if res.CodeHash != types.EmptyCodeHash || res.StorageHash != types.EmptyRootHash {
		t.Errorf("existing account: %+v", res)
	}
}

// TestPendingBlockHeader: the pending block names its sealed parent and has
// the header fields of sealed blocks (but the parent beacon root, as
// go-ethereum's pending block); its blob base fee is the minimum.
func TestPendingBlockHeader(t *testing.T) {
	_, ec, rc := startSequencer(t, t.TempDir(), func(c *sequencer.Config) { c.BlockInterval = time.Hour })
	ctx := context.Background()
	head, err := ec.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var pending map[string]json.RawMessage
	if err := rc.CallContext(ctx, &pending, "eth_getBlockByNumber", "pending", false); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"parentHash":      `"` + head.Hash().Hex() + `"`,
		"blobGasUsed":     `"0x0"`,
		"excessBlobGas":   `"0x0"`,
		"withdrawals":     `[]`,
		"withdrawalsRoot": `"` + types.EmptyWithdrawalsHash.Hex() + `"`,
		"requestsHash":    `"` + types.EmptyRequestsHash.Hex() + `"`,
	}
	for k, v := range want {
		if got := string(pending[k]); !strings.EqualFold(got, v) {
			t.Errorf("pending %s = %s, want %s", k, got, v)
		}
	}
	if _, ok := pending["parentBeaconBlockRoot"]; ok {
		t.Error("pending block has a parent beacon root")
	}
	var fh struct {
		BaseFeePerBlobGas []string `json:"baseFeePerBlobGas"`
	}
	if err := rc.CallContext(ctx, &fh, "eth_feeHistory", "0x1", "pending", []int{50}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(fh.BaseFeePerBlobGas, ",") != "0x1,0x1" {
		t.Errorf("pending blob base fees %v", fh.BaseFeePerBlobGas)
	}
}

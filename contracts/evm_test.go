package contracts

import (
	"bytes"
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/core/vm/runtime"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/triedb"
)

type testEVM struct {
	t   *testing.T
	cfg *runtime.Config
	tx  int
}

func newTestEVM(t *testing.T) *testEVM {
	t.Helper()
	db := state.NewDatabase(triedb.NewDatabase(rawdb.NewMemoryDatabase(), nil), nil)
	sdb, err := state.New(types.EmptyRootHash, db)
	if err != nil {
		t.Fatal(err)
	}
	return &testEVM{t: t, cfg: &runtime.Config{
		ChainConfig: params.MergedTestChainConfig, // all forks incl. Prague active
		GasLimit:    30_000_000,
		State:       sdb,
	}}
}

// begin starts a new pseudo-transaction from sender so logs can be
// attributed; it returns the tx hash to fetch the logs with.
func (e *testEVM) begin(from common.Address) common.Hash {
	e.tx++
	h := common.BigToHash(big.NewInt(int64(e.tx)))
	e.cfg.Origin = from
	e.cfg.State.SetTxContext(h, e.tx)
	return h
}

func (e *testEVM) deploy(from common.Address, code []byte) common.Address {
	e.t.Helper()
	e.begin(from)
	_, addr, _, err := runtime.Create(code, e.cfg)
	if err != nil {
		e.t.Fatalf("deploy: %v", err)
	}
	return addr
}

func (e *testEVM) call(from, to common.Address, input []byte) ([]byte, []*types.Log, error) {
	h := e.begin(from)
	ret, _, err := runtime.Call(to, input, e.cfg)
	return ret, e.cfg.State.GetLogs(h, 0, common.Hash{}, 0), err
}

func (e *testEVM) mustCall(from, to common.Address, input []byte) ([]byte, []*types.Log) {
	e.t.Helper()
	ret, logs, err := e.call(from, to, input)
	if err != nil {
		e.t.Fatalf("call %x: %v (revert: %q)", input[:4], err, revertReason(ret))
	}
	return ret, logs
}

func revertReason(ret []byte) string {
	s, err := abi.UnpackRevert(ret)
	if err != nil {
		return ""
	}
	return s
}

func (e *testEVM) balance(token, who common.Address) *big.Int {
	e.t.Helper()
	ret, _ := e.mustCall(who, token, ERC20BalanceOfData(who))
	v, err := ERC20UnpackUint256(ret)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

func TestERC20InEVM(t *testing.T) {
	var (
		e       = newTestEVM(t)
		alice   = common.HexToAddress("0xa11ce00000000000000000000000000000000001")
		bob     = common.HexToAddress("0xb0b0000000000000000000000000000000000002")
		carol   = common.HexToAddress("0xca201000000000000000000000000000000000003")
		supply  = new(big.Int).Mul(big.NewInt(1_000_000), big.NewInt(1e18))
		amount  = big.NewInt(12345)
		erc20   = ERC20()
		code, _ = ERC20DeployData("Kestrel Test", "KTT", supply)
	)
	token := e.deploy(alice, code)
	if got := e.cfg.State.GetCode(token); !bytes.Equal(got, erc20.DeployedBytecode) {
		t.Fatalf("deployed code differs from artifact deployedBytecode (%d vs %d bytes)", len(got), len(erc20.DeployedBytecode))
	}

	// Metadata getters.
	ret, _ := e.mustCall(alice, token, mustPack(erc20, "name"))
	if out, err := erc20.ABI.Unpack("name", ret); err != nil || out[0] != "Kestrel Test" {
		t.Fatalf("name() = %v, %v", out, err)
	}
	ret, _ = e.mustCall(alice, token, mustPack(erc20, "symbol"))
	if out, err := erc20.ABI.Unpack("symbol", ret); err != nil || out[0] != "KTT" {
		t.Fatalf("symbol() = %v, %v", out, err)
	}
	ret, _ = e.mustCall(alice, token, mustPack(erc20, "decimals"))
	if out, err := erc20.ABI.Unpack("decimals", ret); err != nil || out[0] != uint8(18) {
		t.Fatalf("decimals() = %v, %v", out, err)
	}
	ret, _ = e.mustCall(alice, token, ERC20TotalSupplyData())
	if v, err := ERC20UnpackUint256(ret); err != nil || v.Cmp(supply) != 0 {
		t.Fatalf("totalSupply() = %v, %v", v, err)
	}
	if b := e.balance(token, alice); b.Cmp(supply) != 0 {
		t.Fatalf("deployer balance %v, want %v", b, supply)
	}

	// transfer
	ret, logs := e.mustCall(alice, token, ERC20TransferData(bob, amount))
	if out, err := erc20.ABI.Unpack("transfer", ret); err != nil || out[0] != true {
		t.Fatalf("transfer returned %v, %v", out, err)
	}
	if len(logs) != 1 {
		t.Fatalf("transfer emitted %d logs, want 1", len(logs))
	}
	if logs[0].Address != token || logs[0].Topics[0] != ERC20TransferTopic {
		t.Fatalf("unexpected log %+v", logs[0])
	}
	ev, err := ParseERC20Transfer(logs[0])
	if err != nil {
		t.Fatal(err)
	}
	if ev.From != alice || ev.To != bob || ev.Value.Cmp(amount) != 0 {
		t.Fatalf("Transfer event = %+v", ev)
	}
	if b := e.balance(token, bob); b.Cmp(amount) != 0 {
		t.Fatalf("bob balance %v, want %v", b, amount)
	}
	if b := e.balance(token, alice); b.Cmp(new(big.Int).Sub(supply, amount)) != 0 {
		t.Fatalf("alice balance %v", b)
	}

	// Overdraft reverts with an Error(string) reason.
	ret, logs, err = e.call(bob, token, ERC20TransferData(carol, big.NewInt(12346)))
	if !errors.Is(err, vm.ErrExecutionReverted) {
		t.Fatalf("overdraft: err = %v, want revert", err)
	}
	if r := revertReason(ret); r != ERC20ErrInsufficientBalance {
		t.Fatalf("overdraft reason %q", r)
	}
	if len(logs) != 0 {
		t.Fatalf("reverted call left %d logs", len(logs))
	}

	// approve + transferFrom + allowance
	_, logs = e.mustCall(bob, token, ERC20ApproveData(carol, big.NewInt(100)))
	ap, err := ParseERC20Approval(logs[0])
	if err != nil || ap.Owner != bob || ap.Spender != carol || ap.Value.Int64() != 100 {
		t.Fatalf("Approval event = %+v, %v", ap, err)
	}
	if _, err := ParseERC20Transfer(logs[0]); err == nil {
		t.Fatal("ParseERC20Transfer accepted an Approval log")
	}
	_, _, err = e.call(carol, token, ERC20TransferFromData(bob, carol, big.NewInt(101)))
	if !errors.Is(err, vm.ErrExecutionReverted) {
		t.Fatalf("transferFrom over allowance: err = %v", err)
	}
	_, logs = e.mustCall(carol, token, ERC20TransferFromData(bob, carol, big.NewInt(60)))
	if len(logs) != 2 { // Approval (allowance update) + Transfer
		t.Fatalf("transferFrom emitted %d logs", len(logs))
	}
	ret, _ = e.mustCall(carol, token, ERC20AllowanceData(bob, carol))
	if v, _ := ERC20UnpackUint256(ret); v.Int64() != 40 {
		t.Fatalf("allowance after transferFrom = %v", v)
	}
	if b := e.balance(token, carol); b.Int64() != 60 {
		t.Fatalf("carol balance %v", b)
	}
	ret, _, _ = e.call(bob, token, ERC20TransferData(common.Address{}, big.NewInt(1)))
	if r := revertReason(ret); r != ERC20ErrTransferToZero {
		t.Fatalf("transfer to zero reason %q", r)
	}
}

func TestReverterInEVM(t *testing.T) {
	var (
		e    = newTestEVM(t)
		from = common.HexToAddress("0x1000000000000000000000000000000000000001")
		rev  = Reverter()
	)
	addr := e.deploy(from, ReverterDeployData())

	ret, _, err := e.call(from, addr, ReverterRevertWithReasonData())
	if !errors.Is(err, vm.ErrExecutionReverted) || revertReason(ret) != ReverterReason {
		t.Fatalf("revertWithReason: err=%v reason=%q", err, revertReason(ret))
	}
	ret, _, err = e.call(from, addr, ReverterRequireTrueData(false))
	if !errors.Is(err, vm.ErrExecutionReverted) || revertReason(ret) != ReverterRequireReason {
		t.Fatalf("requireTrue(false): err=%v reason=%q", err, revertReason(ret))
	}
	e.mustCall(from, addr, ReverterRequireTrueData(true))

	ret, _, err = e.call(from, addr, ReverterRevertWithCustomErrorData())
	if !errors.Is(err, vm.ErrExecutionReverted) || !bytes.Equal(ret[:4], ReverterCustomErrorSelector) {
		t.Fatalf("revertWithCustomError: err=%v ret=%x", err, ret)
	}
	ce := rev.ABI.Errors["CustomError"]
	out, err := ce.Unpack(ret)
	if err != nil {
		t.Fatal(err)
	}
	args := out.([]interface{})
	if args[0].(*big.Int).Int64() != ReverterCustomErrorCode || args[1] != ReverterCustomErrorMessage {
		t.Fatalf("CustomError args %v", args)
	}

	payload := []byte("hello kestrel")
	_, logs := e.mustCall(from, addr, ReverterStoreData(big.NewInt(7), payload))
	if len(logs) != 1 {
		t.Fatalf("store emitted %d logs", len(logs))
	}
	ev, err := ParseReverterValueStored(logs[0])
	if err != nil {
		t.Fatal(err)
	}
	if ev.Sender != from || ev.Value.Int64() != 7 || !bytes.Equal(ev.Data, payload) {
		t.Fatalf("ValueStored = %+v", ev)
	}
	ret, _ = e.mustCall(from, addr, ReverterValueData())
	if v, err := ReverterUnpackValue(ret); err != nil || v.Int64() != 7 {
		t.Fatalf("value() = %v, %v", v, err)
	}
	e.mustCall(from, addr, ReverterStoreData(big.NewInt(8), nil))
}

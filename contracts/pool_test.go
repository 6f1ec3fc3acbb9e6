package contracts

import (
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/vm"
)

// TestPoolInEVM deploys two tokens and a pool, adds liquidity with sync, and
// swaps both ways: outputs follow the constant-product formula with the 0.3%
// fee, reserves and balances move accordingly, and minOut is enforced.
func TestPoolInEVM(t *testing.T) {
	var (
		e      = newTestEVM(t)
		alice  = common.HexToAddress("0xa11ce00000000000000000000000000000000001")
		bob    = common.HexToAddress("0xb0b0000000000000000000000000000000000002")
		ether  = big.NewInt(1e18)
		supply = new(big.Int).Mul(big.NewInt(1_000_000), ether)
		liq0   = new(big.Int).Mul(big.NewInt(100_000), ether)
		liq1   = new(big.Int).Mul(big.NewInt(200_000), ether)
		bobs   = new(big.Int).Mul(big.NewInt(1_000), ether)
		max    = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	)
	code0, _ := ERC20DeployData("Token Zero", "TK0", supply)
	code1, _ := ERC20DeployData("Token One", "TK1", supply)
	tok0, tok1 := e.deploy(alice, code0), e.deploy(alice, code1)
	poolCode, err := PoolDeployData(tok0, tok1)
	if err != nil {
		t.Fatal(err)
	}
	pool := e.deploy(alice, poolCode)

	// Liquidity: alice sends both tokens to the pool, then sync.
	e.mustCall(alice, tok0, ERC20TransferData(pool, liq0))
	e.mustCall(alice, tok1, ERC20TransferData(pool, liq1))
	_, logs := e.mustCall(alice, pool, PoolSyncData())
	if len(logs) != 1 || logs[0].Topics[0] != PoolSyncTopic {
		t.Fatalf("sync logs %+v", logs)
	}
	reserves := func() (*big.Int, *big.Int) {
		t.Helper()
		ret, _ := e.mustCall(alice, pool, PoolGetReservesData())
		r0, r1, err := PoolUnpackReserves(ret)
		if err != nil {
			t.Fatal(err)
		}
		return r0, r1
	}
	if r0, r1 := reserves(); r0.Cmp(liq0) != 0 || r1.Cmp(liq1) != 0 {
		t.Fatalf("reserves after sync %v, %v", r0, r1)
	}

	// Bob holds both tokens and approved the pool for the maximum.
	e.mustCall(alice, tok0, ERC20TransferData(bob, bobs))
	e.mustCall(alice, tok1, ERC20TransferData(bob, bobs))
	e.mustCall(bob, tok0, ERC20ApproveData(pool, max))
	e.mustCall(bob, tok1, ERC20ApproveData(pool, max))

	// token0 -> token1.
	in := new(big.Int).Mul(big.NewInt(10), ether)
	want := PoolAmountOut(in, liq0, liq1)
	ret, logs := e.mustCall(bob, pool, PoolSwapData(true, in, want))
	out, err := Pool().ABI.Unpack("swap", ret)
	if err != nil || out[0].(*big.Int).Cmp(want) != 0 {
		t.Fatalf("swap returned %v (%v), want %v", out, err, want)
	}
	// A max allowance is not decreased, so no Approval: Transfer in, Transfer out, Swap.
	if len(logs) != 3 || logs[0].Address != tok0 || logs[1].Address != tok1 || logs[2].Address != pool {
		t.Fatalf("swap logs %+v", logs)
	}
	tin, err := ParseERC20Transfer(logs[0])
	if err != nil || tin.From != bob || tin.To != pool || tin.Value.Cmp(in) != 0 {
		t.Fatalf("input transfer %+v, %v", tin, err)
	}
	tout, err := ParseERC20Transfer(logs[1])
	if err != nil || tout.From != pool || tout.To != bob || tout.Value.Cmp(want) != 0 {
		t.Fatalf("output transfer %+v, %v", tout, err)
	}
	ev, err := ParsePoolSwap(logs[2])
	if err != nil || ev.Sender != bob || !ev.ZeroForOne || ev.AmountIn.Cmp(in) != 0 || ev.AmountOut.Cmp(want) != 0 {
		t.Fatalf("Swap event %+v, %v", ev, err)
	}
	r0, r1 := reserves()
	if r0.Cmp(new(big.Int).Add(liq0, in)) != 0 || r1.Cmp(new(big.Int).Sub(liq1, want)) != 0 {
		t.Fatalf("reserves after swap %v, %v", r0, r1)
	}
	if b := e.balance(tok1, bob); b.Cmp(new(big.Int).Add(bobs, want)) != 0 {
		t.Fatalf("bob token1 balance %v", b)
	}
	// The constant product never decreases (the fee stays in the pool).
	if new(big.Int).Mul(r0, r1).Cmp(new(big.Int).Mul(liq0, liq1)) < 0 {
		t.Fatal("k decreased")
	}

	// token1 -> token0, with a minOut one above what it yields: reverts.
	want0 := PoolAmountOut(in, r1, r0)
	ret, logs, err = e.call(bob, pool, PoolSwapData(false, in, new(big.Int).Add(want0, big.NewInt(1))))
	if !errors.Is(err, vm.ErrExecutionReverted) || revertReason(ret) != PoolErrOutputBelowMinimum || len(logs) != 0 {
		t.Fatalf("swap below minimum: err %v reason %q logs %d", err, revertReason(ret), len(logs))
	}
	_, logs = e.mustCall(bob, pool, PoolSwapData(false, in, want0))
	if ev, err := ParsePoolSwap(logs[2]); err != nil || ev.ZeroForOne || ev.AmountOut.Cmp(want0) != 0 {
		t.Fatalf("Swap event %+v, %v", ev, err)
	}
	if b := e.balance(tok0, pool); b.Cmp(new(big.Int).Sub(new(big.Int).Add(liq0, in), want0)) != 0 {
		t.Fatalf("pool token0 balance %v", b)
	}
	ret, _, err = e.call(bob, pool, PoolSwapData(true, new(big.Int), new(big.Int)))
	if !errors.Is(err, vm.ErrExecutionReverted) || revertReason(ret) != PoolErrZeroInput {
		t.Fatalf("zero swap: err %v reason %q", err, revertReason(ret))
	}
}

package contracts

import (
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// Storage slots of src/Pool.sol, for writing a pool into a genesis allocation.
const (
	PoolSlotToken0   = 0
	PoolSlotToken1   = 1
	PoolSlotReserve0 = 2
	PoolSlotReserve1 = 3
)

// Pool revert reasons, as returned in Error(string) revert data.
const (
	PoolErrOutputBelowMinimum = "Pool: output below minimum"
	PoolErrZeroInput          = "Pool: zero input"
)

var (
	// PoolSwapTopic is topic0 of Swap(address,bool,uint256,uint256).
	PoolSwapTopic = crypto.Keccak256Hash([]byte("Swap(address,bool,uint256,uint256)"))
	// PoolSyncTopic is topic0 of Sync(uint256,uint256).
	PoolSyncTopic = crypto.Keccak256Hash([]byte("Sync(uint256,uint256)"))
)

// Pool returns the embedded artifact of src/Pool.sol.
func Pool() *Artifact { return MustLoad("Pool") }

// PoolDeployData returns creation code plus the packed constructor arguments.
func PoolDeployData(token0, token1 common.Address) ([]byte, error) {
	return Pool().DeployData(token0, token1)
}

// PoolSwapData returns calldata for swap(zeroForOne, amountIn, minOut).
func PoolSwapData(zeroForOne bool, amountIn, minOut *big.Int) []byte {
	return mustPack(Pool(), "swap", zeroForOne, amountIn, minOut)
}

// PoolSyncData returns calldata for sync().
func PoolSyncData() []byte { return mustPack(Pool(), "sync") }

// PoolGetReservesData returns calldata for getReserves().
func PoolGetReservesData() []byte { return mustPack(Pool(), "getReserves") }

// PoolUnpackReserves decodes the return data of getReserves().
func PoolUnpackReserves(ret []byte) (reserve0, reserve1 *big.Int, err error) {
	out, err := Pool().ABI.Unpack("getReserves", ret)
	if err != nil {
		return nil, nil, fmt.Errorf("contracts: unpack Pool.getReserves: %w", err)
	}
	r0, ok0 := out[0].(*big.Int)
	r1, ok1 := out[1].(*big.Int)
	if !ok0 || !ok1 {
		return nil, nil, fmt.Errorf("contracts: unpack Pool.getReserves: unexpected types %T, %T", out[0], out[1])
	}
	return r0, r1, nil
}

// PoolAmountOut is the pool's output for amountIn at the given reserves, with
// the contract's integer arithmetic (the 0.3% fee of Uniswap v2's
// getAmountOut): amountIn*997*reserveOut / (reserveIn*1000 + amountIn*997).
func PoolAmountOut(amountIn, reserveIn, reserveOut *big.Int) *big.Int {
	in := new(big.Int).Mul(amountIn, big.NewInt(997))
	num := new(big.Int).Mul(in, reserveOut)
	den := new(big.Int).Mul(reserveIn, big.NewInt(1000))
	den.Add(den, in)
	if den.Sign() == 0 {
		return new(big.Int)
	}
	return num.Quo(num, den)
}

// PoolSwap is a decoded Swap event.
type PoolSwap struct {
	Sender     common.Address
	ZeroForOne bool
	AmountIn   *big.Int
	AmountOut  *big.Int
}

// ParsePoolSwap decodes a Swap log. It does not check log.Address.
func ParsePoolSwap(log *types.Log) (*PoolSwap, error) {
	ev := new(PoolSwap)
	if err := unpackLog(Pool(), "Swap", ev, log); err != nil {
		return nil, err
	}
	return ev, nil
}

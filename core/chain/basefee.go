package chain

import "math/big"

// NextBaseFee is the EIP-1559 base fee of the block after a parent with the given
// gas used, gas limit and base fee, under the genesis parameters.
func (g *Genesis) NextBaseFee(parentGasUsed, parentGasLimit uint64, parentBaseFee *big.Int) *big.Int {
	target := parentGasLimit / g.ElasticityMultiplier
	next := new(big.Int).Set(parentBaseFee)
	switch {
	case parentGasUsed == target || target == 0:
	case parentGasUsed > target:
		delta := new(big.Int).SetUint64(parentGasUsed - target)
		delta.Mul(delta, parentBaseFee)
		delta.Div(delta, new(big.Int).SetUint64(target))
		delta.Div(delta, new(big.Int).SetUint64(g.BaseFeeChangeDenominator))
		if delta.Sign() == 0 {
			delta.SetUint64(1)
		}
		next.Add(next, delta)
	default:
		delta := new(big.Int).SetUint64(target - parentGasUsed)
		delta.Mul(delta, parentBaseFee)
		delta.Div(delta, new(big.Int).SetUint64(target))
		delta.Div(delta, new(big.Int).SetUint64(g.BaseFeeChangeDenominator))
		next.Sub(next, delta)
		if next.Sign() < 0 {
			next.SetUint64(0)
		}
	}
	if g.MinBaseFee != nil && next.Cmp(g.MinBaseFee) < 0 {
		next.Set(g.MinBaseFee)
	}
	return next
}

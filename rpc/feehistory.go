package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"

	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/consensus/misc/eip1559"
	"github.com/ethereum/go-ethereum/consensus/misc/eip4844"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
)

const (
	maxFeeHistory        = 1024 // most blocks one eth_feeHistory answers for
	maxRewardPercentiles = 100
)

type blockFees struct {
	reward           []*big.Int
	baseFee, nextFee *big.Int
	gasUsedRatio     float64
	blobFee, nextBlb *big.Int
	blobGasUsedRatio float64
}

// ethFeeHistory: eth_feeHistory(blockCount, newestBlock, rewardPercentiles),
// computed like go-ethereum's gas price oracle.
func (s *Server) ethFeeHistory(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	// All three parameters are required (none is a pointer in go-ethereum);
	// null percentiles are none.
	rawCount, err := a.arg(0)
	if err != nil {
		return dst, err
	}
	var count math.HexOrDecimal64
	if err := count.UnmarshalJSON(rawCount); err != nil {
		return dst, argError(0, err)
	}
	rawNewest, err := a.arg(1)
	if err != nil {
		return dst, err
	}
	newest, err := parseBlockNumber(1, rawNewest)
	if err != nil {
		return dst, err
	}
	rawPercentiles, err := a.arg(2)
	if err != nil {
		return dst, err
	}
	var percentiles []float64
	if err := json.Unmarshal(rawPercentiles, &percentiles); err != nil {
		return dst, argError(2, err)
	}
	// As go-ethereum's oracle: no blocks is an empty answer before the
	// percentiles are checked, and invalid percentiles are plain errors (-32000).
	if count == 0 {
		return append(dst, `{"oldestBlock":"0x0","gasUsedRatio":null}`...), nil
	}
	if len(percentiles) > maxRewardPercentiles {
		return dst, fmt.Errorf("invalid reward percentile: over the query limit %d", maxRewardPercentiles)
	}
	for i, p := range percentiles {
		if p < 0 || p > 100 {
			return dst, fmt.Errorf("invalid reward percentile: %f", p)
		}
		if i > 0 && p <= percentiles[i-1] {
			return dst, fmt.Errorf("invalid reward percentile: #%d:%f >= #%d:%f", i-1, percentiles[i-1], i, p)
		}
	}
	blocks := min(uint64(count), maxFeeHistory)

	// Resolve the newest block.
	head := s.b.HeadNumber()
	var last uint64
	pending := false
	switch newest.Tag {
	case TagNumber:
		if newest.Number > head {
			return dst, fmt.Errorf("request beyond head block: requested %d, head %d", newest.Number, head)
		}
		last = newest.Number
	case TagLatest:
		last = head
	default:
		h, _, err := s.b.HeaderByRef(ctx, newest)
		if err != nil {
			return dst, err
		}
		if h == nil || h.Number == nil {
			return dst, ErrUnknownBlock
		}
		last = h.Number.Uint64()
		pending = newest.Tag == TagPending
	}
	if last+1 < blocks {
		blocks = last + 1
	}
	oldest := last + 1 - blocks

	cfg := s.b.ChainConfig()
	fees := make([]blockFees, 0, blocks)
	for n := oldest; n <= last; n++ {
		if err := ctx.Err(); err != nil {
			return dst, err
		}
		ref := BlockRef{Tag: TagNumber, Number: n}
		if pending && n == last {
			ref = BlockRef{Tag: TagPending}
		}
		var (
			header *types.Header
			block  *Block
		)
		if len(percentiles) > 0 {
			block, err = s.b.BlockByRef(ctx, ref)
			if block != nil {
				header = block.Header
			}
		} else {
			header, _, err = s.b.HeaderByRef(ctx, ref)
		}
		if errors.Is(err, ErrUnknownBlock) || (err == nil && header == nil) {
			break // past the head (reorg or race): answer up to here
		}
		if err != nil {
			return dst, err
		}
		f := processBlockFees(cfg, n, header, block, percentiles)
		if calc, ok := s.b.(BaseFeeCalculator); ok {
			f.nextFee = calc.NextBaseFee(header)
		}
		fees = append(fees, f)
	}
	if len(fees) == 0 {
		return append(dst, `{"oldestBlock":"0x0","gasUsedRatio":null}`...), nil
	}

	dst = append(dst, `{"oldestBlock":`...)
	dst = appendUint64Hex(dst, oldest)
	if len(percentiles) > 0 {
		dst = append(dst, `,"reward":[`...)
		for i, f := range fees {
			if i > 0 {
				dst = append(dst, ',')
			}
			if f.reward == nil {
				dst = append(dst, jsonNull...)
				continue
			}
			dst = append(dst, '[')
			for j, r := range f.reward {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = appendBigHex(dst, r)
			}
			dst = append(dst, ']')
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"baseFeePerGas":[`...)
	for _, f := range fees {
		dst = appendBigHex(dst, f.baseFee)
		dst = append(dst, ',')
	}
	dst = appendBigHex(dst, fees[len(fees)-1].nextFee)
	dst = append(dst, `],"gasUsedRatio":[`...)
	for i, f := range fees {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendFloat(dst, f.gasUsedRatio)
	}
	dst = append(dst, `],"baseFeePerBlobGas":[`...)
	for _, f := range fees {
		dst = appendBigHex(dst, f.blobFee)
		dst = append(dst, ',')
	}
	dst = appendBigHex(dst, fees[len(fees)-1].nextBlb)
	dst = append(dst, `],"blobGasUsedRatio":[`...)
	for i, f := range fees {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendFloat(dst, f.blobGasUsedRatio)
	}
	return append(dst, ']', '}'), nil
}

// processBlockFees computes one block's fee history entry like go-ethereum's
// oracle.processBlock.
func processBlockFees(cfg *params.ChainConfig, n uint64, h *types.Header, b *Block, percentiles []float64) blockFees {
	var f blockFees
	if f.baseFee = h.BaseFee; f.baseFee == nil {
		f.baseFee = new(big.Int)
	}
	f.nextFee = nextBaseFee(cfg, n, h)
	f.blobFee, f.nextBlb = blobFees(cfg, h)
	if h.GasLimit > 0 {
		f.gasUsedRatio = float64(h.GasUsed) / float64(h.GasLimit)
	}
	if h.BlobGasUsed != nil {
		if max := maxBlobGas(cfg, h.Time); max != 0 {
			f.blobGasUsedRatio = float64(*h.BlobGasUsed) / float64(max)
		}
	}
	if len(percentiles) == 0 || b == nil {
		return f
	}
	if len(b.Receipts) < len(b.Txs) {
		return f // rewards unknown: printed as null, as go-ethereum does
	}
	f.reward = make([]*big.Int, len(percentiles))
	if len(b.Txs) == 0 {
		for i := range f.reward {
			f.reward[i] = new(big.Int)
		}
		return f
	}
	type gasAndReward struct {
		gasUsed uint64
		reward  *big.Int
	}
	sorter := make([]gasAndReward, len(b.Txs))
	for i, tx := range b.Txs {
		reward, _ := tx.EffectiveGasTip(h.BaseFee)
		if reward == nil {
			reward = new(big.Int)
		}
		sorter[i] = gasAndReward{gasUsed: b.Receipts[i].GasUsed, reward: reward}
	}
	slices.SortStableFunc(sorter, func(a, b gasAndReward) int { return a.reward.Cmp(b.reward) })

	var txIndex int
	sumGasUsed := sorter[0].gasUsed
	for i, p := range percentiles {
		threshold := uint64(float64(h.GasUsed) * p / 100)
		for sumGasUsed < threshold && txIndex < len(sorter)-1 {
			txIndex++
			sumGasUsed += sorter[txIndex].gasUsed
		}
		f.reward[i] = sorter[txIndex].reward
	}
	return f
}

// nextBaseFee is the base fee of the block after h (eip1559.CalcBaseFee).
func nextBaseFee(cfg *params.ChainConfig, n uint64, h *types.Header) (fee *big.Int) {
	if cfg == nil || !cfg.IsLondon(new(big.Int).SetUint64(n+1)) {
		return new(big.Int)
	}
	defer func() {
		if recover() != nil { // inconsistent config / header
			fee = new(big.Int)
		}
	}()
	return eip1559.CalcBaseFee(cfg, h, h.Time+1)
}

// blobFees are the blob base fees of h and of the block after it; zero where
// the chain has no blob schedule (the eip4844 helpers panic there).
func blobFees(cfg *params.ChainConfig, h *types.Header) (fee, next *big.Int) {
	fee, next = new(big.Int), new(big.Int)
	if cfg == nil || h.ExcessBlobGas == nil {
		return fee, next
	}
	defer func() {
		if recover() != nil {
			fee, next = new(big.Int), new(big.Int)
		}
	}()
	f := eip4844.CalcBlobFee(cfg, h)
	excess := eip4844.CalcExcessBlobGas(cfg, h, h.Time)
	nf := eip4844.CalcBlobFee(cfg, &types.Header{Number: h.Number, Time: h.Time, ExcessBlobGas: &excess})
	return f, nf
}

func maxBlobGas(cfg *params.ChainConfig, time uint64) (max uint64) {
	if cfg == nil {
		return 0
	}
	defer func() {
		if recover() != nil {
			max = 0
		}
	}()
	return eip4844.MaxBlobGasPerBlock(cfg, time)
}

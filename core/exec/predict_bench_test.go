package exec

import (
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/kestrel-l2/kestrel/core/blockstm"
)

func BenchmarkPredict(b *testing.B) {
	_, _, req := transferBlock(b, 10000)
	p := newPredictor(0)
	results := make([]blockstm.TxResult, len(req.Txs))
	for i := range results {
		results[i] = blockstm.TxResult{Output: &txOutput{}}
	}
	b.Run("predict", func(b *testing.B) {
		for range b.N {
			p.predict(req.Txs, 1, common.Address{})
		}
	})
	b.Run("learn", func(b *testing.B) {
		for range b.N {
			p.learn(req.Txs, results)
		}
	})
}

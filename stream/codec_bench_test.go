package stream

import (
	"testing"

	"github.com/kestrel-l2/kestrel/core/chain"
)

// The benchmarks encode and decode one executed 100-transfer mini-block (see
// transferBlock) with an encoder that has seen other mini-blocks of the same
// workload, and report the wire size and the time per transaction.

const benchTxs = 100

func benchEncode(b *testing.B, erc20 bool) {
	enc := NewEncoder()
	for seed := range uint64(3) {
		if _, err := enc.MiniBlock(transferBlock(b, erc20, benchTxs, 100+seed)); err != nil {
			b.Fatal(err)
		}
	}
	mb := transferBlock(b, erc20, benchTxs, 0)
	var size int
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		msg, err := enc.MiniBlock(mb)
		if err != nil {
			b.Fatal(err)
		}
		size = len(msg)
	}
	reportPerTx(b, size)
}

func benchDecode(b *testing.B, erc20 bool) {
	mb := transferBlock(b, erc20, benchTxs, 0)
	msg, err := NewEncoder().MiniBlock(mb)
	if err != nil {
		b.Fatal(err)
	}
	dec := NewDecoder()
	var out *chain.MiniBlock
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if out, err = dec.MiniBlock(msg); err != nil {
			b.Fatal(err)
		}
	}
	_ = out
	reportPerTx(b, len(msg))
}

func reportPerTx(b *testing.B, size int) {
	b.ReportMetric(float64(size)/benchTxs, "B/tx")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchTxs, "ns/tx")
}

func BenchmarkEncodeERC20(b *testing.B) { benchEncode(b, true) }
func BenchmarkDecodeERC20(b *testing.B) { benchDecode(b, true) }
func BenchmarkEncodeETH(b *testing.B)   { benchEncode(b, false) }
func BenchmarkDecodeETH(b *testing.B)   { benchDecode(b, false) }

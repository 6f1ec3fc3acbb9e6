package mempool

import (
	"fmt"
	"math"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// benchRaws holds signed transactions shared by the Add benchmarks: senders
// round-robin, so nonces grow slowly. Signing is slow, so they are made once
// and grown on demand.
var benchRaws struct {
	sync.Mutex
	keys []testKey
	raws [][]byte
}

const benchSenders = 4096

func signedRaws(b *testing.B, n int) [][]byte {
	benchRaws.Lock()
	defer benchRaws.Unlock()
	for len(benchRaws.keys) < benchSenders {
		benchRaws.keys = append(benchRaws.keys, newKey(b))
	}
	if have := len(benchRaws.raws); have < n {
		more := make([][]byte, n-have)
		var wg sync.WaitGroup
		var next atomic.Int64
		for range 16 {
			wg.Go(func() {
				for {
					j := int(next.Add(1) - 1)
					if j >= len(more) {
						return
					}
					i := have + j
					k := benchRaws.keys[i%benchSenders]
					tx, err := types.SignNewTx(k.key, testSigner, &types.DynamicFeeTx{
						ChainID: testChainID, Nonce: uint64(i / benchSenders), GasTipCap: big.NewInt(int64(1 + i%97)),
						GasFeeCap: big.NewInt(10 * gwei), Gas: 21000, To: &recipient, Value: big.NewInt(1),
					})
					if err != nil {
						panic(err)
					}
					more[j], _ = tx.MarshalBinary()
				}
			})
		}
		wg.Wait()
		benchRaws.raws = append(benchRaws.raws, more...)
	}
	return benchRaws.raws[:n]
}

func benchPool(b *testing.B, workers int) *Pool {
	p, _ := newTestPool(b, Config{AccountSlots: 1 << 20, GlobalSlots: 1 << 24, MaxNonceGap: 1 << 20, RecoverWorkers: workers}, testConfig(false))
	return p
}

// BenchmarkAdd measures the ingress cost per transaction: decoding, sender
// recovery, validation and insertion. ns/op is per transaction.
func BenchmarkAdd(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			raws := signedRaws(b, b.N)
			p := benchPool(b, 0)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				txs, errs := p.DecodeBatch(raws[i:min(i+batch, b.N)])
				for _, err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
				for _, err := range p.Add(txs) {
					if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
	// Many RPC goroutines sending one transaction each.
	b.Run("parallel-rpc", func(b *testing.B) {
		raws := signedRaws(b, b.N)
		p := benchPool(b, 0)
		var next atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := next.Add(1) - 1
				txs, errs := p.DecodeBatch(raws[i : i+1])
				if errs[0] != nil {
					b.Error(errs[0])
					return
				}
				// Nonces of a sender may arrive out of order here; that's fine.
				p.Add(txs)
			}
		})
	})
	// The part after recovery: validation and insertion only.
	b.Run("add-only", func(b *testing.B) {
		raws := signedRaws(b, b.N)
		p := benchPool(b, 0)
		txs, errs := p.DecodeBatch(raws)
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range txs {
			if err := p.Add(txs[i : i+1])[0]; err != nil {
				b.Fatal(err)
			}
		}
	})
}

// fillPool inserts senders*perSender transactions without signatures (the
// pool trusts Tx values carrying its signer), for the benchmarks of the
// sequencer side.
func fillPool(b testing.TB, p *Pool, senders, perSender int) []common.Address {
	addrs := make([]common.Address, senders)
	var batch []*Tx
	for s := range senders {
		addr := common.BigToAddress(big.NewInt(int64(s + 1)))
		addr[0] = byte(s * 31)
		addrs[s] = addr
		for n := range perSender {
			tx := types.NewTx(&types.DynamicFeeTx{
				ChainID: testChainID, Nonce: uint64(n), GasTipCap: big.NewInt(int64(1 + (s*7919)%1000)),
				GasFeeCap: big.NewInt(int64(2*gwei + (s*104729)%gwei)), Gas: 21000, To: &recipient, Value: big.NewInt(int64(s)),
			})
			batch = append(batch, &Tx{Tx: tx, Hash: tx.Hash(), Sender: addr, Raw: []byte{1}, Size: 100, signer: p.signer})
		}
	}
	for _, err := range p.Add(batch) {
		if err != nil {
			b.Fatal(err)
		}
	}
	return addrs
}

// BenchmarkReady measures Ready(5000) over a pool of 100k executable
// transactions.
func BenchmarkReady(b *testing.B) {
	for _, shape := range []struct{ senders, per int }{{100_000, 1}, {20_000, 5}, {1000, 100}} {
		b.Run(fmt.Sprintf("senders=%d/per=%d", shape.senders, shape.per), func(b *testing.B) {
			p := benchPool(b, 0)
			fillPool(b, p, shape.senders, shape.per)
			if pend, _ := p.Stats(); pend != shape.senders*shape.per {
				b.Fatalf("pending %d", pend)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if r := p.Ready(5000, math.MaxUint64); len(r) != 5000 {
					b.Fatalf("ready %d", len(r))
				}
			}
		})
	}
}

// BenchmarkIncluded measures a mini-block's bookkeeping: Included for the
// 5000 transactions Ready returned, in a pool of 100k.
func BenchmarkIncluded(b *testing.B) {
	fresh := func() (*Pool, *testState) {
		p := benchPool(b, 0)
		fillPool(b, p, 20_000, 5)
		return p, p.state.(*testState)
	}
	p, st := fresh()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		r := p.Ready(5000, math.MaxUint64)
		if len(r) < 5000 {
			b.StopTimer()
			p, st = fresh()
			b.StartTimer()
			r = p.Ready(5000, math.MaxUint64)
		}
		st.mu.Lock()
		for _, t := range r {
			st.nonces[t.Sender] = t.Nonce() + 1
		}
		st.mu.Unlock()
		p.Included(hashesOf(r))
	}
}

// BenchmarkSetEnv measures a base fee change over 100k pooled transactions.
func BenchmarkSetEnv(b *testing.B) {
	p := benchPool(b, 0)
	fillPool(b, p, 20_000, 5)
	env := p.Env()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		env.BaseFee = big.NewInt(int64(1 + i%2))
		p.SetEnv(env)
	}
}

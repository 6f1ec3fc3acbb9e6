package exec

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/state"
)

// transferBlock is n independent ETH transfers from n funded senders to n
// fresh recipients, over a state holding the senders.
func transferBlock(tb testing.TB, n int) (*state.State, *Env, *Request) {
	tb.Helper()
	g := chain.DevGenesis()
	d := g.AllocDiff()
	keys := make([]*ecdsa.PrivateKey, n)
	for i := range keys {
		k, err := crypto.ToECDSA(crypto.Keccak256([]byte{byte(i), byte(i >> 8), byte(i >> 16), 1}))
		if err != nil {
			tb.Fatal(err)
		}
		keys[i] = k
		d.Accounts = append(d.Accounts, chain.AccountDiff{Address: crypto.PubkeyToAddress(k.PublicKey), Balance: *uint256.NewInt(params.Ether), CodeHash: types.EmptyCodeHash})
	}
	d.Sort()
	s := state.New()
	s.Commit(1, d)
	env := testEnv(g, 1)
	signer := types.LatestSignerForChainID(new(big.Int).SetUint64(g.ChainID))
	req := &Request{}
	for i, k := range keys {
		to := common.BytesToAddress(crypto.Keccak256([]byte{byte(i), byte(i >> 8), byte(i >> 16), 2}))
		tx := types.MustSignNewTx(k, signer, &types.DynamicFeeTx{ChainID: signer.ChainID(), Gas: 21000, GasFeeCap: big.NewInt(2 * params.GWei), GasTipCap: big.NewInt(params.GWei), To: &to, Value: big.NewInt(1)})
		req.Txs = append(req.Txs, Tx{Tx: tx, Sender: crypto.PubkeyToAddress(k.PublicKey)})
	}
	return s, env, req
}

func benchExecutor(b *testing.B, x Executor) {
	s, env, req := transferBlock(b, 10000)
	b.ResetTimer()
	for range b.N {
		if _, err := x.Execute(context.Background(), s.Head(), env, req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(req.Txs))/b.Elapsed().Seconds(), "tx/s")
	if p, ok := x.(*Parallel); ok {
		st := p.Stats()
		b.ReportMetric(float64(st.ReExecutions)/float64(b.N), "reexec/op")
		b.ReportMetric(float64(st.Waits)/float64(b.N), "waits/op")
	}
}

func BenchmarkTransfersSequential(b *testing.B) { benchExecutor(b, Sequential{}) }
func BenchmarkTransfersParallel(b *testing.B) {
	benchExecutor(b, NewParallel(ParallelConfig{Mode: ModeParallel}))
}

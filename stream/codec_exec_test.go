package stream

import (
	"context"
	"crypto/ecdsa"
	"encoding/binary"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"

	"github.com/kestrel-l2/kestrel/contracts"
	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/exec"
	"github.com/kestrel-l2/kestrel/core/state"
)

// Realistic mini-blocks: transactions really executed by core/exec over a
// genesis holding an ERC-20 (contracts/src/ERC20.sol, placed as bench's
// Workload.Alloc does) and funded senders.

const (
	testChainID      = 1337
	tokenSlotBalance = 3 // balanceOf in contracts/src/ERC20.sol's layout
)

var (
	testToken    = common.HexToAddress("0x00000000000000000000000000000000000e2020")
	testCoinbase = common.HexToAddress("0xc0ffee0000000000000000000000000000c0ffee")
	senderETH    = new(big.Int).Mul(big.NewInt(1_000), big.NewInt(params.Ether))
	senderTokens = new(big.Int).Mul(big.NewInt(1_000_000), big.NewInt(params.Ether))
)

func testKey(seed uint64, label string, i int) *ecdsa.PrivateKey {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], seed)
	binary.BigEndian.PutUint64(b[8:], uint64(i))
	for n := 0; ; n++ {
		k, err := crypto.ToECDSA(crypto.Keccak256([]byte(label), b[:], []byte{byte(n)}))
		if err == nil {
			return k
		}
	}
}

// transferBlock executes n transfers (ERC-20 transfer(to, amount) calls when
// erc20, plain ETH transfers otherwise) from n distinct fresh senders to n fresh
// recipients and returns the signed mini-block; seed varies every account.
func transferBlock(tb testing.TB, erc20 bool, n int, seed uint64) *chain.MiniBlock {
	tb.Helper()
	g := chain.DevGenesis()
	g.ChainID = testChainID
	g.Coinbase = testCoinbase
	keys := make([]*ecdsa.PrivateKey, n)
	senders := make([]common.Address, n)
	tokenStorage := map[common.Hash]common.Hash{
		common.BigToHash(big.NewInt(2)): common.BigToHash(new(big.Int).Mul(senderTokens, big.NewInt(int64(n)))),
	}
	for i := range keys {
		keys[i] = testKey(seed, "sender", i)
		senders[i] = crypto.PubkeyToAddress(keys[i].PublicKey)
		g.Alloc[senders[i]] = chain.Account{Balance: new(big.Int).Set(senderETH)}
		tokenStorage[mapKey(senders[i], tokenSlotBalance)] = common.BigToHash(senderTokens)
	}
	g.Alloc[testToken] = chain.Account{Balance: new(big.Int), Nonce: 1, Code: contracts.ERC20().DeployedBytecode, Storage: tokenStorage}
	st := state.New()
	st.Commit(1, g.AllocDiff())

	const number = 7
	env := &exec.Env{Config: g.ChainConfig(), GetHash: func(n uint64) common.Hash { return common.Hash{byte(n)} }, Block: chain.BlockEnv{
		Number: number, Time: g.Timestamp + number, BaseFee: new(big.Int).Set(g.BaseFee), GasLimit: g.GasLimit,
		Coinbase: g.Coinbase, Random: chain.RandomFor(g.ChainID, number)}}
	signer := types.LatestSignerForChainID(big.NewInt(testChainID))
	req := &exec.Request{GasUsed: 1_234_567}
	for i := range n {
		to := common.BytesToAddress(crypto.Keccak256([]byte("recipient"), senders[i][:])[12:])
		amount := new(big.Int).SetUint64(1_000_000_000_000 + uint64(i)%1000)
		inner := &types.DynamicFeeTx{ChainID: big.NewInt(testChainID), GasTipCap: big.NewInt(params.GWei), GasFeeCap: big.NewInt(100 * params.GWei)}
		if erc20 {
			inner.Gas, inner.To, inner.Data = 80_000, &testToken, contracts.ERC20TransferData(to, amount)
		} else {
			inner.Gas, inner.To, inner.Value = params.TxGas, &to, amount
		}
		tx, err := types.SignNewTx(keys[i], signer, inner)
		if err != nil {
			tb.Fatal(err)
		}
		req.Txs = append(req.Txs, exec.Tx{Tx: tx, Sender: senders[i]})
	}
	res, err := exec.Sequential{}.Execute(context.Background(), st.Head(), env, req)
	if err != nil {
		tb.Fatal(err)
	}
	if len(res.Rejected) != 0 || len(res.Txs) != n {
		tb.Fatalf("%d of %d transactions executed, first rejection %v", len(res.Txs), n, res.Rejected[0].Err)
	}
	for i, r := range res.Receipts {
		if r.Status != types.ReceiptStatusSuccessful || (erc20 && len(r.Logs) != 1) {
			tb.Fatalf("transaction %d: status %d, %d logs", i, r.Status, len(r.Logs))
		}
	}
	mb := &chain.MiniBlock{Index: 1_000_000 + seed, IndexInBlock: 3, TimestampMs: env.Block.Time*1000 + 30, Env: env.Block,
		Diff: res.Diff}
	for i, tx := range res.Txs {
		mb.Txs = append(mb.Txs, tx.Tx)
		mb.Senders = append(mb.Senders, tx.Sender)
		mb.Receipts = append(mb.Receipts, res.Receipts[i])
	}
	if err := mb.Sign(testKey(0, "sequencer", 0)); err != nil {
		tb.Fatal(err)
	}
	return mb
}

// TestCodecSizes logs the wire size per transfer of 100-transaction mini-blocks,
// for a fresh encoder and for one that has seen a few mini-blocks; the message
// must be smaller than the RLP MarshalBinary encoding.
func TestCodecSizes(t *testing.T) {
	for _, c := range []struct {
		name  string
		erc20 bool
	}{{"ERC-20 transfer", true}, {"ETH transfer", false}} {
		const n = 100
		enc := NewEncoder()
		for seed := range uint64(4) {
			mb := transferBlock(t, c.erc20, n, seed)
			ref := marshal(t, mb)
			msg := checkRoundTrip(t, enc, mb)
			if len(msg) >= len(ref) {
				t.Fatalf("%s: %d-byte message not smaller than the %d-byte RLP", c.name, len(msg), len(ref))
			}
			if seed == 0 || seed == 3 {
				state := "fresh encoder"
				if seed > 0 {
					state = "warm encoder"
				}
				t.Logf("%s (%s): %.1f B/tx on the wire (%d bytes for %d; RLP MarshalBinary %.1f B/tx)",
					c.name, state, float64(len(msg))/n, len(msg), n, float64(len(ref))/n)
			}
		}
	}
}

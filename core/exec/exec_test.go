package exec

import (
	"context"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/state"
)

func devState(t *testing.T) (*state.State, *chain.Genesis) {
	t.Helper()
	g := chain.DevGenesis()
	d := g.AllocDiff()
	s := state.New()
	s.Commit(1, d)
	return s, g
}

func testEnv(g *chain.Genesis, number uint64) *Env {
	return &Env{Config: g.ChainConfig(), Block: chain.BlockEnv{Number: number, Time: g.Timestamp + number, BaseFee: big.NewInt(params.GWei),
		GasLimit: g.GasLimit, Random: chain.RandomFor(g.ChainID, number)}, GetHash: func(n uint64) common.Hash { return common.Hash{byte(n)} }}
}

// TestLazyParentSlot checks that the EIP-2935 slot of the parent reads the late
// value before the system call ran, and that the system call writes it.
func TestLazyParentSlot(t *testing.T) {
	s, g := devState(t)
	env := testEnv(g, 5)
	parentHash := common.HexToHash("0xabcdef")
	var key common.Hash
	key[31] = 4 // (5-1) % 8191
	asked := 0
	lazy := &state.LazySlot{Addr: params.HistoryStorageAddress, Key: key, Get: func() common.Hash { asked++; return parentHash }}

	sdb := state.NewStateDB(s.Head())
	sdb.SetLazySlot(lazy)
	evm := vm.NewEVM(BlockContext(env), sdb, env.Config, vm.Config{})
	input := common.LeftPadBytes([]byte{4}, 32)
	ret, _, err := evm.Call(common.Address{1}, params.HistoryStorageAddress, input, 100_000, new(uint256.Int))
	if err != nil || common.BytesToHash(ret) != parentHash || asked != 1 {
		t.Fatalf("history contract answered %x (%v), lazy slot asked %d times", ret, err, asked)
	}

	// The system call in a mini-block writes the slot for real.
	res, err := Sequential{}.Execute(context.Background(), s.Head(), env, &Request{BeaconRoot: true, ParentHash: &parentHash})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range res.Diff.Accounts {
		if a.Address != params.HistoryStorageAddress {
			continue
		}
		for _, sl := range a.Storage {
			if sl.Key == key && sl.Value == parentHash {
				found = true
			}
		}
	}
	if !found {
		t.Fatalf("EIP-2935 write missing from the diff: %+v", res.Diff)
	}
}

// TestRejectedTransactionChangesNothing: a transaction that fails validation at
// execution is left out and its effects (none) do not reach the diff.
func TestRejectedTransactionChangesNothing(t *testing.T) {
	s, g := devState(t)
	env := testEnv(g, 1)
	acc := chain.DevAccounts()[0]
	signer := types.LatestSignerForChainID(big.NewInt(chain.DevChainID))
	to := common.Address{0xaa}
	good, _ := types.SignNewTx(acc.Key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(chain.DevChainID), Nonce: 0, GasTipCap: big.NewInt(1),
		GasFeeCap: big.NewInt(2 * params.GWei), Gas: 21000, To: &to, Value: big.NewInt(1)})
	badNonce, _ := types.SignNewTx(acc.Key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(chain.DevChainID), Nonce: 7, GasTipCap: big.NewInt(1),
		GasFeeCap: big.NewInt(2 * params.GWei), Gas: 21000, To: &to, Value: big.NewInt(1)})
	res, err := Sequential{}.Execute(context.Background(), s.Head(), env, &Request{Txs: []Tx{{Tx: badNonce, Sender: acc.Address}, {Tx: good, Sender: acc.Address}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Txs) != 1 || res.Txs[0].Tx != good || len(res.Rejected) != 1 || res.Rejected[0].Retry {
		t.Fatalf("included %d, rejected %+v", len(res.Txs), res.Rejected)
	}
	if res.Receipts[0].CumulativeGasUsed != 21000 || res.GasUsed != 21000 {
		t.Fatalf("gas %d", res.GasUsed)
	}
	// Sender, recipient and coinbase change; nothing else.
	if len(res.Diff.Accounts) != 3 {
		t.Fatalf("diff touches %d accounts: %+v", len(res.Diff.Accounts), res.Diff.Accounts)
	}
	// A transaction over the remaining block gas waits for the next block.
	full := &Request{GasUsed: g.GasLimit - 20_000, Txs: []Tx{{Tx: good, Sender: acc.Address}}}
	res, err = Sequential{}.Execute(context.Background(), s.Head(), env, full)
	if err != nil || len(res.Rejected) != 1 || !res.Rejected[0].Retry {
		t.Fatalf("block-full rejection %+v %v", res, err)
	}
}

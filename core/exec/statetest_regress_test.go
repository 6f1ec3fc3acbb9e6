package exec_test

// Regression tests, at the transaction level, for divergences from go-ethereum
// found by the differential state tests.

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/tests"

	"github.com/kestrel-l2/kestrel/core/exec"
	"github.com/kestrel-l2/kestrel/core/state"
)

// TestStateTestCoinbaseAccessListSlots: a transaction whose access list warms
// storage keys of the coinbase address. EIP-3651 warming the coinbase in
// StateDB.Prepare used to reset the coinbase's access list entry, turning those
// keys cold again (SLOAD charged 2100 instead of 100).
func TestStateTestCoinbaseAccessListSlots(t *testing.T) {
	for _, fork := range []string{"Cancun", "Prague", "Osaka"} {
		t.Run(fork, func(t *testing.T) {
			config := tests.Forks[fork]
			key, _ := crypto.HexToECDSA("45a915e4d060149eb4365960e6a7a45f334393093061116b197e3240065ff2d8")
			sender := crypto.PubkeyToAddress(key.PublicKey)
			coinbase := common.HexToAddress("0xc0ffee")
			alloc := types.GenesisAlloc{
				sender: {Balance: big.NewInt(1e18)},
				// PUSH0 SLOAD PUSH0 SLOAD PUSH1 1 SLOAD STOP: slots 0 and 1
				coinbase: {Balance: new(big.Int), Nonce: 1, Code: common.FromHex("0x5f545f5460015400"),
					Storage: map[common.Hash]common.Hash{{}: common.BytesToHash([]byte{7})}},
			}
			tx := types.MustSignNewTx(key, types.LatestSigner(config), &types.DynamicFeeTx{
				ChainID: config.ChainID, Nonce: 0, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(100), Gas: 100_000,
				To: &coinbase, AccessList: types.AccessList{{Address: coinbase, StorageKeys: []common.Hash{{}}}},
			})
			env := &statetestEnv{Coinbase: common.UnprefixedAddress(coinbase), GasLimit: 30_000_000, Number: 1, Timestamp: 1000,
				BaseFee: (*math.HexOrDecimal256)(big.NewInt(7)), Random: (*math.HexOrDecimal256)(big.NewInt(0))}
			blk := statetestBlockEnv(config, env)

			// go-ethereum
			gst := tests.MakePreState(rawdb.NewMemoryDatabase(), alloc, false, rawdb.HashScheme)
			defer gst.Close()
			msg, err := core.TransactionToMessage(tx, types.LatestSigner(config), blk.baseFee)
			if err != nil {
				t.Fatal(err)
			}
			res, err := core.ApplyMessage(vm.NewEVM(blk.ctx, gst.StateDB, config, vm.Config{}), msg, core.NewGasPool(blk.gasLimit))
			if err != nil {
				t.Fatal(err)
			}
			// 21000 + 2400 (address) + 1900 (key) + code: 2 + 100 (warm) + 2 + 100 + 3 + 2100 (cold)
			if want := uint64(21000 + 2400 + 1900 + 2 + 100 + 2 + 100 + 3 + 2100); res.UsedGas != want {
				t.Fatalf("go-ethereum used %d gas, expected %d", res.UsedGas, want)
			}
			wantRoot := gst.StateDB.IntermediateRoot(true)

			// Kestrel
			st, pre, err := statetestPreState(alloc)
			if err != nil {
				t.Fatal(err)
			}
			merkle := state.NewMerkle(2)
			if _, err := merkle.Apply(1, pre); err != nil {
				t.Fatal(err)
			}
			sdb := state.NewStateDB(st.Head())
			receipt, err := exec.ApplyTx(vm.NewEVM(blk.ctx, sdb, config, vm.Config{}), sdb, core.NewGasPool(blk.gasLimit),
				exec.Tx{Tx: tx, Sender: sender}, blk.baseFee, 0)
			if err != nil {
				t.Fatal(err)
			}
			if receipt.GasUsed != res.UsedGas {
				t.Errorf("gas used %d, want %d", receipt.GasUsed, res.UsedGas)
			}
			root, err := merkle.Apply(2, sdb.Diff())
			if err != nil {
				t.Fatal(err)
			}
			if root != wantRoot {
				t.Errorf("root %x, want %x", root, wantRoot)
			}
		})
	}
}

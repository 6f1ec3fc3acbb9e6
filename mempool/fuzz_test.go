package mempool

import (
	"bytes"
	"math"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/holiman/uint256"
)

// FuzzDecode feeds arbitrary bytes through DecodeBatch and Add. Nothing may
// panic, and whatever is accepted must re-encode to exactly the input bytes
// and be served back by Get and Ready.
func FuzzDecode(f *testing.F) {
	key, _ := crypto.HexToECDSA("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291")
	signTx := func(data types.TxData) []byte {
		tx, err := types.SignNewTx(key, testSigner, data)
		if err != nil {
			f.Fatal(err)
		}
		raw, err := tx.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		return raw
	}
	auth, _ := types.SignSetCode(key, types.SetCodeAuthorization{ChainID: *uint256.MustFromBig(testChainID), Address: recipient})
	seeds := [][]byte{
		signTx(&types.DynamicFeeTx{ChainID: testChainID, GasTipCap: big.NewInt(gwei), GasFeeCap: big.NewInt(10 * gwei), Gas: 21000, To: &recipient, Value: big.NewInt(1)}),
		signTx(&types.DynamicFeeTx{ChainID: testChainID, GasTipCap: big.NewInt(gwei), GasFeeCap: big.NewInt(10 * gwei), Gas: 100000, Data: []byte{0x60, 0x00}}),
		signTx(&types.LegacyTx{GasPrice: big.NewInt(2 * gwei), Gas: 21000, To: &recipient}),
		signTx(&types.AccessListTx{ChainID: testChainID, GasPrice: big.NewInt(2 * gwei), Gas: 30000, To: &recipient, AccessList: types.AccessList{{Address: recipient, StorageKeys: []common.Hash{{1}}}}}),
		signTx(&types.SetCodeTx{ChainID: uint256.MustFromBig(testChainID), GasTipCap: uint256.NewInt(gwei), GasFeeCap: uint256.NewInt(10 * gwei), Gas: 100000, To: recipient, Value: new(uint256.Int), AuthList: []types.SetCodeAuthorization{auth}}),
		signTx(&types.BlobTx{ChainID: uint256.MustFromBig(testChainID), GasTipCap: uint256.NewInt(gwei), GasFeeCap: uint256.NewInt(10 * gwei), Gas: 21000, Value: new(uint256.Int), BlobFeeCap: uint256.NewInt(1), BlobHashes: []common.Hash{{1}}}),
		{}, {0x02}, {0xc0}, {0x7e, 0xc0}, {0xf8, 0x00},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := New(Config{RecoverWorkers: 2}, testEnv(testConfig(true)), newTestState())
		if err != nil {
			t.Fatal(err)
		}
		txs, errs := p.DecodeBatch([][]byte{data, data})
		for i := range txs {
			if (txs[i] == nil) == (errs[i] == nil) {
				t.Fatalf("item %d: tx %v, error %v", i, txs[i] != nil, errs[i])
			}
		}
		if errs[0] != nil {
			return
		}
		tx := txs[0]
		if re, err := tx.Tx.MarshalBinary(); err != nil || !bytes.Equal(re, data) {
			t.Fatalf("decoded tx re-encodes differently (%v)", err)
		}
		if tx.Hash != crypto.Keccak256Hash(data) {
			t.Fatalf("hash is not keccak of the encoding")
		}
		errs = p.Add(txs)
		if errs[0] != nil {
			return
		}
		if errs[1] != ErrAlreadyKnown {
			t.Fatalf("duplicate in batch: %v", errs[1])
		}
		got := p.Get(tx.Hash)
		if got == nil || !bytes.Equal(got.Raw, data) || got.Sender != tx.Sender {
			t.Fatal("accepted tx not served back")
		}
		if re, err := got.Tx.MarshalBinary(); err != nil || !bytes.Equal(re, data) {
			t.Fatal("accepted tx re-encodes differently")
		}
		if pend, queued := p.Stats(); pend+queued != 1 {
			t.Fatalf("stats %d/%d", pend, queued)
		}
		if r := p.Ready(10, math.MaxUint64); len(r) == 1 && r[0] != got {
			t.Fatal("Ready returned something else")
		}
		checkInvariants(t, p)
	})
}

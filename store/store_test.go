package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/big"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/core/chain"
)

func openTest(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func miniBlock(t *testing.T, index uint64, nonce uint64) *chain.MiniBlock {
	t.Helper()
	acc := chain.DevAccounts()[0]
	to := common.Address{0xaa}
	tx, err := types.SignNewTx(acc.Key, types.LatestSignerForChainID(big.NewInt(chain.DevChainID)), &types.DynamicFeeTx{
		ChainID: big.NewInt(chain.DevChainID), Nonce: nonce, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2e9), Gas: 21000, To: &to})
	if err != nil {
		t.Fatal(err)
	}
	mb := &chain.MiniBlock{Index: index, Env: chain.BlockEnv{Number: 1, BaseFee: big.NewInt(1e9), GasLimit: 30_000_000},
		Txs: []*types.Transaction{tx}, Senders: []common.Address{acc.Address},
		Receipts: []*chain.Receipt{{Status: 1, CumulativeGasUsed: 21000, GasUsed: 21000}}, Diff: &chain.StateDiff{}}
	if err := mb.Sign(acc.Key); err != nil {
		t.Fatal(err)
	}
	return mb
}

func TestMiniBlockLogSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	var hashes []common.Hash
	for i := uint64(1); i <= 5; i++ {
		mb := miniBlock(t, i, i)
		raw, _ := mb.MarshalBinary()
		if err := s.AppendMiniBlock(mb, raw); err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, mb.Txs[0].Hash())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	defer s.Close()
	last, err := s.LastMiniBlock()
	if err != nil || last != 5 {
		t.Fatalf("last mini-block %d %v", last, err)
	}
	var seen []uint64
	if err := s.MiniBlocks(3, func(mb *chain.MiniBlock) error { seen = append(seen, mb.Index); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 3 || seen[0] != 3 || seen[2] != 5 {
		t.Fatalf("iterated %v", seen)
	}
	idx, pos, err := s.TxLocation(hashes[3])
	if err != nil || idx != 4 || pos != 0 {
		t.Fatalf("tx location %d/%d %v", idx, pos, err)
	}
	if _, _, err := s.TxLocation(common.Hash{1}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown tx: %v", err)
	}
	if _, err := s.MiniBlock(99); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown mini-block: %v", err)
	}
}

func TestCorruptMiniBlockIsAnError(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	mb := miniBlock(t, 1, 0)
	raw, _ := mb.MarshalBinary()
	bad := bytes.Clone(raw)
	bad[len(bad)/2] ^= 0x40
	if err := s.db.Set(key('m', u64(1)), bad, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MiniBlock(1); !errors.Is(err, chain.ErrBadMiniBlock) {
		t.Fatalf("corrupt mini-block read: %v", err)
	}
	if err := s.MiniBlocks(1, func(*chain.MiniBlock) error { return nil }); err == nil {
		t.Fatal("iteration over a corrupt mini-block succeeded")
	}
}

func TestBlockRecords(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	if _, ok, err := s.LastBlock(); ok || err != nil {
		t.Fatalf("empty store has a block: %v", err)
	}
	for n := uint64(0); n < 3; n++ {
		h := &types.Header{Number: new(big.Int).SetUint64(n), Difficulty: new(big.Int), Time: n}
		if err := s.PutBlock(&BlockRecord{Header: h, Signature: []byte{1, 2}, FirstMini: n, LastMini: n}); err != nil {
			t.Fatal(err)
		}
	}
	rec, err := s.Block(2)
	if err != nil || rec.Header.Number.Uint64() != 2 || rec.LastMini != 2 {
		t.Fatalf("block 2: %+v %v", rec, err)
	}
	n, err := s.BlockNumber(rec.Header.Hash())
	if err != nil || n != 2 {
		t.Fatalf("block number by hash %d %v", n, err)
	}
	if last, ok, _ := s.LastBlock(); !ok || last != 2 {
		t.Fatalf("last block %d", last)
	}
}

func TestSnapshots(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	code := []byte{0x60, 0x01}
	accounts := []*SnapshotAccount{
		{Address: common.Address{1}, Nonce: 1, Balance: uint256.NewInt(10), CodeHash: types.EmptyCodeHash},
		{Address: common.Address{0xff}, Nonce: 2, Balance: uint256.NewInt(0), CodeHash: crypto.Keccak256Hash(code), Code: code,
			Storage: map[common.Hash]common.Hash{{1}: {2}, {3}: {0, 4}}},
		{Address: common.Address{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
			Balance: uint256.NewInt(5), CodeHash: types.EmptyCodeHash, Storage: map[common.Hash]common.Hash{{9}: {9}}},
	}
	write := func(id uint64) {
		err := s.WriteSnapshot(SnapshotMeta{ID: id, MiniIndex: id * 10, Block: id}, func(emit func(*SnapshotAccount) error) error {
			for _, a := range accounts {
				if err := emit(a); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for id := uint64(0); id < 4; id++ {
		write(id)
	}
	metas, err := s.Snapshots()
	if err != nil || len(metas) != keepSnapshots || metas[len(metas)-1].ID != 3 {
		t.Fatalf("snapshots %+v %v", metas, err)
	}
	s.Close()
	s = openTest(t, dir)
	defer s.Close()
	var got []*SnapshotAccount
	if err := s.ReadSnapshot(3, func(a *SnapshotAccount) error { got = append(got, a); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(accounts) {
		t.Fatalf("read %d accounts", len(got))
	}
	for i, a := range accounts {
		g := got[i]
		if g.Address != a.Address || g.Nonce != a.Nonce || !g.Balance.Eq(a.Balance) || g.CodeHash != a.CodeHash ||
			!bytes.Equal(g.Code, a.Code) || len(g.Storage) != len(a.Storage) {
			t.Fatalf("account %d: %+v, want %+v", i, g, a)
		}
		for k, v := range a.Storage {
			if g.Storage[k] != v {
				t.Fatalf("account %d slot %s", i, k)
			}
		}
	}
	// Dropped snapshots are gone.
	n := 0
	_ = s.ReadSnapshot(0, func(*SnapshotAccount) error { n++; return nil })
	if n != 0 {
		t.Fatalf("snapshot 0 still has %d accounts", n)
	}
	// Code that does not match its hash is refused.
	if err := s.db.Set(append(snapPrefix(3, 'c'), crypto.Keccak256Hash(code).Bytes()...), []byte{0xde, 0xad}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.ReadSnapshot(3, func(*SnapshotAccount) error { return nil }); err == nil {
		t.Fatal("corrupt snapshot code accepted")
	}
}

// TestTxLocationBlockNumber: new index entries carry the block number; entries
// written before (12 bytes) still read, without it.
func TestTxLocationBlockNumber(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	mb := miniBlock(t, 1, 0)
	mb.Env.Number = 7
	if err := mb.Sign(chain.DevAccounts()[0].Key); err != nil {
		t.Fatal(err)
	}
	raw, err := mb.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AppendMiniBlock(mb, raw); err != nil {
		t.Fatal(err)
	}
	h := mb.Txs[0].Hash()
	loc, err := s.TxLocationFull(h)
	if err != nil || loc != (TxLoc{Mini: 1, Pos: 0, Block: 7, HasBlock: true}) {
		t.Fatalf("location %+v %v", loc, err)
	}
	old := binary.BigEndian.AppendUint32(u64(1), 0)
	if err := s.db.Set(key('t', h[:]), old, nil); err != nil {
		t.Fatal(err)
	}
	if loc, err = s.TxLocationFull(h); err != nil || loc != (TxLoc{Mini: 1, Pos: 0}) {
		t.Fatalf("old entry: %+v %v", loc, err)
	}
	if err := s.db.Set(key('t', h[:]), []byte{1, 2, 3}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err = s.TxLocationFull(h); err == nil {
		t.Fatal("malformed entry accepted")
	}
}

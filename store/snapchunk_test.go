package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/holiman/uint256"
)

// chunkTestAccounts is a state with empty accounts, shared code, and accounts
// whose storage spans many chunks at a small chunk size.
func chunkTestAccounts() []*SnapshotAccount {
	rng := rand.New(rand.NewPCG(1, 2))
	codeA, codeB := []byte{0x60, 0x01, 0x60, 0x02}, bytes.Repeat([]byte{0x5b}, 300)
	var out []*SnapshotAccount
	for i := 0; i < 40; i++ {
		var addr common.Address
		for j := range addr {
			addr[j] = byte(rng.Uint32())
		}
		a := &SnapshotAccount{Address: addr, Nonce: uint64(i), Balance: uint256.NewInt(rng.Uint64()), CodeHash: types.EmptyCodeHash}
		switch i % 5 {
		case 0:
			a.Code, a.CodeHash = codeA, crypto.Keccak256Hash(codeA)
		case 1:
			a.Code, a.CodeHash = codeB, crypto.Keccak256Hash(codeB)
		case 2:
			a.Balance = new(uint256.Int)
		}
		slots := 0
		switch i % 7 {
		case 0:
			slots = 150
		case 3:
			slots = 3
		}
		for j := 0; j < slots; j++ {
			if a.Storage == nil {
				a.Storage = make(map[common.Hash]common.Hash)
			}
			var k, v common.Hash
			for n := range k {
				k[n] = byte(rng.Uint32())
			}
			v[31-j%32] = byte(j + 1) // values of every trimmed length
			a.Storage[k] = v
		}
		out = append(out, a)
	}
	return out
}

func writeTestSnapshot(t *testing.T, s *Store, id uint64, accounts []*SnapshotAccount) {
	t.Helper()
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

func readAll(t *testing.T, s *Store, id uint64) []*SnapshotAccount {
	t.Helper()
	var got []*SnapshotAccount
	if err := s.ReadSnapshot(id, func(a *SnapshotAccount) error { got = append(got, a); return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

// chunks reads snapshot id from cursor to its end, returning every chunk and
// the cursors they started from.
func chunks(t *testing.T, s *Store, id uint64, cursor []byte, maxBytes int) ([][]SnapshotEntry, [][]byte) {
	t.Helper()
	var out [][]SnapshotEntry
	var cursors [][]byte
	for i := 0; ; i++ {
		if i > 100000 {
			t.Fatal("no end")
		}
		entries, next, err := s.SnapshotChunk(id, cursor, maxBytes)
		if err != nil {
			t.Fatalf("chunk at %x: %v", cursor, err)
		}
		if len(entries) == 0 {
			t.Fatalf("empty chunk at %x", cursor)
		}
		if next != nil && bytes.Compare(next, cursor) <= 0 {
			t.Fatalf("cursor went from %x back to %x", cursor, next)
		}
		out, cursors = append(out, entries), append(cursors, cursor)
		if next == nil {
			return out, cursors
		}
		cursor = next
	}
}

// assemble rebuilds accounts from entries, checking their order.
func assemble(t *testing.T, entries []SnapshotEntry) []*SnapshotAccount {
	t.Helper()
	var out []*SnapshotAccount
	code := make(map[common.Hash][]byte)
	var lastKey []byte
	for _, e := range entries {
		if e.Account {
			if n := len(out); n > 0 && bytes.Compare(out[n-1].Address[:], e.Address[:]) >= 0 {
				t.Fatalf("account %s out of order", e.Address)
			}
			if e.Code != nil {
				code[e.CodeHash] = e.Code
			}
			out = append(out, &SnapshotAccount{Address: e.Address, Nonce: e.Nonce, Balance: e.Balance, CodeHash: e.CodeHash, Code: code[e.CodeHash]})
			lastKey = nil
		} else if len(out) == 0 || out[len(out)-1].Address != e.Address {
			t.Fatalf("storage of %s without its account", e.Address)
		}
		a := out[len(out)-1]
		for _, sl := range e.Storage {
			if lastKey != nil && bytes.Compare(lastKey, sl.Key[:]) >= 0 {
				t.Fatalf("slot %s of %s out of order", sl.Key, e.Address)
			}
			lastKey = common.CopyBytes(sl.Key[:])
			if a.Storage == nil {
				a.Storage = make(map[common.Hash]common.Hash)
			}
			a.Storage[sl.Key] = common.BytesToHash(sl.Value)
		}
	}
	return out
}

func sameAccounts(t *testing.T, got, want []*SnapshotAccount) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d accounts, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Address != w.Address || g.Nonce != w.Nonce || !g.Balance.Eq(w.Balance) || g.CodeHash != w.CodeHash ||
			!bytes.Equal(g.Code, w.Code) || len(g.Storage) != len(w.Storage) {
			t.Fatalf("account %d: %+v, want %+v", i, g, w)
		}
		for k, v := range w.Storage {
			if g.Storage[k] != v {
				t.Fatalf("account %s slot %s: %s, want %s", w.Address, k, g.Storage[k], v)
			}
		}
	}
}

func TestSnapshotChunks(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	writeTestSnapshot(t, s, 7, chunkTestAccounts())
	want := readAll(t, s, 7)

	one, _ := chunks(t, s, 7, nil, 64<<20)
	if len(one) != 1 {
		t.Fatalf("%d chunks at a large size", len(one))
	}
	sameAccounts(t, assemble(t, one[0]), want)

	for _, maxBytes := range []int{1, 100, 700, 4096} {
		t.Run(fmt.Sprint(maxBytes), func(t *testing.T) {
			got, cursors := chunks(t, s, 7, nil, maxBytes)
			var all []SnapshotEntry
			split := false
			for _, c := range got {
				all = append(all, c...)
				split = split || !c[0].Account
			}
			if maxBytes <= 700 && !split {
				t.Fatal("no account's storage was split over chunks")
			}
			sameAccounts(t, assemble(t, all), want)
			// Resuming from any cursor, at another chunk size, completes the
			// same state; at the same size it repeats the same chunk.
			var before []SnapshotEntry
			for i, cur := range cursors {
				rest, _ := chunks(t, s, 7, cur, 64<<20)
				sameAccounts(t, assemble(t, append(append([]SnapshotEntry(nil), before...), rest[0]...)), want)
				before = append(before, got[i]...)
				again, next, err := s.SnapshotChunk(7, cur, maxBytes)
				if err != nil || !reflect.DeepEqual(again, got[i]) || (i+1 < len(cursors) && !bytes.Equal(next, cursors[i+1])) {
					t.Fatalf("chunk %d again from %x differs (%v)", i, cur, err)
				}
			}
		})
	}
}

// TestSnapshotChunkRoundTrip writes the chunks of a snapshot into another store
// entry by entry and reads back the same state.
func TestSnapshotChunkRoundTrip(t *testing.T) {
	src := openTest(t, t.TempDir())
	defer src.Close()
	writeTestSnapshot(t, src, 3, chunkTestAccounts())
	want := readAll(t, src, 3)
	dst := openTest(t, t.TempDir())
	defer dst.Close()

	if _, err := dst.BootstrapProgress(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("progress of a new store: %v", err)
	}
	got, _ := chunks(t, src, 3, nil, 500)
	for i, c := range got {
		if err := dst.PutSnapshotEntries(3, c, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if p, err := dst.BootstrapProgress(); err != nil || string(p) != fmt.Sprint(len(got)-1) {
		t.Fatalf("progress %q %v", p, err)
	}
	if metas, _ := dst.Snapshots(); len(metas) != 0 {
		t.Fatalf("snapshot listed before completion: %+v", metas)
	}
	if err := dst.CompleteBootstrap(SnapshotMeta{ID: 3, MiniIndex: 30, Block: 3}, []byte(`{"g":1}`)); err != nil {
		t.Fatal(err)
	}
	// Completing again (a bootstrap finished twice after a crash) is harmless.
	if err := dst.CompleteSnapshot(SnapshotMeta{ID: 3, MiniIndex: 30, Block: 3}); err != nil {
		t.Fatal(err)
	}
	if metas, err := dst.Snapshots(); err != nil || len(metas) != 1 || metas[0] != (SnapshotMeta{ID: 3, MiniIndex: 30, Block: 3}) {
		t.Fatalf("snapshots %+v %v", metas, err)
	}
	if g, err := dst.Genesis(); err != nil || string(g) != `{"g":1}` {
		t.Fatalf("genesis %q %v", g, err)
	}
	if _, err := dst.BootstrapProgress(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("progress after completion: %v", err)
	}
	sameAccounts(t, readAll(t, dst, 3), want)
	if err := dst.CompleteSnapshot(SnapshotMeta{ID: 2, Block: 2}); err == nil {
		t.Fatal("listed an id below the newest")
	}
	if err := dst.DeleteSnapshotData(3); err == nil {
		t.Fatal("deleted a complete snapshot")
	}
}

func TestPutSnapshotEntriesChecksCode(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	code := []byte{1, 2, 3}
	hash := crypto.Keccak256Hash(code)
	bad := []SnapshotEntry{{Address: common.Address{1}, Account: true, Balance: uint256.NewInt(1), CodeHash: hash, Code: []byte{9}}}
	if err := s.PutSnapshotEntries(1, bad, []byte("p")); err == nil {
		t.Fatal("code not matching its hash accepted")
	}
	missing := []SnapshotEntry{{Address: common.Address{1}, Account: true, Balance: uint256.NewInt(1), CodeHash: hash}}
	if err := s.PutSnapshotEntries(1, missing, []byte("p")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("account without its code: %v", err)
	}
	if _, err := s.BootstrapProgress(); !errors.Is(err, ErrNotFound) {
		t.Fatal("a refused chunk recorded progress")
	}
	long := []SnapshotEntry{{Address: common.Address{1}, Storage: []SlotEntry{{Value: make([]byte, 33)}}}}
	if err := s.PutSnapshotEntries(1, long, nil); err == nil {
		t.Fatal("33-byte slot value accepted")
	}
	// Code written by an earlier chunk serves later accounts.
	first := []SnapshotEntry{{Address: common.Address{1}, Account: true, Balance: uint256.NewInt(1), CodeHash: hash, Code: code}}
	second := []SnapshotEntry{{Address: common.Address{2}, Account: true, Balance: uint256.NewInt(1), CodeHash: hash}}
	if err := s.PutSnapshotEntries(1, first, []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSnapshotEntries(1, second, []byte("2")); err != nil {
		t.Fatal(err)
	}
	// An unfinished snapshot's data can be dropped; its progress is cleared apart.
	if err := s.DeleteSnapshotData(1); err != nil {
		t.Fatal(err)
	}
	if err := s.ClearBootstrapProgress(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BootstrapProgress(); !errors.Is(err, ErrNotFound) {
		t.Fatal("progress not cleared")
	}
	if _, err := s.get(append(snapPrefix(1, 'a'), common.Address{1}.Bytes()...)); !errors.Is(err, ErrNotFound) {
		t.Fatal("unfinished snapshot data not deleted")
	}
}

func TestSnapshotChunkErrors(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	accounts := chunkTestAccounts()
	writeTestSnapshot(t, s, 1, accounts)

	good := accountCursor(accounts[0].Address)
	for name, cursor := range map[string][]byte{
		"empty":         {},
		"version only":  {cursorVersion},
		"short":         good[:10],
		"long":          append(common.CopyBytes(good), 1),
		"slot short":    append(common.CopyBytes(good), make([]byte, 31)...),
		"wrong version": append([]byte{2}, good[1:]...),
	} {
		if _, _, err := s.SnapshotChunk(1, cursor, 1000); !errors.Is(err, ErrBadCursor) {
			t.Errorf("%s cursor %x: %v", name, cursor, err)
		}
	}
	if _, _, err := s.SnapshotChunk(2, nil, 1000); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown snapshot: %v", err)
	}
	// A cursor past the end is the end.
	end := accountCursor(common.Address{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	if entries, next, err := s.SnapshotChunk(1, slotCursor(common.Address(end[1:]), bytes.Repeat([]byte{0xff}, 32)), 1000); err != nil || len(entries) != 0 || next != nil {
		t.Fatalf("past the end: %d entries, next %x, %v", len(entries), next, err)
	}
	// A snapshot that rotated out is gone, not partial.
	writeTestSnapshot(t, s, 2, accounts[:1])
	writeTestSnapshot(t, s, 3, accounts[:1])
	if _, _, err := s.SnapshotChunk(1, good, 1000); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rotated-out snapshot: %v", err)
	}
}

// TestSnapshotEntryRLP: entries survive RLP, the form they are shipped in.
func TestSnapshotEntryRLP(t *testing.T) {
	s := openTest(t, t.TempDir())
	defer s.Close()
	writeTestSnapshot(t, s, 1, chunkTestAccounts())
	entries, _, err := s.SnapshotChunk(1, nil, 2000)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := rlp.EncodeToBytes(entries)
	if err != nil {
		t.Fatal(err)
	}
	var dec []SnapshotEntry
	if err := rlp.DecodeBytes(enc, &dec); err != nil {
		t.Fatal(err)
	}
	sameAccounts(t, assemble(t, dec), assemble(t, entries))
}

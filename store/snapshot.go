package store

import (
	"bytes"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/holiman/uint256"
)

// SnapshotMeta describes a complete state snapshot: the state after mini-block
// MiniIndex, the last mini-block of block Block.
type SnapshotMeta struct {
	ID        uint64
	MiniIndex uint64
	Block     uint64
}

// SnapshotAccount is one account in a snapshot.
type SnapshotAccount struct {
	Address  common.Address
	Nonce    uint64
	Balance  *uint256.Int
	CodeHash common.Hash
	Code     []byte
	Storage  map[common.Hash]common.Hash
}

type snapAccountRLP struct {
	Nonce    uint64
	Balance  *uint256.Int
	CodeHash common.Hash
}

// keepSnapshots is how many complete snapshots are kept.
const keepSnapshots = 2

// Snapshots lists complete snapshots, oldest first.
func (s *Store) Snapshots() ([]SnapshotMeta, error) { return snapshotList(s.db) }

func snapPrefix(id uint64, kind byte) []byte { return append(key('s', u64(id)), kind) }

// WriteSnapshot writes a snapshot whose accounts dump yields, then records it as
// complete (synced) and deletes all but the newest keepSnapshots. A crash midway
// leaves an incomplete snapshot that is never listed and is removed later.
func (s *Store) WriteSnapshot(meta SnapshotMeta, dump func(emit func(*SnapshotAccount) error) error) error {
	metas, err := s.Snapshots()
	if err != nil {
		return err
	}
	if n := len(metas); n > 0 && metas[n-1].ID >= meta.ID {
		meta.ID = metas[n-1].ID + 1
	}
	// Clear leftovers of an interrupted snapshot with this id.
	if err := s.db.DeleteRange(key('s', u64(meta.ID)), key('s', u64(meta.ID+1)), pebble.NoSync); err != nil {
		return err
	}
	b := s.db.NewBatch()
	flush := func(force bool) error {
		if !force && b.Len() < 4<<20 {
			return nil
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			return err
		}
		b.Close()
		b = s.db.NewBatch()
		return nil
	}
	err = dump(func(a *SnapshotAccount) error {
		enc, err := rlp.EncodeToBytes(&snapAccountRLP{Nonce: a.Nonce, Balance: a.Balance, CodeHash: a.CodeHash})
		if err != nil {
			return err
		}
		if err := b.Set(append(snapPrefix(meta.ID, 'a'), a.Address[:]...), enc, nil); err != nil {
			return err
		}
		if len(a.Code) > 0 {
			if err := b.Set(append(snapPrefix(meta.ID, 'c'), a.CodeHash[:]...), a.Code, nil); err != nil {
				return err
			}
		}
		for k, v := range a.Storage {
			sk := append(append(snapPrefix(meta.ID, 's'), a.Address[:]...), k[:]...)
			if err := b.Set(sk, common.TrimLeftZeroes(v[:]), nil); err != nil {
				return err
			}
		}
		return flush(false)
	})
	if err == nil {
		err = flush(true)
	}
	b.Close()
	if err != nil {
		return fmt.Errorf("write snapshot %d: %w", meta.ID, err)
	}
	return s.listSnapshot(meta, nil)
}

// CompleteSnapshot records a snapshot written entry by entry
// (PutSnapshotEntries) as complete, like WriteSnapshot does at its end: synced,
// keeping only the newest keepSnapshots. Its id must be above every listed one.
func (s *Store) CompleteSnapshot(meta SnapshotMeta) error { return s.listSnapshot(meta, nil) }

// listSnapshot appends meta to the snapshot list and drops the snapshots beyond
// keepSnapshots, with extra's writes, in one synced batch. Readers that check
// the list in a consistent view (SnapshotChunk) therefore never see a listed
// snapshot with its data partly deleted. Listing an id that is already the
// newest listed, with the same block, is a no-op apart from extra.
func (s *Store) listSnapshot(meta SnapshotMeta, extra func(*pebble.Batch) error) error {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	metas, err := s.Snapshots()
	if err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	if n := len(metas); n > 0 && metas[n-1] == meta {
		// Listed already (a bootstrap finished again after a crash).
	} else if n > 0 && metas[n-1].ID >= meta.ID {
		return fmt.Errorf("snapshot %d: id not above the newest listed snapshot %d", meta.ID, metas[n-1].ID)
	} else {
		metas = append(metas, meta)
	}
	var drop []SnapshotMeta
	if len(metas) > keepSnapshots {
		drop, metas = metas[:len(metas)-keepSnapshots], metas[len(metas)-keepSnapshots:]
	}
	enc, err := rlp.EncodeToBytes(metas)
	if err != nil {
		return err
	}
	if err := b.Set([]byte("S"), enc, nil); err != nil {
		return err
	}
	for _, d := range drop {
		if err := b.DeleteRange(key('s', u64(d.ID)), key('s', u64(d.ID+1)), nil); err != nil {
			return err
		}
	}
	if extra != nil {
		if err := extra(b); err != nil {
			return err
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("list snapshot %d: %w", meta.ID, err)
	}
	return nil
}

// UnlistSnapshotsAfter removes from the list, and deletes, the snapshots of
// blocks after block (a follower's snapshots of blocks it could not verify).
func (s *Store) UnlistSnapshotsAfter(block uint64) (int, error) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	metas, err := s.Snapshots()
	if err != nil {
		return 0, err
	}
	keep := metas[:0:0]
	var drop []SnapshotMeta
	for _, m := range metas {
		if m.Block > block {
			drop = append(drop, m)
		} else {
			keep = append(keep, m)
		}
	}
	if len(drop) == 0 {
		return 0, nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	enc, err := rlp.EncodeToBytes(keep)
	if err != nil {
		return 0, err
	}
	if err := b.Set([]byte("S"), enc, nil); err != nil {
		return 0, err
	}
	for _, d := range drop {
		if err := b.DeleteRange(key('s', u64(d.ID)), key('s', u64(d.ID+1)), nil); err != nil {
			return 0, err
		}
	}
	return len(drop), b.Commit(pebble.Sync)
}

// ReadSnapshot calls fn for every account of a snapshot in address order.
func (s *Store) ReadSnapshot(id uint64, fn func(*SnapshotAccount) error) error {
	accPrefix := snapPrefix(id, 'a')
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: accPrefix, UpperBound: snapPrefix(id, 'b')})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != len(accPrefix)+common.AddressLength || !bytes.HasPrefix(k, accPrefix) {
			return fmt.Errorf("snapshot %d: malformed account key %x", id, k)
		}
		var enc snapAccountRLP
		if err := rlp.DecodeBytes(it.Value(), &enc); err != nil {
			return fmt.Errorf("snapshot %d: account %x: %w", id, k, err)
		}
		a := &SnapshotAccount{Address: common.BytesToAddress(k[len(accPrefix):]), Nonce: enc.Nonce, Balance: enc.Balance, CodeHash: enc.CodeHash}
		if a.Balance == nil {
			a.Balance = new(uint256.Int)
		}
		if a.Code, err = s.snapshotCode(id, a.CodeHash); err != nil {
			return err
		}
		if a.Storage, err = s.snapshotStorage(id, a.Address); err != nil {
			return err
		}
		if err := fn(a); err != nil {
			return err
		}
	}
	return it.Error()
}

func (s *Store) snapshotCode(id uint64, hash common.Hash) ([]byte, error) {
	if hash == (common.Hash{}) || hash == crypto.Keccak256Hash(nil) {
		return nil, nil
	}
	code, err := s.get(append(snapPrefix(id, 'c'), hash[:]...))
	if err != nil {
		return nil, fmt.Errorf("snapshot %d: code %s: %w", id, hash, err)
	}
	if crypto.Keccak256Hash(code) != hash {
		return nil, fmt.Errorf("snapshot %d: code %s does not match its hash", id, hash)
	}
	return code, nil
}

func (s *Store) snapshotStorage(id uint64, addr common.Address) (map[common.Hash]common.Hash, error) {
	prefix := append(snapPrefix(id, 's'), addr[:]...)
	upper := prefixEnd(prefix)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out map[common.Hash]common.Hash
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != len(prefix)+common.HashLength {
			return nil, fmt.Errorf("snapshot %d: malformed storage key %x", id, k)
		}
		if len(it.Value()) > common.HashLength {
			return nil, fmt.Errorf("snapshot %d: storage value too long at %x", id, k)
		}
		if out == nil {
			out = make(map[common.Hash]common.Hash)
		}
		out[common.BytesToHash(k[len(prefix):])] = common.BytesToHash(it.Value())
	}
	return out, it.Error()
}

// prefixEnd is the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := common.CopyBytes(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

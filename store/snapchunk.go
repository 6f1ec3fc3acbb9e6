package store

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/holiman/uint256"
)

// ErrBadCursor is returned for a snapshot chunk cursor that SnapshotChunk did
// not produce.
var ErrBadCursor = errors.New("store: malformed snapshot cursor")

// SnapshotEntry is a piece of one account of a snapshot, as shipped to a
// bootstrapping node: the account's header (Account set; its first entry) and
// a run of its storage slots. An account with more storage than fits in a chunk
// is split over several entries, each in its own chunk; the entries after the
// first have Account unset and carry storage only.
type SnapshotEntry struct {
	Address common.Address
	// Account is set when the entry carries the account's header (Nonce,
	// Balance, CodeHash and Code).
	Account  bool
	Nonce    uint64
	Balance  *uint256.Int
	CodeHash common.Hash
	// Code is the account's code. It may be left out when an earlier entry of
	// the same chunk already carried the code of CodeHash.
	Code []byte
	// Storage is a run of the account's slots in ascending key order.
	Storage []SlotEntry
}

// SlotEntry is a storage slot of a snapshot: its value is stored and shipped
// with leading zeroes trimmed.
type SlotEntry struct {
	Key   common.Hash
	Value []byte
}

// Snapshot chunk cursors: a version byte, the address of the next account, and
// for a cursor inside an account's storage, the next slot key. Positions order
// like the cursors' bytes: an account's header comes before its storage, which
// comes before the next account.
const (
	cursorVersion    = 1
	cursorAccountLen = 1 + common.AddressLength
	cursorSlotLen    = cursorAccountLen + common.HashLength
)

// Approximate encoded sizes, for cutting chunks.
const (
	entryOverhead = 8 + common.AddressLength + 1 + 9 + 33 + 33 // list headers, address, flag, nonce, balance, code hash
	slotOverhead  = 3 + common.HashLength + 1
)

// DecodeSnapshotCursor splits a cursor into its account and, for a cursor
// inside the account's storage, slot key (slot false otherwise). A nil cursor
// is the start of the snapshot.
func DecodeSnapshotCursor(cursor []byte) (addr common.Address, key common.Hash, slot bool, err error) {
	if cursor == nil {
		return addr, key, false, nil
	}
	if (len(cursor) != cursorAccountLen && len(cursor) != cursorSlotLen) || cursor[0] != cursorVersion {
		return addr, key, false, fmt.Errorf("%w: %x", ErrBadCursor, cursor)
	}
	addr = common.BytesToAddress(cursor[1:cursorAccountLen])
	if len(cursor) == cursorSlotLen {
		return addr, common.BytesToHash(cursor[cursorAccountLen:]), true, nil
	}
	return addr, key, false, nil
}

func accountCursor(addr common.Address) []byte {
	return append([]byte{cursorVersion}, addr[:]...)
}

func slotCursor(addr common.Address, key []byte) []byte {
	return append(accountCursor(addr), key...)
}

// SnapshotChunk reads the complete snapshot id from cursor (nil: the start):
// entries of about maxBytes in all (at least one account header or slot, so
// that every call makes progress), and the cursor of what follows, nil when
// the snapshot ends with this chunk. It reads from a pebble snapshot of the
// store: writers are not blocked, and a snapshot that is no longer listed (it
// rotated out meanwhile) yields an error wrapping ErrNotFound rather than
// partial data. A cursor SnapshotChunk did not produce yields ErrBadCursor.
func (s *Store) SnapshotChunk(id uint64, cursor []byte, maxBytes int) (entries []SnapshotEntry, next []byte, err error) {
	addr, from, inStorage, err := DecodeSnapshotCursor(cursor)
	if err != nil {
		return nil, nil, err
	}
	view := s.db.NewSnapshot()
	defer view.Close()
	metas, err := snapshotList(view)
	if err != nil {
		return nil, nil, err
	}
	listed := false
	for _, m := range metas {
		listed = listed || m.ID == id
	}
	if !listed {
		return nil, nil, fmt.Errorf("snapshot %d: %w", id, ErrNotFound)
	}

	accPrefix := snapPrefix(id, 'a')
	accIt, err := view.NewIter(&pebble.IterOptions{LowerBound: accPrefix, UpperBound: snapPrefix(id, 'b')})
	if err != nil {
		return nil, nil, err
	}
	defer accIt.Close()
	slotPrefix := snapPrefix(id, 's')
	slotIt, err := view.NewIter(&pebble.IterOptions{LowerBound: slotPrefix, UpperBound: snapPrefix(id, 't')})
	if err != nil {
		return nil, nil, err
	}
	defer slotIt.Close()

	size := 0
	full := func(n int) bool { return size > 0 && size+n > maxBytes }
	codeSent := make(map[common.Hash]bool)
	// storage appends addr's slots from key from (nil: the first) to e until
	// the chunk is full; it returns the cursor to continue from, or nil once
	// the account's storage is complete.
	storage := func(e *SnapshotEntry, from []byte) ([]byte, error) {
		prefix := append(common.CopyBytes(slotPrefix), e.Address[:]...)
		for ok := slotIt.SeekGE(append(common.CopyBytes(prefix), from...)); ok; ok = slotIt.Next() {
			k := slotIt.Key()
			if !bytes.HasPrefix(k, prefix) {
				break
			}
			if len(k) != len(prefix)+common.HashLength || len(slotIt.Value()) > common.HashLength {
				return nil, fmt.Errorf("snapshot %d: malformed storage entry %x", id, k)
			}
			n := slotOverhead + len(slotIt.Value())
			if full(n) {
				return slotCursor(e.Address, k[len(prefix):]), nil
			}
			size += n
			e.Storage = append(e.Storage, SlotEntry{Key: common.BytesToHash(k[len(prefix):]), Value: common.CopyBytes(slotIt.Value())})
		}
		return nil, slotIt.Error()
	}
	// flush adds e when it carries anything.
	flush := func(e *SnapshotEntry) {
		if e.Account || len(e.Storage) > 0 {
			entries = append(entries, *e)
		}
	}

	start := append(common.CopyBytes(accPrefix), addr[:]...)
	if inStorage {
		// The account's header went out with an earlier chunk.
		e := SnapshotEntry{Address: addr}
		next, err := storage(&e, from[:])
		flush(&e)
		if err != nil || next != nil {
			return entries, next, err
		}
		start = append(start, 0) // the next account
	}
	for ok := accIt.SeekGE(start); ok; ok = accIt.Next() {
		k := accIt.Key()
		if len(k) != len(accPrefix)+common.AddressLength {
			return nil, nil, fmt.Errorf("snapshot %d: malformed account key %x", id, k)
		}
		e := SnapshotEntry{Address: common.BytesToAddress(k[len(accPrefix):]), Account: true}
		var enc snapAccountRLP
		if err := rlp.DecodeBytes(accIt.Value(), &enc); err != nil {
			return nil, nil, fmt.Errorf("snapshot %d: account %x: %w", id, e.Address, err)
		}
		e.Nonce, e.Balance, e.CodeHash = enc.Nonce, enc.Balance, enc.CodeHash
		if e.Balance == nil {
			e.Balance = new(uint256.Int)
		}
		if hasCode(e.CodeHash) && !codeSent[e.CodeHash] {
			code, err := readValue(view, append(snapPrefix(id, 'c'), e.CodeHash[:]...))
			if err != nil {
				return nil, nil, fmt.Errorf("snapshot %d: code %s: %w", id, e.CodeHash, err)
			}
			e.Code = code
		}
		n := entryOverhead + len(e.Code)
		if full(n) {
			return entries, accountCursor(e.Address), nil
		}
		size += n
		if e.Code != nil {
			codeSent[e.CodeHash] = true
		}
		next, err := storage(&e, nil)
		flush(&e)
		if err != nil || next != nil {
			return entries, next, err
		}
	}
	return entries, nil, accIt.Error()
}

func hasCode(hash common.Hash) bool {
	return hash != (common.Hash{}) && hash != types.EmptyCodeHash
}

func readValue(r pebble.Reader, k []byte) ([]byte, error) {
	v, closer, err := r.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	out := common.CopyBytes(v)
	closer.Close()
	return out, nil
}

// PutSnapshotEntries writes entries into the key space of snapshot id, with
// progress as the bootstrap progress record (nil: left as it is), in one synced
// batch: after a crash the store holds exactly the chunks whose progress was
// recorded. The snapshot stays unlisted until CompleteSnapshot or
// CompleteBootstrap. Code must match its hash, and an account with code must
// carry it unless an earlier entry of the same call did or the store holds it.
func (s *Store) PutSnapshotEntries(id uint64, entries []SnapshotEntry, progress []byte) error {
	b := s.db.NewBatch()
	defer b.Close()
	codes := make(map[common.Hash]bool)
	for i := range entries {
		e := &entries[i]
		if e.Account {
			bal := e.Balance
			if bal == nil {
				bal = new(uint256.Int)
			}
			enc, err := rlp.EncodeToBytes(&snapAccountRLP{Nonce: e.Nonce, Balance: bal, CodeHash: e.CodeHash})
			if err != nil {
				return err
			}
			if err := b.Set(append(snapPrefix(id, 'a'), e.Address[:]...), enc, nil); err != nil {
				return err
			}
			switch {
			case len(e.Code) > 0:
				if crypto.Keccak256Hash(e.Code) != e.CodeHash {
					return fmt.Errorf("snapshot %d: account %s: code does not match its hash %s", id, e.Address, e.CodeHash)
				}
				if !codes[e.CodeHash] {
					if err := b.Set(append(snapPrefix(id, 'c'), e.CodeHash[:]...), e.Code, nil); err != nil {
						return err
					}
					codes[e.CodeHash] = true
				}
			case hasCode(e.CodeHash) && !codes[e.CodeHash]:
				if _, err := s.get(append(snapPrefix(id, 'c'), e.CodeHash[:]...)); err != nil {
					return fmt.Errorf("snapshot %d: account %s: code %s: %w", id, e.Address, e.CodeHash, err)
				}
				codes[e.CodeHash] = true
			}
		} else if len(e.Code) > 0 {
			return fmt.Errorf("snapshot %d: account %s: code in a storage-only entry", id, e.Address)
		}
		prefix := append(snapPrefix(id, 's'), e.Address[:]...)
		for _, sl := range e.Storage {
			if len(sl.Value) > common.HashLength {
				return fmt.Errorf("snapshot %d: account %s: slot %s: value of %d bytes", id, e.Address, sl.Key, len(sl.Value))
			}
			k := append(common.CopyBytes(prefix), sl.Key[:]...)
			if err := b.Set(k, sl.Value, nil); err != nil {
				return err
			}
		}
	}
	if progress != nil {
		if err := b.Set(bootstrapKey, progress, nil); err != nil {
			return err
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("snapshot %d: write entries: %w", id, err)
	}
	return nil
}

// bootstrapKey holds the bootstrap progress record.
var bootstrapKey = []byte("b")

// BootstrapProgress returns the progress record of an unfinished bootstrap, or
// ErrNotFound when none is recorded.
func (s *Store) BootstrapProgress() ([]byte, error) { return s.get(bootstrapKey) }

// ClearBootstrapProgress deletes the bootstrap progress record (synced).
func (s *Store) ClearBootstrapProgress() error { return s.db.Delete(bootstrapKey, pebble.Sync) }

// DeleteSnapshotData deletes the data of snapshot id, which must not be listed
// as complete: the leftovers of a bootstrap that cannot be resumed.
func (s *Store) DeleteSnapshotData(id uint64) error {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	metas, err := s.Snapshots()
	if err != nil {
		return err
	}
	for _, m := range metas {
		if m.ID == id {
			return fmt.Errorf("snapshot %d is complete; not deleting it", id)
		}
	}
	return s.db.DeleteRange(key('s', u64(id)), key('s', u64(id+1)), pebble.Sync)
}

// CompleteBootstrap ends a bootstrap in one synced batch: it lists the snapshot
// written with PutSnapshotEntries as complete (as CompleteSnapshot does),
// records the genesis JSON and deletes the progress record. Until it returns,
// the store holds no genesis, so a node does not start from it, and the
// bootstrap can resume; once it has, the store holds a chain. The block records
// a node needs to start (PutBlock, then Sync) must be written before.
func (s *Store) CompleteBootstrap(meta SnapshotMeta, genesis []byte) error {
	return s.listSnapshot(meta, func(b *pebble.Batch) error {
		if err := b.Set([]byte("g"), genesis, nil); err != nil {
			return err
		}
		return b.Delete(bootstrapKey, nil)
	})
}

// snapshotList reads the snapshot list from r.
func snapshotList(r pebble.Reader) ([]SnapshotMeta, error) {
	v, err := readValue(r, []byte("S"))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var metas []SnapshotMeta
	if err := rlp.DecodeBytes(v, &metas); err != nil {
		return nil, fmt.Errorf("snapshot list: %w", err)
	}
	return metas, nil
}

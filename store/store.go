// Package store is Kestrel's durable log on pebble: mini-blocks (appended with one
// synced write each, before anything about them leaves the process), sealed block
// headers, the transaction index and periodic state snapshots.
//
// Key layout (all integers big-endian):
//
//	"g"                     genesis JSON
//	"m" index(8)            mini-block (chain.MiniBlock binary)
//	"h" number(8)           sealed block record
//	"H" hash(32)            block number of a sealed block hash
//	"t" txhash(32)          mini-block index(8) + position(4)
//	"S"                     snapshot list (newest last)
//	"s" id(8) kind(1) ...   snapshot data: 'a' addr -> account, 's' addr key -> value, 'c' hash -> code
//	"b"                     bootstrap progress of a snapshot being downloaded (opaque to the store)
package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/kestrel-l2/kestrel/core/chain"
)

// ErrNotFound is returned for a key the store does not hold.
var ErrNotFound = errors.New("not found")

// Store is the durable log. Its methods are safe for concurrent use.
type Store struct {
	db *pebble.DB
	// snapMu serialises updates of the snapshot list (a read-modify-write).
	snapMu sync.Mutex
}

// Options tune pebble.
type Options struct {
	// CacheBytes is pebble's block cache size.
	CacheBytes int64
	// Logger receives pebble's own log lines (nil: discarded).
	Logger *slog.Logger
}

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Infof(format string, args ...any)  { a.l.Debug(fmt.Sprintf(format, args...)) }
func (a slogAdapter) Errorf(format string, args ...any) { a.l.Error(fmt.Sprintf(format, args...)) }
func (a slogAdapter) Fatalf(format string, args ...any) {
	a.l.Error(fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...))
}

// Open opens (creating if needed) the store in dir.
func Open(dir string, o Options) (*Store, error) {
	// A large memtable flushes the append-only log less often, which keeps the
	// background writes that delay WAL fsyncs rarer.
	opts := &pebble.Options{MemTableSize: 64 << 20}
	if o.CacheBytes > 0 {
		c := pebble.NewCache(o.CacheBytes)
		defer c.Unref()
		opts.Cache = c
	}
	if o.Logger != nil {
		opts.Logger = slogAdapter{o.Logger}
	} else {
		opts.Logger = slogAdapter{slog.New(slog.NewTextHandler(io.Discard, nil))}
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open pebble at %s: %w", dir, err)
	}
	return &Store{db: db}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

func key(prefix byte, parts ...[]byte) []byte {
	k := []byte{prefix}
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func (s *Store) get(k []byte) ([]byte, error) { return readValue(s.db, k) }

// Genesis returns the stored genesis JSON, or ErrNotFound for a new store.
func (s *Store) Genesis() ([]byte, error) { return s.get([]byte("g")) }

// PutGenesis records the genesis JSON (synced).
func (s *Store) PutGenesis(data []byte) error { return s.db.Set([]byte("g"), data, pebble.Sync) }

// AppendMiniBlock durably writes a mini-block and its transaction index in one
// synced batch. When it returns nil the mini-block survives a crash.
func (s *Store) AppendMiniBlock(mb *chain.MiniBlock, raw []byte) error {
	return s.appendMiniBlock(mb, raw, pebble.Sync)
}

// AppendMiniBlockNoSync writes a mini-block like AppendMiniBlock without waiting
// for the disk: a node that can fetch the mini-block again (a replica) makes its
// log durable at block boundaries with Sync instead.
func (s *Store) AppendMiniBlockNoSync(mb *chain.MiniBlock, raw []byte) error {
	return s.appendMiniBlock(mb, raw, pebble.NoSync)
}

func (s *Store) appendMiniBlock(mb *chain.MiniBlock, raw []byte, opts *pebble.WriteOptions) error {
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Set(key('m', u64(mb.Index)), raw, nil); err != nil {
		return err
	}
	for i, tx := range mb.Txs {
		h := tx.Hash()
		loc := binary.BigEndian.AppendUint32(u64(mb.Index), uint32(i))
		loc = binary.BigEndian.AppendUint64(loc, mb.Env.Number)
		if err := b.Set(key('t', h[:]), loc, nil); err != nil {
			return err
		}
	}
	return b.Commit(opts)
}

// TruncateMiniBlocks deletes every mini-block after index after, with its
// transaction index entries, in one synced batch. A replica uses it to drop
// mini-blocks of a block it has not verified yet.
func (s *Store) TruncateMiniBlocks(after uint64) (int, error) {
	b := s.db.NewBatch()
	defer b.Close()
	n := 0
	err := s.MiniBlocks(after+1, func(mb *chain.MiniBlock) error {
		for _, tx := range mb.Txs {
			h := tx.Hash()
			if err := b.Delete(key('t', h[:]), nil); err != nil {
				return err
			}
		}
		n++
		return b.Delete(key('m', u64(mb.Index)), nil)
	})
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	return n, b.Commit(pebble.Sync)
}

// MiniBlock reads a mini-block.
func (s *Store) MiniBlock(index uint64) (*chain.MiniBlock, error) {
	raw, err := s.get(key('m', u64(index)))
	if err != nil {
		return nil, err
	}
	mb := new(chain.MiniBlock)
	if err := mb.UnmarshalBinary(raw); err != nil {
		return nil, fmt.Errorf("mini-block %d: %w", index, err)
	}
	return mb, nil
}

// LastMiniBlock is the highest stored mini-block index (0 when none).
func (s *Store) LastMiniBlock() (uint64, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte("m"), UpperBound: []byte("n")})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, it.Error()
	}
	k := it.Key()
	if len(k) != 9 {
		return 0, fmt.Errorf("malformed mini-block key %x", k)
	}
	return binary.BigEndian.Uint64(k[1:]), nil
}

// MiniBlocks calls fn for each stored mini-block with index >= from, in order.
func (s *Store) MiniBlocks(from uint64, fn func(*chain.MiniBlock) error) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: key('m', u64(from)), UpperBound: []byte("n")})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		mb := new(chain.MiniBlock)
		if err := mb.UnmarshalBinary(it.Value()); err != nil {
			return fmt.Errorf("mini-block at key %x: %w", it.Key(), err)
		}
		if err := fn(mb); err != nil {
			return err
		}
	}
	return it.Error()
}

// TxLocation returns the mini-block index and position of a transaction.
func (s *Store) TxLocation(hash common.Hash) (uint64, uint32, error) {
	loc, err := s.TxLocationFull(hash)
	return loc.Mini, loc.Pos, err
}

// TxLoc is a transaction's place in the log.
type TxLoc struct {
	Mini  uint64 // mini-block index
	Pos   uint32 // position in the mini-block
	Block uint64 // block number; valid when HasBlock
	// HasBlock is false for entries written before the index carried block
	// numbers (12-byte entries): read the mini-block for its number.
	HasBlock bool
}

// TxLocationFull returns where a transaction is, with its block number.
func (s *Store) TxLocationFull(hash common.Hash) (TxLoc, error) {
	v, err := s.get(key('t', hash[:]))
	if err != nil {
		return TxLoc{}, err
	}
	if len(v) != 12 && len(v) != 20 {
		return TxLoc{}, fmt.Errorf("malformed tx index entry for %s", hash)
	}
	loc := TxLoc{Mini: binary.BigEndian.Uint64(v), Pos: binary.BigEndian.Uint32(v[8:])}
	if len(v) == 20 {
		loc.Block, loc.HasBlock = binary.BigEndian.Uint64(v[12:]), true
	}
	return loc, nil
}

// BlockRecord is a sealed block as stored: its signed header and the range of
// mini-blocks it holds.
type BlockRecord struct {
	Header    *types.Header
	Signature []byte
	FirstMini uint64 // 0 with LastMini 0: no mini-blocks (genesis)
	LastMini  uint64
}

// PutBlock stores a sealed block. It is not synced: a lost block record is
// derived again from the mini-blocks on restart.
func (s *Store) PutBlock(r *BlockRecord) error {
	enc, err := rlp.EncodeToBytes(r)
	if err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	hash := r.Header.Hash()
	if err := b.Set(key('h', u64(r.Header.Number.Uint64())), enc, nil); err != nil {
		return err
	}
	if err := b.Set(key('H', hash[:]), u64(r.Header.Number.Uint64()), nil); err != nil {
		return err
	}
	return b.Commit(pebble.NoSync)
}

// Block reads a sealed block record.
func (s *Store) Block(number uint64) (*BlockRecord, error) {
	v, err := s.get(key('h', u64(number)))
	if err != nil {
		return nil, err
	}
	r := new(BlockRecord)
	if err := rlp.DecodeBytes(v, r); err != nil {
		return nil, fmt.Errorf("block record %d: %w", number, err)
	}
	return r, nil
}

// BlockNumber returns the number of a sealed block hash.
func (s *Store) BlockNumber(hash common.Hash) (uint64, error) {
	v, err := s.get(key('H', hash[:]))
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("malformed block hash index for %s", hash)
	}
	return binary.BigEndian.Uint64(v), nil
}

// LastBlock is the highest sealed block number stored, and false when none.
func (s *Store) LastBlock() (uint64, bool, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte("h"), UpperBound: []byte("i")})
	if err != nil {
		return 0, false, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, false, it.Error()
	}
	k := it.Key()
	if len(k) != 9 {
		return 0, false, fmt.Errorf("malformed block key %x", k)
	}
	return binary.BigEndian.Uint64(k[1:]), true, nil
}

// Sync flushes the write-ahead log, making unsynced writes (block records) durable.
func (s *Store) Sync() error { return s.db.LogData(nil, pebble.Sync) }

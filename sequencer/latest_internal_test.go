package sequencer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/state"
	"github.com/kestrel-l2/kestrel/rpc"
)

// undoHarness drives a real sequencer's loop functions by hand: random
// mini-block diffs go through applyMiniBlock and the real sealer goroutine,
// blocks close with closeBlock. The test goroutine is the loop.
type undoHarness struct {
	t     *testing.T
	s     *Sequencer
	rnd   *rand.Rand
	addrs []common.Address
	slots []common.Hash
	codes [][]byte
}

func newUndoHarness(t *testing.T, seed int64) *undoHarness {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.RPC.Addr = "127.0.0.1:0"
	cfg.SnapshotEvery = 0
	cfg.RetainRoots = 1024
	s, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s.wg.Add(1)
	go s.sealLoop()
	t.Cleanup(func() {
		close(s.sealEvents) // as the loop does when it ends
		if err := s.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	h := &undoHarness{t: t, s: s, rnd: rand.New(rand.NewSource(seed))}
	// A small universe, so that keys are written again and again; one dev
	// account from the genesis, and one address nothing ever writes.
	h.addrs = append(h.addrs, chain.DevAccounts()[0].Address, common.HexToAddress("0xdead"))
	for i := 0; i < 10; i++ {
		h.addrs = append(h.addrs, common.BigToAddress(uint256.NewInt(uint64(0x1000+i)).ToBig()))
	}
	for i := 0; i < 6; i++ {
		h.slots = append(h.slots, common.BigToHash(uint256.NewInt(uint64(i)).ToBig()))
	}
	for i := 0; i < 3; i++ {
		h.codes = append(h.codes, []byte{0x60, byte(i), 0x5f, 0x55, 0x00})
	}
	return h
}

// randomDiff creates, deletes and changes accounts, sets and clears slots and
// resets storage.
func (h *undoHarness) randomDiff() *chain.StateDiff {
	d := &chain.StateDiff{}
	picked := map[common.Address]bool{}
	for n := 1 + h.rnd.Intn(5); n > 0; n-- {
		addr := h.addrs[h.rnd.Intn(len(h.addrs))]
		if addr == common.HexToAddress("0xdead") || picked[addr] {
			continue
		}
		picked[addr] = true
		ad := chain.AccountDiff{Address: addr}
		if h.rnd.Intn(8) == 0 {
			ad.Deleted = true
			d.Accounts = append(d.Accounts, ad)
			continue
		}
		ad.Nonce = uint64(h.rnd.Intn(4))
		ad.Balance.SetUint64(uint64(h.rnd.Intn(3)) * 1_000_000_007)
		ad.CodeHash = types.EmptyCodeHash
		if c := h.rnd.Intn(len(h.codes) + 2); c < len(h.codes) {
			ad.Code = h.codes[c]
			ad.CodeHash = crypto.Keccak256Hash(ad.Code)
		}
		ad.StorageReset = h.rnd.Intn(8) == 0
		for _, k := range h.rnd.Perm(len(h.slots))[:h.rnd.Intn(4)] {
			var v common.Hash
			if h.rnd.Intn(3) > 0 {
				v = common.BigToHash(uint256.NewInt(uint64(1 + h.rnd.Intn(5))).ToBig())
			}
			ad.Storage = append(ad.Storage, chain.SlotDiff{Key: h.slots[k], Value: v})
		}
		d.Accounts = append(d.Accounts, ad)
	}
	d.Sort()
	return d
}

// mini runs one mini-block with diff d as the loop does once it is durable.
func (h *undoHarness) mini(d *chain.StateDiff) {
	s := h.s
	ob := s.open
	mb := &chain.MiniBlock{Index: s.lastIndex + 1, IndexInBlock: ob.miniCount, TimestampMs: nowMs(), Env: ob.env,
		ParentHashCall: ob.miniCount == 0, Diff: d}
	s.applyMiniBlock(mb)
	if !s.toSealer(sealEvent{mini: mb}) {
		h.t.Fatal("sealer gone")
	}
}

func (h *undoHarness) close() {
	if err := h.s.closeBlock(); err != nil {
		h.t.Fatal(err)
	}
}

// compare checks every account, slot and code of the universe read through r
// against the trie of block n. It returns a description of the first
// difference.
func (h *undoHarness) compare(n uint64, r state.Reader) error {
	sb := h.s.index.block(n)
	if sb == nil {
		return fmt.Errorf("block %d not in the index", n)
	}
	tr, err := h.s.merkle.Reader(sb.header.Root, h.s.code)
	if err != nil {
		return fmt.Errorf("trie of block %d: %w", n, err)
	}
	for _, addr := range h.addrs {
		a1, ok1 := r.Account(addr)
		a2, ok2 := tr.Account(addr)
		if ok1 != ok2 || a1 != a2 {
			return fmt.Errorf("block %d account %s: %v %v, trie %v %v", n, addr, a1, ok1, a2, ok2)
		}
		if !bytes.Equal(r.Code(a1.CodeHash), tr.Code(a2.CodeHash)) {
			return fmt.Errorf("block %d code of %s differs", n, addr)
		}
		if hs1, hs2 := r.HasStorage(addr), tr.HasStorage(addr); hs1 != hs2 {
			return fmt.Errorf("block %d HasStorage(%s): %v, trie %v", n, addr, hs1, hs2)
		}
		for _, k := range h.slots {
			if v1, v2 := r.Storage(addr, k), tr.Storage(addr, k); v1 != v2 {
				return fmt.Errorf("block %d slot %s/%s: %s, trie %s", n, addr, k, v1, v2)
			}
		}
	}
	return nil
}

// heldReader is a reader kept across mini-blocks, as a long eth_call does.
type heldReader struct {
	n       uint64
	r       state.Reader
	release func()
	left    int
}

// TestUndoLatestReaderMatchesTrie is a model-based test of the undo logs: at
// every step, reads at the latest sealed block (and at any block that still has
// a log) through the flat state and undo log are the trie's, including
// through readers held while later mini-blocks commit and logs are pruned.
func TestUndoLatestReaderMatchesTrie(t *testing.T) {
	seeds := []int64{1, 2, 3, 4}
	blocks := 40
	if testing.Short() {
		seeds, blocks = seeds[:2], 25
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			h := newUndoHarness(t, seed)
			s := h.s
			var held []*heldReader
			undoReads, trieFallbacks := 0, 0
			check := func() {
				t.Helper()
				head := s.index.headNumber()
				for n := head; n+2 >= head && n <= head; n-- {
					r, _, release, err := s.reader(rpc.BlockRef{Tag: rpc.TagNumber, Number: n})
					if err != nil {
						t.Fatal(err)
					}
					if err := h.compare(n, r); err != nil {
						t.Fatal(err)
					}
					if lr, ok := r.(*latestReader); ok {
						undoReads++
						if lr.fallback != nil {
							trieFallbacks++
						}
						if h.rnd.Intn(4) == 0 {
							held = append(held, &heldReader{n: n, r: r, release: release, left: 1 + h.rnd.Intn(12)})
							continue
						}
					}
					release()
					if n == 0 {
						break
					}
				}
				// "latest" is the head at the time it resolves.
				r, env, release, err := s.reader(rpc.BlockRef{Tag: rpc.TagLatest})
				if err != nil {
					t.Fatal(err)
				}
				if err := h.compare(env.Number, r); err != nil {
					t.Fatal(err)
				}
				release()
				keep := held[:0]
				for _, hr := range held {
					if err := h.compare(hr.n, hr.r); err != nil {
						t.Fatalf("held reader: %v", err)
					}
					if hr.left--; hr.left <= 0 {
						hr.release()
						continue
					}
					keep = append(keep, hr)
				}
				held = keep
			}
			for b := 0; b < blocks; b++ {
				for m := 1 + h.rnd.Intn(6); m > 0; m-- {
					h.mini(h.randomDiff())
					check()
				}
				h.close()
				if h.rnd.Intn(2) == 0 {
					// Let the sealer catch up; otherwise the next block starts while
					// this one is sealing.
					if _, ok := s.index.waitSealed(s.open.env.Number-1, s.stop); !ok {
						t.Fatal("not sealed")
					}
				}
				check()
				if n := len(s.undo.logs()); n > maxUndoLogs {
					t.Fatalf("%d active undo logs", n)
				}
			}
			for _, hr := range held {
				hr.release()
			}
			if undoReads == 0 || trieFallbacks == 0 {
				t.Fatalf("undo readers %d, of which with a trie fallback %d: the test does not reach them", undoReads, trieFallbacks)
			}
			t.Logf("undo readers %d, with trie fallback %d", undoReads, trieFallbacks)
		})
	}
}

// TestUndoLatestReaderConcurrent reads at the latest sealed block from many
// goroutines while the loop commits mini-blocks, closes blocks and the sealer
// seals and prunes; run it under -race.
func TestUndoLatestReaderConcurrent(t *testing.T) {
	h := newUndoHarness(t, 7)
	s := h.s
	blocks := 30
	if testing.Short() {
		blocks = 15
	}
	var (
		done     atomic.Bool
		wg       sync.WaitGroup
		undoHits atomic.Int64
		errOnce  sync.Once
		firstErr error
	)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !done.Load() {
				n := s.index.headNumber()
				r, _, release, err := s.reader(rpc.BlockRef{Tag: rpc.TagNumber, Number: n})
				if err == nil {
					if _, ok := r.(*latestReader); ok {
						undoHits.Add(1)
					}
					err = h.compare(n, r)
					release()
				}
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	// The loop: its own random source (h.rnd is the loop's; compare does not use it).
	for b := 0; b < blocks; b++ {
		for m := 1 + h.rnd.Intn(6); m > 0; m-- {
			h.mini(h.randomDiff())
			time.Sleep(time.Millisecond)
		}
		h.close()
	}
	if _, ok := s.index.waitSealed(s.open.env.Number-1, s.stop); !ok {
		t.Fatal("not sealed")
	}
	time.Sleep(20 * time.Millisecond)
	done.Store(true)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	if undoHits.Load() == 0 {
		t.Fatal("no read went through an undo log")
	}
}

// BenchmarkUndoRecord measures the loop's cost of keeping the undo logs for
// mini-blocks of 50 ERC-20 transfers each (50 senders, the coinbase and the
// token with two slots per transfer) on a state of 100,000 accounts: commit
// alone, and record then commit as applyMiniBlock does.
func BenchmarkUndoRecord(b *testing.B) {
	const senders = 100_000
	token, coinbase := common.HexToAddress("0x70ce"), common.HexToAddress("0xc0b5")
	base := func() *state.State {
		st := state.New()
		tokenStorage := make(map[common.Hash]common.Hash)
		for i := 0; i < senders; i++ {
			addr := common.BigToAddress(uint256.NewInt(uint64(0x10000 + i)).ToBig())
			st.Restore(addr, state.Account{Nonce: 1, Balance: *uint256.NewInt(1e18)}, nil, nil)
			tokenStorage[common.BigToHash(uint256.NewInt(uint64(i)).ToBig())] = common.Hash{31: 1}
		}
		st.Restore(token, state.Account{}, []byte{0x00}, tokenStorage)
		st.Restore(coinbase, state.Account{}, nil, nil)
		return st
	}
	diffs := make([]*chain.StateDiff, 1000)
	for m := range diffs {
		d := &chain.StateDiff{}
		ta := chain.AccountDiff{Address: token, CodeHash: crypto.Keccak256Hash([]byte{0x00})}
		for j := 0; j < 50; j++ {
			i := (m*50 + j) % senders
			addr := common.BigToAddress(uint256.NewInt(uint64(0x10000 + i)).ToBig())
			ad := chain.AccountDiff{Address: addr, Nonce: 2, CodeHash: types.EmptyCodeHash}
			ad.Balance.SetUint64(1e18 - 1e15)
			d.Accounts = append(d.Accounts, ad)
			ta.Storage = append(ta.Storage,
				chain.SlotDiff{Key: common.BigToHash(uint256.NewInt(uint64(i)).ToBig()), Value: common.Hash{31: 2}},
				chain.SlotDiff{Key: common.BigToHash(uint256.NewInt(uint64(senders + i)).ToBig()), Value: common.Hash{31: 3}})
		}
		d.Accounts = append(d.Accounts, ta, chain.AccountDiff{Address: coinbase, CodeHash: types.EmptyCodeHash})
		d.Sort()
		diffs[m] = d
	}
	// Both commit the same diffs from the same state; the first also records,
	// with a new log every 100 mini-blocks as at 10 ms / 1 s.
	for _, withUndo := range []bool{false, true} {
		name := "commit"
		if withUndo {
			name = "record+commit"
		}
		b.Run(name, func(b *testing.B) {
			var u undoSet
			st := base()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				d := diffs[i%len(diffs)]
				if withUndo {
					if i%100 == 0 {
						u.open(uint64(i / 100))
						u.prune(uint64(i / 100))
					}
					u.record(st, d)
				}
				st.Commit(st.HeadIndex()+1, d)
			}
		})
	}
}

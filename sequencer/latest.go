package sequencer

import (
	"sync"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/common"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/state"
)

// Reads at a recent sealed block come from the flat state, which only holds the
// newest mini-block, plus undo logs that keep what later mini-blocks overwrote.
// Only what the logs cannot answer walks the trie.
//
// Block b's log holds the value at b's end of every account and slot that the
// mini-blocks of the next block change (the first change of each wins); once
// that block closes, b's log is complete and the next log takes the records. So
// the value at b's end of a key is in the oldest of the logs b, b+1, ... that
// has it, or, when none has it, in the flat state: nothing changed it since.
//
// Why a reader sees block b exactly: the loop records into the newest log before
// it commits the mini-block that changes a key (applyMiniBlock), and b's log
// becomes the newest when the state head is b's last mini-block (closeBlock). A
// reader takes the logs from b's on and pins a View while holding undoSet.mu,
// under which logs are added and pruned. Every mini-block up to the view's index
// was therefore recorded, before its commit, in one of the reader's logs: a key
// missing from them has at the view the value it had at b's end. Mini-blocks
// committed after the pin may add keys to the reader's newest log; the value
// recorded is still the one at that log's block's end, which is b's end, as no
// older log has the key.

// Undo flags of an address, for what a log cannot hold slot by slot.
const (
	// undoSlotsTouched: some slot of the address changed in the log's period,
	// so whether it has any non-zero slot must be read from the trie.
	undoSlotsTouched uint8 = 1 << iota
	// undoStorageGone: the storage was reset (or the account deleted) in the
	// log's period; the cleared slots are not listed, so storage reads not
	// answered by a slot recorded before go to the trie.
	undoStorageGone
)

type undoAccount struct {
	acct   state.Account
	exists bool
}

type undoSlot struct {
	addr common.Address
	key  common.Hash
}

// undoLog holds, for one block, the value at the block's end of every account
// and slot that the next block's mini-blocks (the log's period) changed. The loop is its only
// writer, until the next block closes; readers hold mu shared for each lookup.
type undoLog struct {
	block uint64

	mu       sync.RWMutex
	accounts map[common.Address]undoAccount
	slots    map[undoSlot]common.Hash
	flags    map[common.Address]uint8
}

func newUndoLog(block uint64, hint *undoLog) *undoLog {
	l := &undoLog{block: block}
	// Size the maps like the previous block's log so that recording on the loop
	// rarely grows them.
	var na, ns, nf int
	if hint != nil {
		hint.mu.RLock()
		na, ns, nf = len(hint.accounts), len(hint.slots), len(hint.flags)
		hint.mu.RUnlock()
	}
	l.accounts = make(map[common.Address]undoAccount, na)
	l.slots = make(map[undoSlot]common.Hash, ns)
	l.flags = make(map[common.Address]uint8, nf)
	return l
}

// undoSet is the sequencer's undo logs of consecutive blocks, oldest first; the
// loop records into the newest. Adding and pruning take mu exclusively; a
// reader holds it shared from looking its logs up until it has pinned its view
// (see undoReader). The loop loads the set without mu: only the loop adds logs,
// and pruning never removes the newest.
type undoSet struct {
	mu     sync.RWMutex
	active atomic.Pointer[[]*undoLog]
}

func (u *undoSet) logs() []*undoLog {
	if p := u.active.Load(); p != nil {
		return *p
	}
	return nil
}

// maxUndoLogs bounds the logs (their memory, and the chain a reader walks) when
// the sealer falls behind or has stopped: the oldest logs are dropped and reads
// at their blocks walk the trie.
const maxUndoLogs = 4

// open adds the log of block, which becomes the newest: the loop calls it when
// the state head is block's last mini-block, before the next commit.
func (u *undoSet) open(block uint64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	old := u.logs()
	var hint *undoLog
	if len(old) > 0 {
		hint = old[len(old)-1]
	}
	if len(old) >= maxUndoLogs {
		old = old[len(old)-maxUndoLogs+1:]
	}
	next := make([]*undoLog, 0, len(old)+1)
	next = append(next, old...)
	next = append(next, newUndoLog(block, hint))
	u.active.Store(&next)
}

// prune drops the logs of blocks older than head, the newest sealed block:
// "latest" never resolves to them again. The newest log (of the last closed
// block, never older than the sealed head) stays.
func (u *undoSet) prune(head uint64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	old := u.logs()
	n := 0
	for n < len(old) && old[n].block < head {
		n++
	}
	if n == 0 {
		return
	}
	next := make([]*undoLog, len(old)-n)
	copy(next, old[n:])
	u.active.Store(&next)
}

// record adds to the newest log the current value of each account and slot that
// d is about to change and the log does not have yet. st is not yet at d: the
// caller commits d afterwards. Loop goroutine only (it reads st's head).
func (u *undoSet) record(st *state.State, d *chain.StateDiff) {
	logs := u.logs()
	if len(logs) == 0 || d == nil || len(d.Accounts) == 0 {
		return
	}
	l := logs[len(logs)-1]
	head := st.Head()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range d.Accounts {
		a := &d.Accounts[i]
		if _, ok := l.accounts[a.Address]; !ok {
			var cur undoAccount
			cur.acct, cur.exists = head.Account(a.Address)
			l.accounts[a.Address] = cur
		}
		var flag uint8
		if len(a.Storage) > 0 {
			flag |= undoSlotsTouched
		}
		if a.Deleted || a.StorageReset {
			flag |= undoStorageGone
		}
		if flag == 0 {
			continue
		}
		f := l.flags[a.Address]
		if f|flag != f {
			f |= flag
			l.flags[a.Address] = f
		}
		// Once the storage went (in this diff too), the address's later slot
		// changes need no record: reads at the block find the flag first and
		// go to the trie.
		if f&undoStorageGone != 0 {
			continue
		}
		for j := range a.Storage {
			k := undoSlot{a.Address, a.Storage[j].Key}
			if _, ok := l.slots[k]; !ok {
				l.slots[k] = head.Storage(a.Address, k.key)
			}
		}
	}
}

// undoReader returns a reader of the state at the end of sealed block n from the
// flat state and the undo logs, with the block's env and a release function;
// false when n has no log (an older block, a block sealed before a restart, or
// a log already pruned), and the trie must be read.
func (s *Sequencer) undoReader(n uint64) (state.Reader, chain.BlockEnv, func(), bool) {
	var (
		chainLogs []*undoLog
		v         *state.View
	)
	s.undo.mu.RLock()
	for i, l := range s.undo.logs() {
		if l.block == n {
			chainLogs = s.undo.logs()[i:]
			// Pinned under the lock: no log can be added or pruned between the
			// lookup and the pin, so the logs hold every change up to the view.
			v = s.state.View()
			break
		}
	}
	s.undo.mu.RUnlock()
	if chainLogs == nil {
		return nil, chain.BlockEnv{}, nil, false
	}
	sb := s.index.block(n)
	if sb == nil {
		v.Release()
		return nil, chain.BlockEnv{}, nil, false
	}
	r := &latestReader{logs: chainLogs, view: v, root: sb.header.Root, merkle: s.merkle}
	return r, envOf(sb.header), v.Release, true
}

// latestReader reads a sealed block's state from the flat state's view and the
// undo logs from the block's on (oldest first); storage the logs cannot answer
// comes from the block's trie, opened on first need. It is safe for concurrent
// use until the view is released.
type latestReader struct {
	logs   []*undoLog
	view   *state.View
	root   common.Hash
	merkle *state.Merkle

	once     sync.Once
	fallback state.Reader
}

var _ state.Reader = (*latestReader)(nil)

// trie returns the reader of the block's trie. Its root is retained while the
// block is among the newest RetainRoots sealed ones; a reader that outlives that
// reads absent state, as a TrieReader whose root was dropped does.
func (r *latestReader) trie() state.Reader {
	r.once.Do(func() {
		tr, err := r.merkle.Reader(r.root, r.view.Code)
		if err != nil {
			r.fallback = absentState{}
			return
		}
		r.fallback = tr
	})
	return r.fallback
}

// Account implements state.Reader.
func (r *latestReader) Account(addr common.Address) (state.Account, bool) {
	for _, l := range r.logs {
		l.mu.RLock()
		u, ok := l.accounts[addr]
		l.mu.RUnlock()
		if ok {
			return u.acct, u.exists
		}
	}
	return r.view.Account(addr)
}

// Storage implements state.Reader.
func (r *latestReader) Storage(addr common.Address, key common.Hash) common.Hash {
	for _, l := range r.logs {
		l.mu.RLock()
		flags := l.flags[addr]
		var (
			val common.Hash
			ok  bool
		)
		if flags&undoSlotsTouched != 0 {
			val, ok = l.slots[undoSlot{addr, key}]
		}
		l.mu.RUnlock()
		switch {
		case ok:
			// Recorded before any reset in this log's block: the value then.
			return val
		case flags&undoStorageGone != 0:
			return r.trie().Storage(addr, key)
		}
	}
	return r.view.Storage(addr, key)
}

// HasStorage implements state.Reader.
func (r *latestReader) HasStorage(addr common.Address) bool {
	for _, l := range r.logs {
		l.mu.RLock()
		flags := l.flags[addr]
		l.mu.RUnlock()
		if flags != 0 {
			return r.trie().HasStorage(addr)
		}
	}
	return r.view.HasStorage(addr)
}

// Code implements state.Reader. Code is kept by hash and never removed, so the
// view has every code of the block.
func (r *latestReader) Code(hash common.Hash) []byte { return r.view.Code(hash) }

// absentState reads every account and slot as absent.
type absentState struct{}

func (absentState) Account(common.Address) (state.Account, bool)    { return state.Account{}, false }
func (absentState) Storage(common.Address, common.Hash) common.Hash { return common.Hash{} }
func (absentState) Code(common.Hash) []byte                         { return nil }
func (absentState) HasStorage(common.Address) bool                  { return false }

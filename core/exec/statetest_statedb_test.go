package exec_test

// A randomized differential test of Kestrel's vm.StateDB against go-ethereum's
// state.StateDB through the vm.StateDB interface alone: the same random
// operations (balance, nonce, code, storage, transient storage, account and
// contract creation, self-destruct, refunds, access lists, logs, nested
// snapshots and reverts) run on both, every getter is compared after every
// operation, and the state roots are compared at every mini-block boundary.
// Transactions end with Finalise(true) (or with a revert of everything, like a
// rejected transaction), and mini-blocks end with Kestrel's diff committed to
// the flat state and the tries and a new StateDB over the flat state's view or
// the tries, while go-ethereum's StateDB carries on (one block).
//
// Unlike the fixtures, the pre-states include accounts that are empty but have
// storage, so EIP-161 removal of accounts with storage, and their re-creation,
// are exercised; pre-Cancun style self-destruction of any account is exercised
// too, since the interface allows it.

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/rawdb"
	gstate "github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/tests"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/state"
)

func TestStateTestStateDBDifferential(t *testing.T) {
	seeds, ops := 300, 400
	if statetestMode() == "full" {
		seeds, ops = 3000, 600
	}
	failed := 0
	for seed := 0; seed < seeds && failed < 5; seed++ {
		if err := statetestFuzz(uint64(seed), ops); err != nil {
			t.Errorf("seed %d: %v", seed, err)
			failed++
		}
	}
}

type statetestFuzzer struct {
	rng    *rand.Rand
	addrs  []common.Address
	keys   []common.Hash
	vals   []common.Hash
	codes  [][]byte
	rules  params.Rules
	trace  []string
	codeDB map[common.Hash][]byte
}

func (f *statetestFuzzer) addr() common.Address { return f.addrs[f.rng.IntN(len(f.addrs))] }
func (f *statetestFuzzer) key() common.Hash     { return f.keys[f.rng.IntN(len(f.keys))] }
func (f *statetestFuzzer) val() common.Hash     { return f.vals[f.rng.IntN(len(f.vals))] }
func (f *statetestFuzzer) logf(format string, args ...any) {
	f.trace = append(f.trace, fmt.Sprintf(format, args...))
}

func statetestFuzz(seed uint64, ops int) (err error) {
	f := &statetestFuzzer{rng: rand.New(rand.NewPCG(seed, 0x6b657374)), codeDB: make(map[common.Hash][]byte)}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
		if err != nil {
			n := len(f.trace)
			from := max(0, n-40)
			err = fmt.Errorf("%w\nlast operations:\n  %s", err, statetestJoin(f.trace[from:]))
		}
	}()
	for i := 0; i < 8; i++ {
		f.addrs = append(f.addrs, common.BytesToAddress([]byte{0xa0, byte(i)}))
	}
	for i := 0; i < 4; i++ {
		f.keys = append(f.keys, common.BytesToHash([]byte{byte(i + 1)}))
	}
	f.vals = []common.Hash{{}, common.BytesToHash([]byte{1}), common.BytesToHash([]byte{2}), common.BytesToHash([]byte{3})}
	f.codes = [][]byte{nil, {0x60, 0x00, 0x00}, {0x60, 0x01, 0x00}, types.AddressToDelegation(f.addrs[1])}
	for _, c := range f.codes {
		if len(c) > 0 {
			f.codeDB[crypto.Keccak256Hash(c)] = c
		}
	}
	config := tests.Forks["Prague"]
	f.rules = config.Rules(new(big.Int), true, 0)

	// Pre-state.
	alloc := make(types.GenesisAlloc)
	for _, a := range f.addrs {
		switch f.rng.IntN(6) {
		case 0: // absent
		case 1: // EOA
			alloc[a] = types.Account{Balance: big.NewInt(int64(f.rng.IntN(3) * 100)), Nonce: uint64(f.rng.IntN(2))}
		case 2, 3: // contract with storage
			st := map[common.Hash]common.Hash{}
			for _, k := range f.keys {
				if v := f.val(); v != (common.Hash{}) {
					st[k] = v
				}
			}
			alloc[a] = types.Account{Balance: big.NewInt(int64(f.rng.IntN(2) * 100)), Nonce: 1, Code: f.codes[1+f.rng.IntN(2)], Storage: st}
		case 4: // empty account with storage
			alloc[a] = types.Account{Balance: new(big.Int), Storage: map[common.Hash]common.Hash{f.keys[0]: f.vals[1]}}
		case 5: // empty account
			alloc[a] = types.Account{Balance: new(big.Int)}
		}
	}
	gst := tests.MakePreState(rawdb.NewMemoryDatabase(), alloc, false, rawdb.HashScheme)
	defer gst.Close()
	g := gst.StateDB
	flat, pre, err := statetestPreState(alloc)
	if err != nil {
		return err
	}
	merkle := state.NewMerkle(4)
	if _, err := merkle.Apply(1, pre); err != nil {
		return err
	}
	if root, want := merkle.Root(), g.IntermediateRoot(true); root != want {
		return fmt.Errorf("pre-state root %x, want %x", root, want)
	}

	var pinned []*state.View
	defer func() {
		for _, v := range pinned {
			v.Release()
		}
	}()
	newMiniBlock := func() (*state.StateDB, error) {
		switch f.rng.IntN(3) {
		case 0:
			return state.NewStateDB(flat.Head()), nil
		case 1:
			v := flat.View()
			pinned = append(pinned, v)
			if len(pinned) > 3 {
				pinned[0].Release()
				pinned = pinned[1:]
			}
			return state.NewStateDB(v), nil
		default:
			r, err := merkle.Reader(merkle.Root(), func(h common.Hash) []byte { return f.codeDB[h] })
			if err != nil {
				return nil, err
			}
			return state.NewStateDB(r), nil
		}
	}
	k, err := newMiniBlock()
	if err != nil {
		return err
	}
	type snap struct{ k, g int }
	var snaps []snap
	var txBase snap
	txIndex := 0
	startTx := func() {
		txIndex++
		g.SetTxContext(common.BytesToHash([]byte{byte(txIndex >> 8), byte(txIndex)}), txIndex)
		sender, coinbase := f.addr(), f.addr()
		dst := f.addr()
		var list types.AccessList
		if f.rng.IntN(2) == 0 {
			list = types.AccessList{{Address: f.addr(), StorageKeys: []common.Hash{f.key()}}}
		}
		var precompiles []common.Address
		if f.rng.IntN(2) == 0 {
			precompiles = []common.Address{f.addr()}
		}
		f.logf("tx %d: Prepare(sender %x, coinbase %x, dst %x, precompiles %v, list %v)", txIndex, sender[18:], coinbase[18:], dst[18:], precompiles, list)
		k.Prepare(f.rules, sender, coinbase, &dst, precompiles, list)
		g.Prepare(f.rules, sender, coinbase, &dst, precompiles, list)
		snaps = nil
		txBase = snap{k.Snapshot(), g.Snapshot()}
	}
	startTx()
	block := uint64(1)
	for op := 0; op < ops; op++ {
		a := f.addr()
		switch c := f.rng.IntN(100); {
		case c < 10:
			amt := uint256.NewInt(uint64(f.rng.IntN(3) * 50))
			f.logf("AddBalance(%x, %d)", a[18:], amt)
			k.AddBalance(a, amt, tracing.BalanceChangeUnspecified)
			g.AddBalance(a, amt, tracing.BalanceChangeUnspecified)
		case c < 15:
			bal := g.GetBalance(a)
			amt := uint256.NewInt(uint64(f.rng.IntN(3) * 50))
			if bal.Cmp(amt) < 0 {
				amt = bal.Clone()
			}
			f.logf("SubBalance(%x, %d)", a[18:], amt)
			k.SubBalance(a, amt, tracing.BalanceChangeUnspecified)
			g.SubBalance(a, amt, tracing.BalanceChangeUnspecified)
		case c < 20:
			n := uint64(f.rng.IntN(3))
			f.logf("SetNonce(%x, %d)", a[18:], n)
			k.SetNonce(a, n, tracing.NonceChangeUnspecified)
			g.SetNonce(a, n, tracing.NonceChangeUnspecified)
		case c < 25:
			code := f.codes[f.rng.IntN(len(f.codes))]
			// go-ethereum journals the previous code only if it was loaded
			// (the EVM always reads it before SetCode), so load it first.
			k.GetCode(a)
			g.GetCode(a)
			f.logf("SetCode(%x, %x)", a[18:], code)
			k.SetCode(a, code, tracing.CodeChangeUnspecified)
			g.SetCode(a, code, tracing.CodeChangeUnspecified)
		case c < 40:
			key, v := f.key(), f.val()
			f.logf("SetState(%x, %x, %x)", a[18:], key[31:], v[31:])
			k.SetState(a, key, v)
			g.SetState(a, key, v)
		case c < 44:
			key, v := f.key(), f.val()
			f.logf("SetTransientState(%x, %x, %x)", a[18:], key[31:], v[31:])
			k.SetTransientState(a, key, v)
			g.SetTransientState(a, key, v)
		case c < 49:
			if !g.Exist(a) {
				f.logf("CreateAccount(%x)", a[18:])
				k.CreateAccount(a)
				g.CreateAccount(a)
			}
			if f.rng.IntN(2) == 0 {
				// As the EVM does: a new contract gets nonce 1 (EIP-161), which
				// also dirties the account, so Finalise ends its "new" status.
				f.logf("CreateContract(%x) + SetNonce(1)", a[18:])
				k.CreateContract(a)
				g.CreateContract(a)
				k.SetNonce(a, 1, tracing.NonceChangeNewContract)
				g.SetNonce(a, 1, tracing.NonceChangeNewContract)
			}
		case c < 54:
			f.logf("SelfDestruct(%x)", a[18:])
			k.SelfDestruct(a)
			g.SelfDestruct(a)
		case c < 57:
			n := uint64(f.rng.IntN(100))
			f.logf("AddRefund(%d)", n)
			k.AddRefund(n)
			g.AddRefund(n)
		case c < 59:
			if n := uint64(f.rng.IntN(100)); n <= g.GetRefund() {
				f.logf("SubRefund(%d)", n)
				k.SubRefund(n)
				g.SubRefund(n)
			}
		case c < 62:
			f.logf("AddAddressToAccessList(%x)", a[18:])
			k.AddAddressToAccessList(a)
			g.AddAddressToAccessList(a)
		case c < 65:
			key := f.key()
			f.logf("AddSlotToAccessList(%x, %x)", a[18:], key[31:])
			k.AddSlotToAccessList(a, key)
			g.AddSlotToAccessList(a, key)
		case c < 68:
			data := []byte{byte(op)}
			f.logf("AddLog(%x)", a[18:])
			k.AddLog(&types.Log{Address: a, Data: data})
			g.AddLog(&types.Log{Address: a, Data: data})
		case c < 78:
			f.logf("Snapshot() #%d", len(snaps))
			snaps = append(snaps, snap{k.Snapshot(), g.Snapshot()})
		case c < 86:
			if len(snaps) > 0 {
				i := f.rng.IntN(len(snaps))
				f.logf("RevertToSnapshot(#%d)", i)
				k.RevertToSnapshot(snaps[i].k)
				g.RevertToSnapshot(snaps[i].g)
				snaps = snaps[:i]
			}
		case c < 96:
			// End of transaction: applied (Finalise) or rejected (revert all).
			if f.rng.IntN(5) == 0 {
				f.logf("reject tx (revert to its start)")
				k.RevertToSnapshot(txBase.k)
				g.RevertToSnapshot(txBase.g)
				k.TakeLogs()
			} else {
				if f.rng.IntN(3) == 0 {
					// EIP-7708 burn logs (Amsterdam; the interface has it).
					f.logf("EmitLogsForBurnAccounts()")
					k.EmitLogsForBurnAccounts()
					g.EmitLogsForBurnAccounts()
				}
				f.logf("Finalise(true)")
				k.Finalise(true)
				g.Finalise(true)
				gl := g.GetLogs(common.BytesToHash([]byte{byte(txIndex >> 8), byte(txIndex)}), 0, common.Hash{}, 0)
				kl := k.TakeLogs()
				if statetestRLPHash(kl) != statetestRLPHash(gl) {
					return fmt.Errorf("op %d: logs differ: %d vs %d", op, len(kl), len(gl))
				}
			}
			if err := statetestFuzzCompare(f, k, g); err != nil {
				return fmt.Errorf("op %d (tx end): %w", op, err)
			}
			if f.rng.IntN(3) == 0 {
				// End of mini-block.
				d := k.Diff()
				if err := d.Validate(); err != nil {
					return fmt.Errorf("op %d: diff: %w", op, err)
				}
				for _, ad := range d.Accounts {
					if len(ad.Code) > 0 {
						f.codeDB[ad.CodeHash] = ad.Code
					}
				}
				block++
				flat.Commit(flat.HeadIndex()+1, d)
				root, err := merkle.Apply(block, d)
				if err != nil {
					return err
				}
				want := g.IntermediateRoot(true)
				f.logf("end of mini-block: root %x", root[:4])
				if root != want {
					return fmt.Errorf("op %d: mini-block root %x, want %x\ndiff: %s", op, root, want, statetestFmtDiff(d))
				}
				// Every reader of the committed state must now agree with
				// go-ethereum's state.
				view := flat.View()
				tr, err := merkle.Reader(root, func(h common.Hash) []byte { return f.codeDB[h] })
				if err != nil {
					return err
				}
				for name, r := range map[string]state.Reader{"head": flat.Head(), "view": view, "trie": tr} {
					if err := statetestFuzzCheckReader(f, r, g); err != nil {
						view.Release()
						return fmt.Errorf("op %d: %s reader: %w", op, name, err)
					}
				}
				view.Release()
				if f.rng.IntN(4) == 0 {
					if err := statetestFuzzCheckDump(f, flat, g); err != nil {
						return fmt.Errorf("op %d: dump: %w", op, err)
					}
				}
				if k, err = newMiniBlock(); err != nil {
					return err
				}
			}
			startTx()
		default:
			// Reads only: they load objects and slots into the caches.
			key := f.key()
			f.logf("GetState(%x, %x)", a[18:], key[31:])
			k.GetState(a, key)
			g.GetState(a, key)
		}
		if err := statetestFuzzCompare(f, k, g); err != nil {
			return fmt.Errorf("op %d: %w", op, err)
		}
	}
	return nil
}

func statetestStorageRootClass(h common.Hash) string {
	switch h {
	case common.Hash{}:
		return "absent"
	case types.EmptyRootHash:
		return "empty"
	}
	return "non-empty"
}

// statetestFuzzCompare compares every getter of the two StateDBs.
func statetestFuzzCompare(f *statetestFuzzer, k *state.StateDB, g *gstate.StateDB) error {
	for _, a := range f.addrs {
		if x, y := k.Exist(a), g.Exist(a); x != y {
			return fmt.Errorf("Exist(%x) = %v, want %v", a, x, y)
		}
		if x, y := k.Empty(a), g.Empty(a); x != y {
			return fmt.Errorf("Empty(%x) = %v, want %v", a, x, y)
		}
		if x, y := k.GetBalance(a), g.GetBalance(a); !x.Eq(y) {
			return fmt.Errorf("GetBalance(%x) = %d, want %d", a, x, y)
		}
		if x, y := k.GetNonce(a), g.GetNonce(a); x != y {
			return fmt.Errorf("GetNonce(%x) = %d, want %d", a, x, y)
		}
		if x, y := k.GetCodeHash(a), g.GetCodeHash(a); x != y {
			return fmt.Errorf("GetCodeHash(%x) = %x, want %x", a, x, y)
		}
		if x, y := k.GetCode(a), g.GetCode(a); string(x) != string(y) {
			return fmt.Errorf("GetCode(%x) = %x, want %x", a, x, y)
		}
		if x, y := k.HasSelfDestructed(a), g.HasSelfDestructed(a); x != y {
			return fmt.Errorf("HasSelfDestructed(%x) = %v, want %v", a, x, y)
		}
		if x, y := k.IsNewContract(a), g.IsNewContract(a); x != y {
			return fmt.Errorf("IsNewContract(%x) = %v, want %v", a, x, y)
		}
		if x, y := statetestStorageRootClass(k.GetStorageRoot(a)), statetestStorageRootClass(g.GetStorageRoot(a)); x != y {
			return fmt.Errorf("GetStorageRoot(%x) is %s, want %s", a, x, y)
		}
		if x, y := k.AddressInAccessList(a), g.AddressInAccessList(a); x != y {
			return fmt.Errorf("AddressInAccessList(%x) = %v, want %v", a, x, y)
		}
		for _, key := range f.keys {
			kv, kc := k.GetStateAndCommittedState(a, key)
			gv, gc := g.GetStateAndCommittedState(a, key)
			if kv != gv || kc != gc {
				return fmt.Errorf("GetStateAndCommittedState(%x, %x) = %x, %x; want %x, %x", a, key, kv, kc, gv, gc)
			}
			if x, y := k.GetTransientState(a, key), g.GetTransientState(a, key); x != y {
				return fmt.Errorf("GetTransientState(%x, %x) = %x, want %x", a, key, x, y)
			}
			ka, ks := k.SlotInAccessList(a, key)
			ga, gs := g.SlotInAccessList(a, key)
			if ka != ga || ks != gs {
				return fmt.Errorf("SlotInAccessList(%x, %x) = %v, %v; want %v, %v", a, key, ka, ks, ga, gs)
			}
		}
	}
	if x, y := k.GetRefund(), g.GetRefund(); x != y {
		return fmt.Errorf("GetRefund() = %d, want %d", x, y)
	}
	return nil
}

func statetestFmtDiff(d *chain.StateDiff) string {
	var lines []string
	for _, a := range d.Accounts {
		lines = append(lines, fmt.Sprintf("%x deleted=%v reset=%v nonce=%d bal=%d code=%x slots=%v",
			a.Address, a.Deleted, a.StorageReset, a.Nonce, &a.Balance, a.CodeHash[:4], a.Storage))
	}
	return statetestJoin(lines)
}

func statetestJoin(lines []string) string {
	out := ""
	for i, l := range lines {
		if i > 0 {
			out += "\n  "
		}
		out += l
	}
	return out
}

// statetestFuzzCheckReader compares a reader of the committed state with
// go-ethereum's state right after IntermediateRoot.
func statetestFuzzCheckReader(f *statetestFuzzer, r state.Reader, g *gstate.StateDB) error {
	for _, a := range f.addrs {
		acct, ok := r.Account(a)
		if ok != g.Exist(a) {
			return fmt.Errorf("Account(%x) exists %v, want %v", a, ok, g.Exist(a))
		}
		if !ok {
			if r.HasStorage(a) {
				return fmt.Errorf("HasStorage(%x) of a missing account", a)
			}
			continue
		}
		if acct.Nonce != g.GetNonce(a) || !acct.Balance.Eq(g.GetBalance(a)) || acct.CodeHash != g.GetCodeHash(a) {
			return fmt.Errorf("Account(%x) = %d/%d/%x, want %d/%d/%x", a, acct.Nonce, &acct.Balance, acct.CodeHash,
				g.GetNonce(a), g.GetBalance(a), g.GetCodeHash(a))
		}
		if code := r.Code(acct.CodeHash); string(code) != string(g.GetCode(a)) {
			return fmt.Errorf("Code(%x) = %x, want %x", a, code, g.GetCode(a))
		}
		if x, y := r.HasStorage(a), g.GetStorageRoot(a) != types.EmptyRootHash; x != y {
			return fmt.Errorf("HasStorage(%x) = %v, want %v", a, x, y)
		}
		for _, key := range f.keys {
			if x, y := r.Storage(a, key), g.GetState(a, key); x != y {
				return fmt.Errorf("Storage(%x, %x) = %x, want %x", a, key, x, y)
			}
		}
	}
	return nil
}

// statetestFuzzCheckDump compares a dump of the flat state's newest version
// with go-ethereum's state.
func statetestFuzzCheckDump(f *statetestFuzzer, flat *state.State, g *gstate.StateDB) error {
	seen := make(map[common.Address]bool)
	v := flat.View()
	defer v.Release()
	err := v.Dump(func(a common.Address, acct *state.Account, code []byte, storage map[common.Hash]common.Hash) error {
		seen[a] = true
		if !g.Exist(a) {
			return fmt.Errorf("%x exists, want absent", a)
		}
		if acct.Nonce != g.GetNonce(a) || !acct.Balance.Eq(g.GetBalance(a)) || acct.CodeHash != g.GetCodeHash(a) || string(code) != string(g.GetCode(a)) {
			return fmt.Errorf("%x differs", a)
		}
		for _, key := range f.keys {
			if storage[key] != g.GetState(a, key) {
				return fmt.Errorf("%x slot %x = %x, want %x", a, key, storage[key], g.GetState(a, key))
			}
		}
		for key, v := range storage {
			if v == (common.Hash{}) {
				return fmt.Errorf("%x slot %x stored as zero", a, key)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, a := range f.addrs {
		if g.Exist(a) && !seen[a] {
			return fmt.Errorf("%x missing", a)
		}
	}
	return nil
}

package state

import (
	"bytes"
	"sort"

	"github.com/ethereum/go-ethereum/common"
	gstate "github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/stateless"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/core/chain"
)

var _ vm.StateDB = (*StateDB)(nil)

// nonEmptyStorageRoot stands for "this account has storage" where the EVM asks for
// a storage root (EIP-7610 collision checks): the flat state keeps no per-account
// roots, and the EVM only compares the value with the empty root.
var nonEmptyStorageRoot = crypto.Keccak256Hash([]byte("kestrel/non-empty-storage"))

// LazySlot is a storage slot whose value is not known yet when execution starts:
// the EIP-2935 slot of the parent block hash, whose hash waits for the parent's
// state root. A read of the slot blocks in Get until the value is known.
type LazySlot struct {
	Addr common.Address
	Key  common.Hash
	Get  func() common.Hash
}

// object is an account as the mini-block being executed sees it.
type object struct {
	addr   common.Address
	data   Account
	code   []byte
	loaded bool // code loaded

	// origin holds slot values read from the reader (valid unless cleared).
	origin map[common.Hash]common.Hash
	// pending holds values committed by earlier transactions of this mini-block.
	pending map[common.Hash]common.Hash
	// dirty holds the current transaction's writes.
	dirty map[common.Hash]common.Hash
	// cleared: the account was destroyed earlier in this mini-block, so the
	// reader's storage no longer applies.
	cleared bool

	selfDestructed bool
	newContract    bool
}

func (o *object) empty() bool {
	return o.data.Nonce == 0 && o.data.Balance.IsZero() && o.data.CodeHash == types.EmptyCodeHash
}

func (o *object) setState(key, value, origin common.Hash) {
	if value == origin {
		delete(o.dirty, key)
		return
	}
	if o.dirty == nil {
		o.dirty = make(map[common.Hash]common.Hash)
	}
	o.dirty[key] = value
}

// StateDB is Kestrel's implementation of go-ethereum's vm.StateDB over a Reader:
// it executes the transactions of one mini-block and yields the mini-block's
// state diff. It follows go-ethereum's state semantics (journal, EIP-161 empty
// account removal, EIP-2929 access lists, EIP-1153 transient storage, EIP-6780
// self-destruct) without tries. Not safe for concurrent use.
type StateDB struct {
	r Reader

	objects map[common.Address]*object
	// destructed holds accounts deleted earlier in this mini-block.
	destructed map[common.Address]struct{}
	// before holds each touched account as it was when the mini-block started
	// (nil: did not exist), for the diff.
	before map[common.Address]*Account

	journal    journal
	refund     uint64
	accessList AccessList
	transient  Transient
	logs       []*types.Log
	lazy       *LazySlot
}

// NewStateDB returns a StateDB over r.
func NewStateDB(r Reader) *StateDB {
	return &StateDB{
		r:          r,
		objects:    make(map[common.Address]*object),
		destructed: make(map[common.Address]struct{}),
		before:     make(map[common.Address]*Account),
		journal:    journal{dirties: make(map[common.Address]int)},
		accessList: make(AccessList),
	}
}

// SetLazySlot installs (or with nil removes) the slot whose value arrives late.
func (s *StateDB) SetLazySlot(l *LazySlot) { s.lazy = l }

func (s *StateDB) getObject(addr common.Address) *object {
	if o := s.objects[addr]; o != nil {
		return o
	}
	if _, ok := s.destructed[addr]; ok {
		return nil
	}
	acct, ok := s.r.Account(addr)
	if _, seen := s.before[addr]; !seen {
		if ok {
			cp := acct
			s.before[addr] = &cp
		} else {
			s.before[addr] = nil
		}
	}
	if !ok {
		return nil
	}
	o := &object{addr: addr, data: acct}
	s.objects[addr] = o
	return o
}

func (s *StateDB) getOrNewObject(addr common.Address) *object {
	if o := s.getObject(addr); o != nil {
		return o
	}
	return s.createObject(addr)
}

func (s *StateDB) createObject(addr common.Address) *object {
	if _, seen := s.before[addr]; !seen {
		s.getObject(addr) // records the account as it was
	}
	o := &object{addr: addr, data: Account{CodeHash: types.EmptyCodeHash}, loaded: true}
	prev := s.objects[addr]
	if _, ok := s.destructed[addr]; ok {
		o.cleared = true
	} else if prev != nil {
		// Overwriting a live account (the EVM never does; go-ethereum behaves the
		// same): its storage stays readable as the original values.
		o.cleared = prev.cleared
		o.origin, o.pending = prev.origin, prev.pending
	}
	s.journal.append(createObjectChange{account: addr, prev: prev})
	s.objects[addr] = o
	return o
}

// CreateAccount implements vm.StateDB.
func (s *StateDB) CreateAccount(addr common.Address) { s.createObject(addr) }

// CreateContract implements vm.StateDB.
func (s *StateDB) CreateContract(addr common.Address) {
	o := s.getObject(addr)
	if o != nil && !o.newContract {
		o.newContract = true
		s.journal.append(createContractChange{account: addr})
	}
}

// SubBalance implements vm.StateDB.
func (s *StateDB) SubBalance(addr common.Address, amount *uint256.Int, _ tracing.BalanceChangeReason) uint256.Int {
	o := s.getOrNewObject(addr)
	prev := o.data.Balance
	if amount.IsZero() {
		return prev
	}
	s.journal.append(balanceChange{account: addr, prev: prev})
	o.data.Balance.Sub(&prev, amount)
	return prev
}

// AddBalance implements vm.StateDB.
func (s *StateDB) AddBalance(addr common.Address, amount *uint256.Int, _ tracing.BalanceChangeReason) uint256.Int {
	o := s.getOrNewObject(addr)
	prev := o.data.Balance
	if amount.IsZero() {
		if o.empty() {
			s.journal.append(touchChange{account: addr})
		}
		return prev
	}
	s.journal.append(balanceChange{account: addr, prev: prev})
	o.data.Balance.Add(&prev, amount)
	return prev
}

// GetBalance implements vm.StateDB.
func (s *StateDB) GetBalance(addr common.Address) *uint256.Int {
	if o := s.getObject(addr); o != nil {
		b := o.data.Balance
		return &b
	}
	return new(uint256.Int)
}

// GetNonce implements vm.StateDB.
func (s *StateDB) GetNonce(addr common.Address) uint64 {
	if o := s.getObject(addr); o != nil {
		return o.data.Nonce
	}
	return 0
}

// SetNonce implements vm.StateDB.
func (s *StateDB) SetNonce(addr common.Address, nonce uint64, _ tracing.NonceChangeReason) {
	o := s.getOrNewObject(addr)
	s.journal.append(nonceChange{account: addr, prev: o.data.Nonce})
	o.data.Nonce = nonce
}

// GetCodeHash implements vm.StateDB.
func (s *StateDB) GetCodeHash(addr common.Address) common.Hash {
	if o := s.getObject(addr); o != nil {
		return o.data.CodeHash
	}
	return common.Hash{}
}

func (s *StateDB) code(o *object) []byte {
	if !o.loaded {
		o.code = s.r.Code(o.data.CodeHash)
		o.loaded = true
	}
	return o.code
}

// GetCode implements vm.StateDB.
func (s *StateDB) GetCode(addr common.Address) []byte {
	if o := s.getObject(addr); o != nil {
		return s.code(o)
	}
	return nil
}

// GetCodeSize implements vm.StateDB.
func (s *StateDB) GetCodeSize(addr common.Address) int { return len(s.GetCode(addr)) }

// SetCode implements vm.StateDB.
func (s *StateDB) SetCode(addr common.Address, code []byte, _ tracing.CodeChangeReason) []byte {
	o := s.getOrNewObject(addr)
	prev := s.code(o)
	s.journal.append(codeChange{account: addr, prevCode: prev, prevHash: o.data.CodeHash})
	o.code = code
	if len(code) == 0 {
		o.data.CodeHash = types.EmptyCodeHash
	} else {
		o.data.CodeHash = crypto.Keccak256Hash(code)
	}
	return prev
}

// AddRefund implements vm.StateDB.
func (s *StateDB) AddRefund(gas uint64) {
	s.journal.append(refundChange{prev: s.refund})
	s.refund += gas
}

// SubRefund implements vm.StateDB. Going below zero is a consensus bug in the
// interpreter's gas accounting, as in go-ethereum.
func (s *StateDB) SubRefund(gas uint64) {
	s.journal.append(refundChange{prev: s.refund})
	if gas > s.refund {
		panic("state: refund counter below zero")
	}
	s.refund -= gas
}

// GetRefund implements vm.StateDB.
func (s *StateDB) GetRefund() uint64 { return s.refund }

// committed is a slot's value at the start of the current transaction.
func (s *StateDB) committed(o *object, key common.Hash) common.Hash {
	if v, ok := o.pending[key]; ok {
		return v
	}
	if o.cleared {
		return common.Hash{}
	}
	if v, ok := o.origin[key]; ok {
		return v
	}
	var v common.Hash
	if s.lazy != nil && s.lazy.Addr == o.addr && s.lazy.Key == key {
		v = s.lazy.Get()
	} else {
		v = s.r.Storage(o.addr, key)
	}
	if o.origin == nil {
		o.origin = make(map[common.Hash]common.Hash)
	}
	o.origin[key] = v
	return v
}

func (s *StateDB) current(o *object, key common.Hash) (value, committed common.Hash) {
	committed = s.committed(o, key)
	if v, ok := o.dirty[key]; ok {
		return v, committed
	}
	return committed, committed
}

// GetStateAndCommittedState implements vm.StateDB.
func (s *StateDB) GetStateAndCommittedState(addr common.Address, key common.Hash) (common.Hash, common.Hash) {
	if o := s.getObject(addr); o != nil {
		return s.current(o, key)
	}
	return common.Hash{}, common.Hash{}
}

// GetState implements vm.StateDB.
func (s *StateDB) GetState(addr common.Address, key common.Hash) common.Hash {
	v, _ := s.GetStateAndCommittedState(addr, key)
	return v
}

// SetState implements vm.StateDB.
func (s *StateDB) SetState(addr common.Address, key, value common.Hash) common.Hash {
	o := s.getOrNewObject(addr)
	prev, origin := s.current(o, key)
	if prev == value {
		return prev
	}
	s.journal.append(storageChange{account: addr, key: key, prev: prev, org: origin})
	o.setState(key, value, origin)
	return prev
}

// GetStorageRoot implements vm.StateDB. The flat state has no storage roots; the
// answer only tells empty from non-empty storage, which is all the EVM asks.
func (s *StateDB) GetStorageRoot(addr common.Address) common.Hash {
	o := s.getObject(addr)
	if o == nil {
		return common.Hash{}
	}
	if !o.cleared && s.r.HasStorage(addr) {
		return nonEmptyStorageRoot
	}
	return types.EmptyRootHash
}

// GetTransientState implements vm.StateDB.
func (s *StateDB) GetTransientState(addr common.Address, key common.Hash) common.Hash {
	return s.transient.Get(addr, key)
}

// SetTransientState implements vm.StateDB.
func (s *StateDB) SetTransientState(addr common.Address, key, value common.Hash) {
	prev := s.GetTransientState(addr, key)
	if prev == value {
		return
	}
	s.journal.append(transientChange{account: addr, key: key, prev: prev})
	s.transient.Set(addr, key, value)
}

// SelfDestruct implements vm.StateDB.
func (s *StateDB) SelfDestruct(addr common.Address) {
	o := s.getObject(addr)
	if o == nil || o.selfDestructed {
		return
	}
	s.journal.append(destructChange{account: addr})
	o.selfDestructed = true
}

// HasSelfDestructed implements vm.StateDB.
func (s *StateDB) HasSelfDestructed(addr common.Address) bool {
	o := s.getObject(addr)
	return o != nil && o.selfDestructed
}

// Exist implements vm.StateDB.
func (s *StateDB) Exist(addr common.Address) bool { return s.getObject(addr) != nil }

// IsNewContract implements vm.StateDB.
func (s *StateDB) IsNewContract(addr common.Address) bool {
	o := s.getObject(addr)
	return o != nil && o.newContract
}

// Empty implements vm.StateDB.
func (s *StateDB) Empty(addr common.Address) bool {
	o := s.getObject(addr)
	return o == nil || o.empty()
}

// AddressInAccessList implements vm.StateDB.
func (s *StateDB) AddressInAccessList(addr common.Address) bool {
	return s.accessList.ContainsAddress(addr)
}

// SlotInAccessList implements vm.StateDB.
func (s *StateDB) SlotInAccessList(addr common.Address, slot common.Hash) (bool, bool) {
	return s.accessList.Contains(addr, slot)
}

// AddAddressToAccessList implements vm.StateDB.
func (s *StateDB) AddAddressToAccessList(addr common.Address) {
	if s.accessList.AddAddress(addr) {
		s.journal.append(accessAccountAdded{account: addr})
	}
}

// AddSlotToAccessList implements vm.StateDB.
func (s *StateDB) AddSlotToAccessList(addr common.Address, slot common.Hash) {
	s.AddAddressToAccessList(addr)
	if s.accessList.AddSlot(addr, slot) {
		s.journal.append(accessSlotAdded{account: addr, slot: slot})
	}
}

// Prepare implements vm.StateDB: it resets the access list and transient storage
// for a new transaction and warms what EIP-2929, EIP-2930 and EIP-3651 warm.
func (s *StateDB) Prepare(rules params.Rules, sender, coinbase common.Address, dst *common.Address, precompiles []common.Address, list types.AccessList) {
	s.accessList.Prepare(rules, sender, coinbase, dst, precompiles, list)
	s.transient = nil
}

// Snapshot implements vm.StateDB.
func (s *StateDB) Snapshot() int { return len(s.journal.entries) }

// RevertToSnapshot implements vm.StateDB.
func (s *StateDB) RevertToSnapshot(id int) { s.journal.revertTo(s, id) }

// AddLog implements vm.StateDB. Positions (tx hash, indices) are derived when the
// receipt is built.
func (s *StateDB) AddLog(l *types.Log) {
	s.journal.append(addLogChange{})
	s.logs = append(s.logs, l)
}

// EmitLogsForBurnAccounts implements vm.StateDB (EIP-7708, not active in Prague or
// Osaka): a log for each self-destructed account that still holds a balance.
func (s *StateDB) EmitLogsForBurnAccounts() {
	var burned []common.Address
	for addr := range s.journal.dirties {
		if o := s.objects[addr]; o != nil && o.selfDestructed && !o.data.Balance.IsZero() {
			burned = append(burned, addr)
		}
	}
	sort.Slice(burned, func(i, j int) bool { return bytes.Compare(burned[i][:], burned[j][:]) < 0 })
	for _, addr := range burned {
		b := s.objects[addr].data.Balance
		s.AddLog(types.EthBurnLog(addr, &b))
	}
}

// AddPreimage implements vm.StateDB; preimages are not recorded.
func (s *StateDB) AddPreimage(common.Hash, []byte) {}

// Witness implements vm.StateDB; no stateless witness is built.
func (s *StateDB) Witness() *stateless.Witness { return nil }

// AccessEvents implements vm.StateDB; Verkle access events are not tracked.
func (s *StateDB) AccessEvents() *gstate.AccessEvents { return nil }

// Finalise implements vm.StateDB: it ends a transaction, deleting self-destructed
// accounts and (with deleteEmpty, EIP-161) touched empty ones, and folding the
// transaction's storage writes into the mini-block's.
func (s *StateDB) Finalise(deleteEmpty bool) {
	for addr := range s.journal.dirties {
		o, ok := s.objects[addr]
		if !ok {
			continue
		}
		if o.selfDestructed || (deleteEmpty && o.empty()) {
			delete(s.objects, addr)
			s.destructed[addr] = struct{}{}
			continue
		}
		if len(o.dirty) > 0 {
			if o.pending == nil {
				o.pending = make(map[common.Hash]common.Hash, len(o.dirty))
			}
			for k, v := range o.dirty {
				o.pending[k] = v
			}
			clear(o.dirty)
		}
		o.newContract = false
	}
	s.journal.reset()
	s.refund = 0
}

// TakeLogs returns the logs added since the last call and forgets them.
func (s *StateDB) TakeLogs() []*types.Log {
	l := s.logs
	s.logs = nil
	return l
}

// Diff is what the executed transactions changed relative to the reader, in
// canonical order. Call it after Finalise.
func (s *StateDB) Diff() *chain.StateDiff {
	d := &chain.StateDiff{}
	seen := make(map[common.Address]struct{}, len(s.objects)+len(s.destructed))
	add := func(addr common.Address) {
		if _, ok := seen[addr]; ok {
			return
		}
		seen[addr] = struct{}{}
		before := s.before[addr]
		_, wasDestroyed := s.destructed[addr]
		o := s.objects[addr]
		if o == nil {
			if before != nil {
				d.Accounts = append(d.Accounts, chain.AccountDiff{Address: addr, Deleted: true, StorageReset: true})
			}
			return
		}
		reset := o.cleared && before != nil
		ad := chain.AccountDiff{Address: addr, StorageReset: reset, Nonce: o.data.Nonce, Balance: o.data.Balance, CodeHash: o.data.CodeHash}
		changed := reset || before == nil || before.Nonce != o.data.Nonce || before.Balance != o.data.Balance || before.CodeHash != o.data.CodeHash
		if (before == nil && o.data.CodeHash != types.EmptyCodeHash) || (before != nil && before.CodeHash != o.data.CodeHash) {
			ad.Code = s.code(o)
			if ad.Code == nil {
				ad.Code = []byte{}
			}
		}
		for k, v := range o.pending {
			var orig common.Hash
			if !o.cleared {
				orig = o.origin[k] // pending slots were always read first
			}
			if v != orig {
				ad.Storage = append(ad.Storage, chain.SlotDiff{Key: k, Value: v})
			}
		}
		_ = wasDestroyed
		if changed || len(ad.Storage) > 0 {
			d.Accounts = append(d.Accounts, ad)
		}
	}
	for addr := range s.objects {
		add(addr)
	}
	for addr := range s.destructed {
		add(addr)
	}
	d.Sort()
	return d
}

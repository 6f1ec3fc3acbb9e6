package exec

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

	"github.com/kestrel-l2/kestrel/core/blockstm"
	"github.com/kestrel-l2/kestrel/core/state"
)

// The locations of the parallel engine's multi-version memory. Every field of
// an account is its own location, so that a transaction reading an account's
// code does not conflict with one paying into its balance.
const (
	kindExist     uint8 = iota + 1 // bool: the account exists
	kindNonce                      // uint64
	kindBalance                    // uint256.Int, or a uint256.Int delta (an addition)
	kindCode                       // codeValue
	kindDestroyed                  // struct{}: the account was deleted by the writer
	kindStorage                    // common.Hash
)

// codeValue is a written code: its hash and bytes.
type codeValue struct {
	hash common.Hash
	code []byte
}

func accountKey(kind uint8, addr common.Address) blockstm.Key {
	return blockstm.Key{Kind: kind, Addr: addr}
}

func storageKey(addr common.Address, slot common.Hash) blockstm.Key {
	return blockstm.Key{Kind: kindStorage, Addr: addr, Slot: slot}
}

// dependencyAbort unwinds the interpreter when a read hit an ESTIMATE: the
// incarnation cannot finish and is retried once the blocking transaction has
// executed. It never escapes Parallel.Execute.
type dependencyAbort struct{ err error }

// base is the pre-request state every transaction reads below the
// multi-version memory: a Reader, plus the EIP-2935 slot that may still wait
// for the parent hash.
type base struct {
	r    state.Reader
	lazy *state.LazySlot
}

func (b *base) storage(addr common.Address, slot common.Hash) common.Hash {
	if b.lazy != nil && b.lazy.Addr == addr && b.lazy.Key == slot {
		return b.lazy.Get()
	}
	return b.r.Storage(addr, slot)
}

// value is a location's pre-request value (the base of delta chains).
func (b *base) value(k blockstm.Key) any {
	switch k.Kind {
	case kindExist:
		_, ok := b.r.Account(k.Addr)
		return ok
	case kindNonce:
		a, _ := b.r.Account(k.Addr)
		return a.Nonce
	case kindBalance:
		a, _ := b.r.Account(k.Addr)
		return a.Balance
	case kindCode:
		a, ok := b.r.Account(k.Addr)
		if !ok {
			return codeValue{hash: types.EmptyCodeHash}
		}
		return codeValue{hash: a.CodeHash, code: b.r.Code(a.CodeHash)}
	case kindStorage:
		return b.storage(k.Addr, k.Slot)
	}
	return nil
}

func foldBalance(baseVal, delta any) any {
	var out uint256.Int
	b, d := baseVal.(uint256.Int), delta.(uint256.Int)
	out.Add(&b, &d)
	return out
}

// equalValues compares two values of the same location.
func equalValues(a, b any) bool {
	switch x := a.(type) {
	case codeValue:
		y, ok := b.(codeValue)
		return ok && x.hash == y.hash
	case uint256.Int:
		y, ok := b.(uint256.Int)
		return ok && x == y
	case common.Hash:
		y, ok := b.(common.Hash)
		return ok && x == y
	case uint64:
		y, ok := b.(uint64)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case struct{}:
		_, ok := b.(struct{})
		return ok
	}
	return false
}

// slotState is one storage slot of an account object: its value at the start
// of the current transaction (for SSTORE gas) and now.
type slotState struct {
	committed, cur common.Hash
}

// object is an account that exists, as the task sees it now. Fields read from
// the multi-version memory are loaded lazily, one location at a time.
type object struct {
	nonceKnown, balKnown, codeKnown bool
	nonce                           uint64
	bal                             uint256.Int
	codeHash                        common.Hash
	code                            []byte
	// fresh: created by this task over a missing account, so slots never
	// written read as zero (and all its fields are known).
	fresh   bool
	storage map[common.Hash]*slotState

	selfDestructed, newContract bool
}

func (o *object) slot(key common.Hash) *slotState { return o.storage[key] }

// account is everything the task knows of one address. It is never replaced;
// its current object is (CreateAccount makes a new one).
type account struct {
	addr common.Address

	// What the task read through the view (values at the task's start).
	existRead   bool
	existed     bool
	nonce0      uint64
	nonce0Read  bool
	bal0        uint256.Int
	bal0Read    bool
	code0       common.Hash
	code0Read   bool
	clearedRead bool
	clearedAt   int // index of the lower transaction that deleted it, or -1
	start       map[common.Hash]common.Hash

	// obj is the account now: nil when it does not exist (or existence was
	// not read yet, see existRead).
	obj *object
	// Blind additions to the balance of an existing account, made without
	// reading the balance (the fee recipient and payees): they are written as
	// a delta unless the balance is read later in the task.
	pendAdd uint256.Int
	// destroyedHere: a Finalise of this task deleted the account.
	destroyedHere bool
	dirty         int // journal entries dirtying the account in the current transaction

	// The account as the pre-request state has it, read once.
	baseRead bool
	baseOK   bool
	base     state.Account
}

type jkind uint8

const (
	jCreate jkind = iota
	jCreateContract
	jBalance
	jBlindAdd
	jNonce
	jCode
	jStorage
	jRefund
	jTransient
	jDestruct
	jTouch
	jAccessAccount
	jAccessSlot
	jLog
)

type jentry struct {
	kind     jkind
	acct     *account
	prevObj  *object
	key      common.Hash
	prevHash common.Hash
	prevU256 uint256.Int
	prevU64  uint64
	prevCode []byte
}

func (k jkind) dirties() bool {
	switch k {
	case jCreate, jBalance, jBlindAdd, jNonce, jCode, jStorage, jDestruct, jTouch:
		return true
	}
	return false
}

// txState is the vm.StateDB of one transaction incarnation in the parallel
// engine (or of the block-start system calls): reads go through a Block-STM
// view of the multi-version memory, one location at a time, falling back to
// the pre-request state; writes are collected when the task ends. Its
// semantics are those of state.StateDB, the sequential engine's, which the
// parallel engine must match byte for byte.
type txState struct {
	view *blockstm.TxView
	base *base

	accounts   map[common.Address]*account
	order      []*account // accounts in first-touch order
	slab       slab[account]
	objects    slab[object]
	journal    []jentry
	refund     uint64
	accessList state.AccessList
	transient  state.Transient
	logs       []*types.Log
}

var _ vm.StateDB = (*txState)(nil)

func newTxState(b *base) *txState {
	return &txState{
		base:       b,
		accounts:   make(map[common.Address]*account),
		accessList: make(state.AccessList),
	}
}

// reset prepares the state for another task over view.
func (s *txState) reset(view *blockstm.TxView) {
	s.view = view
	clear(s.accounts)
	clear(s.order)
	s.order = s.order[:0]
	s.slab.reset()
	s.objects.reset()
	s.journal = s.journal[:0]
	s.refund = 0
	clear(s.accessList)
	s.transient = nil
	s.logs = nil
}

func (s *txState) read(k blockstm.Key) (any, blockstm.Version, bool) {
	v, ver, found, err := s.view.ReadVersion(k)
	if err != nil {
		panic(dependencyAbort{err})
	}
	return v, ver, found
}

// baseAccount is the account in the pre-request state.
func (s *txState) baseAccount(a *account) (*state.Account, bool) {
	if !a.baseRead {
		a.base, a.baseOK = s.base.r.Account(a.addr)
		a.baseRead = true
		if !a.baseOK {
			a.base.CodeHash = types.EmptyCodeHash
		}
	}
	return &a.base, a.baseOK
}

// The task-start values of an account's fields: the multi-version memory's,
// or the pre-request state's.
func (s *txState) readExist(a *account) bool {
	if v, _, found := s.read(accountKey(kindExist, a.addr)); found {
		return v.(bool)
	}
	_, ok := s.baseAccount(a)
	return ok
}

func (s *txState) readNonce(a *account) uint64 {
	if v, _, found := s.read(accountKey(kindNonce, a.addr)); found {
		return v.(uint64)
	}
	b, _ := s.baseAccount(a)
	return b.Nonce
}

func (s *txState) readBalance(a *account) uint256.Int {
	if v, _, found := s.read(accountKey(kindBalance, a.addr)); found {
		return v.(uint256.Int)
	}
	b, _ := s.baseAccount(a)
	return b.Balance
}

func (s *txState) readCode(a *account) codeValue {
	if v, _, found := s.read(accountKey(kindCode, a.addr)); found {
		return v.(codeValue)
	}
	b, _ := s.baseAccount(a)
	if b.CodeHash == types.EmptyCodeHash {
		return emptyCode
	}
	return codeValue{hash: b.CodeHash, code: s.base.r.Code(b.CodeHash)}
}

func (s *txState) append(e jentry) {
	s.journal = append(s.journal, e)
	if e.kind.dirties() {
		e.acct.dirty++
	}
}

func (s *txState) acct(addr common.Address) *account {
	if a := s.accounts[addr]; a != nil {
		return a
	}
	a := s.slab.next()
	a.addr, a.clearedAt = addr, -1
	s.accounts[addr] = a
	s.order = append(s.order, a)
	return a
}

// loadExist reads whether the account exists at the task's start, and makes
// the account's object from it.
func (s *txState) loadExist(a *account) {
	if a.existRead {
		return
	}
	a.existRead = true
	a.existed = s.readExist(a)
	if a.existed {
		a.obj = s.objects.next()
	}
}

// getObject is the account's object, or nil when it does not exist.
func (s *txState) getObject(addr common.Address) *object {
	a := s.acct(addr)
	s.loadExist(a)
	return a.obj
}

func (s *txState) freshObject(a *account) *object {
	o := s.objects.next()
	o.nonceKnown, o.balKnown, o.codeKnown, o.codeHash, o.fresh = true, true, true, types.EmptyCodeHash, true
	return o
}

func (s *txState) getOrNewObject(addr common.Address) (*account, *object) {
	a := s.acct(addr)
	s.loadExist(a)
	if a.obj == nil {
		s.createObject(a)
	}
	return a, a.obj
}

func (s *txState) createObject(a *account) *object {
	s.loadExist(a)
	prev := a.obj
	o := s.freshObject(a)
	if prev != nil {
		// Overwriting a live account (the EVM never does): its storage stays
		// readable as the values committed so far, as in the sequential engine.
		s.loadFields(a, prev)
		o.fresh = prev.fresh
		o.storage = make(map[common.Hash]*slotState, len(prev.storage))
		for k, sl := range prev.storage {
			o.storage[k] = &slotState{committed: sl.committed, cur: sl.committed}
		}
	}
	s.append(jentry{kind: jCreate, acct: a, prevObj: prev})
	a.obj = o
	return o
}

// loadFields makes every field of a live object known (start values read).
func (s *txState) loadFields(a *account, o *object) {
	s.nonce(a, o)
	s.balance(a, o)
	s.codeHash(a, o)
}

func (s *txState) nonce(a *account, o *object) uint64 {
	if !o.nonceKnown {
		if !a.nonce0Read {
			a.nonce0 = s.readNonce(a)
			a.nonce0Read = true
		}
		o.nonce, o.nonceKnown = a.nonce0, true
	}
	return o.nonce
}

func (s *txState) balance(a *account, o *object) *uint256.Int {
	if !o.balKnown {
		if !a.bal0Read {
			a.bal0 = s.readBalance(a)
			a.bal0Read = true
		}
		o.bal.Add(&a.bal0, &a.pendAdd)
		o.balKnown = true
	}
	return &o.bal
}

func (s *txState) codeHash(a *account, o *object) common.Hash {
	if !o.codeKnown {
		cv := s.readCode(a)
		a.code0, a.code0Read = cv.hash, true
		o.codeHash, o.code, o.codeKnown = cv.hash, cv.code, true
	}
	return o.codeHash
}

// cleared reports whether a lower transaction deleted the account, and which.
func (s *txState) cleared(a *account) int {
	if !a.clearedRead {
		a.clearedRead = true
		if _, ver, found := s.read(accountKey(kindDestroyed, a.addr)); found {
			a.clearedAt = ver.TxIndex
		}
	}
	return a.clearedAt
}

// storageStart is a slot's value at the task's start.
func (s *txState) storageStart(a *account, key common.Hash) common.Hash {
	if v, ok := a.start[key]; ok {
		return v
	}
	var v common.Hash
	if !a.destroyedHere {
		clearedAt := s.cleared(a)
		val, ver, found := s.read(storageKey(a.addr, key))
		switch {
		case found && ver.TxIndex >= clearedAt:
			v = val.(common.Hash)
		case found || clearedAt >= 0:
			// Written before the account was deleted: gone with it.
		default:
			v = s.base.storage(a.addr, key)
		}
	}
	if a.start == nil {
		a.start = make(map[common.Hash]common.Hash)
	}
	a.start[key] = v
	return v
}

func (s *txState) slotOf(a *account, o *object, key common.Hash) *slotState {
	if sl := o.slot(key); sl != nil {
		return sl
	}
	var v common.Hash
	if !o.fresh {
		v = s.storageStart(a, key)
	}
	sl := &slotState{committed: v, cur: v}
	if o.storage == nil {
		o.storage = make(map[common.Hash]*slotState)
	}
	o.storage[key] = sl
	return sl
}

func (o *object) empty() bool {
	return o.nonce == 0 && o.bal.IsZero() && o.codeHash == types.EmptyCodeHash
}

// isEmpty is the EIP-161 emptiness of a live account. A balance with blind
// additions is not empty without reading it (the sum cannot wrap to zero: the
// additions come out of other balances, and all the ether there is stays far
// below 2^256).
func (s *txState) isEmpty(a *account, o *object) bool {
	if !o.balKnown && !a.pendAdd.IsZero() {
		return false
	}
	s.loadFields(a, o)
	return o.empty()
}

// CreateAccount implements vm.StateDB.
func (s *txState) CreateAccount(addr common.Address) { s.createObject(s.acct(addr)) }

// CreateContract implements vm.StateDB.
func (s *txState) CreateContract(addr common.Address) {
	a := s.acct(addr)
	s.loadExist(a)
	if o := a.obj; o != nil && !o.newContract {
		o.newContract = true
		s.append(jentry{kind: jCreateContract, acct: a})
	}
}

// SubBalance implements vm.StateDB.
func (s *txState) SubBalance(addr common.Address, amount *uint256.Int, _ tracing.BalanceChangeReason) uint256.Int {
	a, o := s.getOrNewObject(addr)
	prev := *s.balance(a, o)
	if amount.IsZero() {
		return prev
	}
	s.append(jentry{kind: jBalance, acct: a, prevU256: prev})
	o.bal.Sub(&prev, amount)
	return prev
}

// AddBalance implements vm.StateDB. An addition to the balance of an existing
// account that the task has not read is blind: kept as a pending delta, so
// that payees and the fee recipient do not serialize the block. Its return
// value (the previous balance) is not used by the interpreter.
func (s *txState) AddBalance(addr common.Address, amount *uint256.Int, _ tracing.BalanceChangeReason) uint256.Int {
	a := s.acct(addr)
	s.loadExist(a)
	if o := a.obj; o != nil && !o.balKnown && !amount.IsZero() {
		s.append(jentry{kind: jBlindAdd, acct: a, prevU256: *amount})
		a.pendAdd.Add(&a.pendAdd, amount)
		return uint256.Int{}
	}
	a, o := s.getOrNewObject(addr)
	prev := *s.balance(a, o)
	if amount.IsZero() {
		s.loadFields(a, o)
		if o.empty() {
			s.append(jentry{kind: jTouch, acct: a})
		}
		return prev
	}
	s.append(jentry{kind: jBalance, acct: a, prevU256: prev})
	o.bal.Add(&prev, amount)
	return prev
}

// GetBalance implements vm.StateDB.
func (s *txState) GetBalance(addr common.Address) *uint256.Int {
	a := s.acct(addr)
	s.loadExist(a)
	if o := a.obj; o != nil {
		b := *s.balance(a, o)
		return &b
	}
	return new(uint256.Int)
}

// GetNonce implements vm.StateDB.
func (s *txState) GetNonce(addr common.Address) uint64 {
	a := s.acct(addr)
	s.loadExist(a)
	if o := a.obj; o != nil {
		return s.nonce(a, o)
	}
	return 0
}

// SetNonce implements vm.StateDB.
func (s *txState) SetNonce(addr common.Address, nonce uint64, _ tracing.NonceChangeReason) {
	a, o := s.getOrNewObject(addr)
	s.append(jentry{kind: jNonce, acct: a, prevU64: s.nonce(a, o)})
	o.nonce = nonce
}

// GetCodeHash implements vm.StateDB.
func (s *txState) GetCodeHash(addr common.Address) common.Hash {
	a := s.acct(addr)
	s.loadExist(a)
	if o := a.obj; o != nil {
		return s.codeHash(a, o)
	}
	return common.Hash{}
}

func (s *txState) code(a *account, o *object) []byte {
	s.codeHash(a, o)
	return o.code
}

// GetCode implements vm.StateDB.
func (s *txState) GetCode(addr common.Address) []byte {
	a := s.acct(addr)
	s.loadExist(a)
	if o := a.obj; o != nil {
		return s.code(a, o)
	}
	return nil
}

// GetCodeSize implements vm.StateDB.
func (s *txState) GetCodeSize(addr common.Address) int { return len(s.GetCode(addr)) }

// SetCode implements vm.StateDB.
func (s *txState) SetCode(addr common.Address, code []byte, _ tracing.CodeChangeReason) []byte {
	a, o := s.getOrNewObject(addr)
	prev := s.code(a, o)
	s.append(jentry{kind: jCode, acct: a, prevCode: prev, prevHash: o.codeHash})
	o.code = code
	if len(code) == 0 {
		o.codeHash = types.EmptyCodeHash
	} else {
		o.codeHash = crypto.Keccak256Hash(code)
	}
	return prev
}

// AddRefund implements vm.StateDB.
func (s *txState) AddRefund(gas uint64) {
	s.append(jentry{kind: jRefund, prevU64: s.refund})
	s.refund += gas
}

// SubRefund implements vm.StateDB.
func (s *txState) SubRefund(gas uint64) {
	s.append(jentry{kind: jRefund, prevU64: s.refund})
	if gas > s.refund {
		panic("exec: refund counter below zero")
	}
	s.refund -= gas
}

// GetRefund implements vm.StateDB.
func (s *txState) GetRefund() uint64 { return s.refund }

// GetStateAndCommittedState implements vm.StateDB.
func (s *txState) GetStateAndCommittedState(addr common.Address, key common.Hash) (common.Hash, common.Hash) {
	a := s.acct(addr)
	s.loadExist(a)
	if o := a.obj; o != nil {
		sl := s.slotOf(a, o, key)
		return sl.cur, sl.committed
	}
	return common.Hash{}, common.Hash{}
}

// GetState implements vm.StateDB.
func (s *txState) GetState(addr common.Address, key common.Hash) common.Hash {
	v, _ := s.GetStateAndCommittedState(addr, key)
	return v
}

// SetState implements vm.StateDB.
func (s *txState) SetState(addr common.Address, key, value common.Hash) common.Hash {
	a, o := s.getOrNewObject(addr)
	sl := s.slotOf(a, o, key)
	prev := sl.cur
	if prev == value {
		return prev
	}
	s.append(jentry{kind: jStorage, acct: a, key: key, prevHash: prev})
	sl.cur = value
	return prev
}

// GetStorageRoot implements vm.StateDB: like the sequential engine, it only
// tells empty from non-empty storage as of the request's start.
func (s *txState) GetStorageRoot(addr common.Address) common.Hash {
	a := s.acct(addr)
	s.loadExist(a)
	o := a.obj
	if o == nil {
		return common.Hash{}
	}
	if !o.fresh && !a.destroyedHere && s.cleared(a) < 0 && s.base.r.HasStorage(addr) {
		return nonEmptyStorageRoot
	}
	return types.EmptyRootHash
}

// nonEmptyStorageRoot matches state.StateDB's answer for accounts with storage.
var nonEmptyStorageRoot = crypto.Keccak256Hash([]byte("kestrel/non-empty-storage"))

// GetTransientState implements vm.StateDB.
func (s *txState) GetTransientState(addr common.Address, key common.Hash) common.Hash {
	return s.transient.Get(addr, key)
}

// SetTransientState implements vm.StateDB.
func (s *txState) SetTransientState(addr common.Address, key, value common.Hash) {
	prev := s.GetTransientState(addr, key)
	if prev == value {
		return
	}
	s.append(jentry{kind: jTransient, acct: s.acct(addr), key: key, prevHash: prev})
	s.transient.Set(addr, key, value)
}

// SelfDestruct implements vm.StateDB.
func (s *txState) SelfDestruct(addr common.Address) {
	a := s.acct(addr)
	s.loadExist(a)
	o := a.obj
	if o == nil || o.selfDestructed {
		return
	}
	s.append(jentry{kind: jDestruct, acct: a})
	o.selfDestructed = true
}

// HasSelfDestructed implements vm.StateDB.
func (s *txState) HasSelfDestructed(addr common.Address) bool {
	o := s.getObject(addr)
	return o != nil && o.selfDestructed
}

// Exist implements vm.StateDB.
func (s *txState) Exist(addr common.Address) bool {
	a := s.acct(addr)
	s.loadExist(a)
	return a.obj != nil
}

// IsNewContract implements vm.StateDB.
func (s *txState) IsNewContract(addr common.Address) bool {
	o := s.getObject(addr)
	return o != nil && o.newContract
}

// Empty implements vm.StateDB.
func (s *txState) Empty(addr common.Address) bool {
	a := s.acct(addr)
	s.loadExist(a)
	return a.obj == nil || s.isEmpty(a, a.obj)
}

// AddressInAccessList implements vm.StateDB.
func (s *txState) AddressInAccessList(addr common.Address) bool {
	return s.accessList.ContainsAddress(addr)
}

// SlotInAccessList implements vm.StateDB.
func (s *txState) SlotInAccessList(addr common.Address, slot common.Hash) (bool, bool) {
	return s.accessList.Contains(addr, slot)
}

// AddAddressToAccessList implements vm.StateDB.
func (s *txState) AddAddressToAccessList(addr common.Address) {
	if s.accessList.AddAddress(addr) {
		s.append(jentry{kind: jAccessAccount, acct: s.acct(addr)})
	}
}

// AddSlotToAccessList implements vm.StateDB.
func (s *txState) AddSlotToAccessList(addr common.Address, slot common.Hash) {
	s.AddAddressToAccessList(addr)
	if s.accessList.AddSlot(addr, slot) {
		s.append(jentry{kind: jAccessSlot, acct: s.acct(addr), key: slot})
	}
}

// Prepare implements vm.StateDB (see state.StateDB.Prepare).
func (s *txState) Prepare(rules params.Rules, sender, coinbase common.Address, dst *common.Address, precompiles []common.Address, list types.AccessList) {
	s.accessList.Prepare(rules, sender, coinbase, dst, precompiles, list)
	s.transient = nil
}

// Snapshot implements vm.StateDB.
func (s *txState) Snapshot() int { return len(s.journal) }

// RevertToSnapshot implements vm.StateDB.
func (s *txState) RevertToSnapshot(id int) {
	for i := len(s.journal) - 1; i >= id; i-- {
		e := &s.journal[i]
		a := e.acct
		switch e.kind {
		case jCreate:
			a.obj = e.prevObj
		case jCreateContract:
			a.obj.newContract = false
		case jBalance:
			a.obj.bal = e.prevU256
		case jBlindAdd:
			// The addition was made before the balance was read (if it was
			// since, the read balance includes it).
			a.pendAdd.Sub(&a.pendAdd, &e.prevU256)
			if o := a.obj; o != nil && o.balKnown {
				o.bal.Sub(&o.bal, &e.prevU256)
			}
		case jNonce:
			a.obj.nonce = e.prevU64
		case jCode:
			a.obj.code, a.obj.codeHash = e.prevCode, e.prevHash
		case jStorage:
			a.obj.storage[e.key].cur = e.prevHash
		case jRefund:
			s.refund = e.prevU64
		case jTransient:
			s.transient.Set(a.addr, e.key, e.prevHash)
		case jDestruct:
			a.obj.selfDestructed = false
		case jAccessAccount:
			delete(s.accessList, a.addr)
		case jAccessSlot:
			delete(s.accessList[a.addr], e.key)
		case jLog:
			s.logs = s.logs[:len(s.logs)-1]
		}
		if e.kind.dirties() {
			a.dirty--
		}
		s.journal[i] = jentry{}
	}
	s.journal = s.journal[:id]
}

// AddLog implements vm.StateDB.
func (s *txState) AddLog(l *types.Log) {
	s.append(jentry{kind: jLog})
	s.logs = append(s.logs, l)
}

// EmitLogsForBurnAccounts implements vm.StateDB (EIP-7708, not active in
// Prague or Osaka), as state.StateDB does.
func (s *txState) EmitLogsForBurnAccounts() {
	var burned []*account
	for _, a := range s.order {
		if a.dirty > 0 && a.obj != nil && a.obj.selfDestructed && !s.balance(a, a.obj).IsZero() {
			burned = append(burned, a)
		}
	}
	sort.Slice(burned, func(i, j int) bool { return bytes.Compare(burned[i].addr[:], burned[j].addr[:]) < 0 })
	for _, a := range burned {
		b := a.obj.bal
		s.AddLog(types.EthBurnLog(a.addr, &b))
	}
}

// AddPreimage implements vm.StateDB; preimages are not recorded.
func (s *txState) AddPreimage(common.Hash, []byte) {}

// Witness implements vm.StateDB; no stateless witness is built.
func (s *txState) Witness() *stateless.Witness { return nil }

// AccessEvents implements vm.StateDB; Verkle access events are not tracked.
func (s *txState) AccessEvents() *gstate.AccessEvents { return nil }

// Finalise implements vm.StateDB: it ends a transaction like
// state.StateDB.Finalise, deleting self-destructed and (EIP-161) touched
// empty accounts.
func (s *txState) Finalise(deleteEmpty bool) {
	for _, a := range s.order {
		if a.dirty == 0 {
			continue
		}
		a.dirty = 0
		o := a.obj
		if o == nil {
			continue
		}
		if o.selfDestructed || (deleteEmpty && s.isEmpty(a, o)) {
			a.obj = nil
			a.destroyedHere = true
			a.pendAdd.Clear()
			continue
		}
		for _, sl := range o.storage {
			sl.committed = sl.cur
		}
		o.newContract = false
	}
	clear(s.journal)
	s.journal = s.journal[:0]
	s.refund = 0
}

// TakeLogs returns the logs added since the last call and forgets them.
func (s *txState) TakeLogs() []*types.Log {
	l := s.logs
	s.logs = nil
	return l
}

// slab hands out zeroed values from chunks that are reused across tasks: a
// task touches a handful of accounts, and allocating them anew for every
// transaction is most of the engine's garbage.
type slab[T any] struct {
	chunks [][]T
	chunk  int // current chunk
	used   int // values used in the current chunk
}

const slabChunk = 32

func (s *slab[T]) next() *T {
	if s.chunk == len(s.chunks) {
		s.chunks = append(s.chunks, make([]T, slabChunk))
	}
	c := s.chunks[s.chunk]
	v := &c[s.used]
	if s.used++; s.used == slabChunk {
		s.chunk, s.used = s.chunk+1, 0
	}
	return v
}

// reset zeroes the values handed out and makes them available again.
func (s *slab[T]) reset() {
	for i := 0; i <= s.chunk && i < len(s.chunks); i++ {
		n := slabChunk
		if i == s.chunk {
			n = s.used
		}
		clear(s.chunks[i][:n])
	}
	s.chunk, s.used = 0, 0
}

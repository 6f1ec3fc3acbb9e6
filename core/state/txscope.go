package state

import (
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
)

// AccessList is a transaction's EIP-2929 access list. Kestrel's two
// vm.StateDB implementations (this package's, and the parallel engine's
// per-transaction one) share it; each journals the additions it reports.
type AccessList map[common.Address]map[common.Hash]struct{}

// ContainsAddress reports whether addr is in the list.
func (al AccessList) ContainsAddress(addr common.Address) bool {
	_, ok := al[addr]
	return ok
}

// Contains reports whether addr, and the slot of addr, are in the list.
func (al AccessList) Contains(addr common.Address, slot common.Hash) (addressOK, slotOK bool) {
	slots, ok := al[addr]
	if !ok {
		return false, false
	}
	_, slotOK = slots[slot]
	return true, slotOK
}

// AddAddress adds addr and reports whether it was absent.
func (al AccessList) AddAddress(addr common.Address) bool {
	if _, ok := al[addr]; ok {
		return false
	}
	al[addr] = nil
	return true
}

// AddSlot adds the slot of addr (which must be in the list) and reports
// whether it was absent.
func (al AccessList) AddSlot(addr common.Address, slot common.Hash) bool {
	slots := al[addr]
	if _, ok := slots[slot]; ok {
		return false
	}
	if slots == nil {
		slots = make(map[common.Hash]struct{})
		al[addr] = slots
	}
	slots[slot] = struct{}{}
	return true
}

// Prepare resets the list for a new transaction and warms what EIP-2929,
// EIP-2930 and EIP-3651 warm (vm.StateDB.Prepare's access-list part).
func (al AccessList) Prepare(rules params.Rules, sender, coinbase common.Address, dst *common.Address, precompiles []common.Address, list types.AccessList) {
	if !rules.IsEIP2929 {
		return
	}
	clear(al)
	al[sender] = nil
	if dst != nil {
		al[*dst] = nil
	}
	for _, p := range precompiles {
		al[p] = nil
	}
	for _, el := range list {
		if _, ok := al[el.Address]; !ok {
			al[el.Address] = nil
		}
		for _, key := range el.StorageKeys {
			if al[el.Address] == nil {
				al[el.Address] = make(map[common.Hash]struct{})
			}
			al[el.Address][key] = struct{}{}
		}
	}
	// EIP-3651: warm the coinbase. Only add it when absent: assigning nil
	// would drop the storage keys the transaction's access list warmed for
	// the coinbase address above (they must stay warm, as in go-ethereum).
	if _, ok := al[coinbase]; rules.IsShanghai && !ok {
		al[coinbase] = nil
	}
}

// Transient is EIP-1153 transient storage (zero values are not stored).
type Transient map[common.Address]map[common.Hash]common.Hash

// Get returns a slot's value.
func (t Transient) Get(addr common.Address, key common.Hash) common.Hash { return t[addr][key] }

// Set stores a slot's value, allocating the map when t is nil.
func (t *Transient) Set(addr common.Address, key, value common.Hash) {
	if *t == nil {
		*t = make(Transient)
	}
	m := (*t)[addr]
	if m == nil {
		m = make(map[common.Hash]common.Hash)
		(*t)[addr] = m
	}
	if value == (common.Hash{}) {
		delete(m, key)
	} else {
		m[key] = value
	}
}

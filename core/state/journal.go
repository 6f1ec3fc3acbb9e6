package state

import (
	"github.com/ethereum/go-ethereum/common"
	"github.com/holiman/uint256"
)

// journalEntry is one revertible change. addr is the account the change dirties,
// or nil for changes that dirty none.
type journalEntry interface {
	revert(s *StateDB)
	dirtied() *common.Address
}

type (
	createObjectChange struct {
		account common.Address
		prev    *object
	}
	createContractChange struct{ account common.Address }
	destructChange       struct{ account common.Address }
	balanceChange        struct {
		account common.Address
		prev    uint256.Int
	}
	nonceChange struct {
		account common.Address
		prev    uint64
	}
	codeChange struct {
		account  common.Address
		prevCode []byte
		prevHash common.Hash
	}
	storageChange struct {
		account        common.Address
		key, prev, org common.Hash
	}
	touchChange        struct{ account common.Address }
	refundChange       struct{ prev uint64 }
	addLogChange       struct{}
	accessAccountAdded struct{ account common.Address }
	accessSlotAdded    struct {
		account common.Address
		slot    common.Hash
	}
	transientChange struct {
		account   common.Address
		key, prev common.Hash
	}
)

func (ch createObjectChange) revert(s *StateDB)          { delete(s.objects, ch.account) }
func (ch createObjectChange) dirtied() *common.Address   { return &ch.account }
func (ch createContractChange) revert(s *StateDB)        { s.objects[ch.account].newContract = false }
func (ch createContractChange) dirtied() *common.Address { return nil }
func (ch destructChange) revert(s *StateDB)              { s.objects[ch.account].selfDestructed = false }
func (ch destructChange) dirtied() *common.Address       { return &ch.account }
func (ch balanceChange) revert(s *StateDB)               { s.objects[ch.account].data.Balance = ch.prev }
func (ch balanceChange) dirtied() *common.Address        { return &ch.account }
func (ch nonceChange) revert(s *StateDB)                 { s.objects[ch.account].data.Nonce = ch.prev }
func (ch nonceChange) dirtied() *common.Address          { return &ch.account }
func (ch codeChange) revert(s *StateDB) {
	obj := s.objects[ch.account]
	obj.code, obj.data.CodeHash = ch.prevCode, ch.prevHash
}
func (ch codeChange) dirtied() *common.Address { return &ch.account }
func (ch storageChange) revert(s *StateDB) {
	s.objects[ch.account].setState(ch.key, ch.prev, ch.org)
}
func (ch storageChange) dirtied() *common.Address { return &ch.account }
func (ch touchChange) revert(s *StateDB)          {}
func (ch touchChange) dirtied() *common.Address   { return &ch.account }
func (ch refundChange) revert(s *StateDB)         { s.refund = ch.prev }
func (ch refundChange) dirtied() *common.Address  { return nil }
func (ch addLogChange) revert(s *StateDB)         { s.logs = s.logs[:len(s.logs)-1] }
func (ch addLogChange) dirtied() *common.Address  { return nil }
func (ch accessAccountAdded) revert(s *StateDB)   { delete(s.accessList, ch.account) }
func (ch accessAccountAdded) dirtied() *common.Address {
	return nil
}
func (ch accessSlotAdded) revert(s *StateDB) {
	delete(s.accessList[ch.account], ch.slot)
}
func (ch accessSlotAdded) dirtied() *common.Address { return nil }
func (ch transientChange) revert(s *StateDB)        { s.transient.Set(ch.account, ch.key, ch.prev) }
func (ch transientChange) dirtied() *common.Address { return nil }

type journal struct {
	entries []journalEntry
	dirties map[common.Address]int
}

func (j *journal) append(e journalEntry) {
	j.entries = append(j.entries, e)
	if a := e.dirtied(); a != nil {
		j.dirties[*a]++
	}
}

func (j *journal) revertTo(s *StateDB, n int) {
	for i := len(j.entries) - 1; i >= n; i-- {
		e := j.entries[i]
		e.revert(s)
		if a := e.dirtied(); a != nil {
			if j.dirties[*a]--; j.dirties[*a] == 0 {
				delete(j.dirties, *a)
			}
		}
	}
	j.entries = j.entries[:n]
}

func (j *journal) reset() {
	j.entries = j.entries[:0]
	clear(j.dirties)
}

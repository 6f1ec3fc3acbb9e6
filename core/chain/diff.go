package chain

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/holiman/uint256"
)

// AccountDiff is the new value of one account after a mini-block: new values, not
// deltas, so applying a diff twice is harmless.
type AccountDiff struct {
	Address common.Address
	// Deleted means the account does not exist afterwards (EIP-161 removal of an
	// empty touched account, or self-destruction of a contract created in the same
	// transaction). Nonce, Balance, CodeHash and Storage are then zero.
	Deleted bool
	// StorageReset means every storage slot of the account was cleared before
	// Storage applies (the account was destroyed and possibly created again).
	StorageReset bool
	Nonce        uint64
	Balance      uint256.Int
	CodeHash     common.Hash
	// Code is set when the code changed in this diff (a new contract or an EIP-7702
	// delegation); otherwise the code behind CodeHash is already known.
	Code []byte
	// Storage holds the new values of changed slots in ascending key order; a zero
	// value deletes the slot.
	Storage []SlotDiff
}

// SlotDiff is one storage slot's new value.
type SlotDiff struct {
	Key   common.Hash
	Value common.Hash
}

// StateDiff is what a mini-block changed, accounts in ascending address order.
type StateDiff struct {
	Accounts []AccountDiff
}

// Sort puts accounts and slots in canonical order.
func (d *StateDiff) Sort() {
	slices.SortFunc(d.Accounts, func(a, b AccountDiff) int { return bytes.Compare(a.Address[:], b.Address[:]) })
	for i := range d.Accounts {
		if s := d.Accounts[i].Storage; len(s) > 1 {
			slices.SortFunc(s, func(a, b SlotDiff) int { return bytes.Compare(a.Key[:], b.Key[:]) })
		}
	}
}

// Validate checks the invariants a decoder cannot express: canonical order, no
// duplicates, deleted accounts empty, code matching its hash.
func (d *StateDiff) Validate() error {
	for i := range d.Accounts {
		a := &d.Accounts[i]
		if i > 0 && bytes.Compare(d.Accounts[i-1].Address[:], a.Address[:]) >= 0 {
			return fmt.Errorf("%w: accounts not in strictly ascending order at %s", ErrBadDiff, a.Address)
		}
		if a.Deleted && (a.Nonce != 0 || !a.Balance.IsZero() || len(a.Storage) != 0 || len(a.Code) != 0) {
			return fmt.Errorf("%w: deleted account %s carries values", ErrBadDiff, a.Address)
		}
		if a.Code != nil && crypto.Keccak256Hash(a.Code) != a.CodeHash {
			return fmt.Errorf("%w: code of %s does not match its hash", ErrBadDiff, a.Address)
		}
		for j := 1; j < len(a.Storage); j++ {
			if bytes.Compare(a.Storage[j-1].Key[:], a.Storage[j].Key[:]) >= 0 {
				return fmt.Errorf("%w: slots of %s not in strictly ascending order", ErrBadDiff, a.Address)
			}
		}
	}
	return nil
}

// ErrBadDiff is returned for a state diff that fails to decode or validate.
var ErrBadDiff = errors.New("bad state diff")

const diffVersion = 1

type accountDiffRLP struct {
	Address  common.Address
	Flags    uint8
	Nonce    uint64
	Balance  *uint256.Int
	CodeHash common.Hash
	Code     []byte
	Storage  []SlotDiff
}

const (
	flagDeleted      = 1 << 0
	flagStorageReset = 1 << 1
	flagHasCode      = 1 << 2
)

func (d *StateDiff) toRLP() []accountDiffRLP {
	out := make([]accountDiffRLP, len(d.Accounts))
	for i := range d.Accounts {
		a := &d.Accounts[i]
		var flags uint8
		if a.Deleted {
			flags |= flagDeleted
		}
		if a.StorageReset {
			flags |= flagStorageReset
		}
		if a.Code != nil {
			flags |= flagHasCode
		}
		out[i] = accountDiffRLP{Address: a.Address, Flags: flags, Nonce: a.Nonce, Balance: &a.Balance, CodeHash: a.CodeHash, Code: a.Code, Storage: a.Storage}
	}
	return out
}

func diffFromRLP(enc []accountDiffRLP) (*StateDiff, error) {
	d := &StateDiff{Accounts: make([]AccountDiff, len(enc))}
	for i := range enc {
		e := &enc[i]
		if e.Flags&^(flagDeleted|flagStorageReset|flagHasCode) != 0 {
			return nil, fmt.Errorf("%w: unknown account flags %#x", ErrBadDiff, e.Flags)
		}
		a := &d.Accounts[i]
		a.Address, a.Nonce, a.CodeHash, a.Storage = e.Address, e.Nonce, e.CodeHash, e.Storage
		a.Deleted = e.Flags&flagDeleted != 0
		a.StorageReset = e.Flags&flagStorageReset != 0
		if e.Flags&flagHasCode != 0 {
			a.Code = e.Code
			if a.Code == nil {
				a.Code = []byte{}
			}
		} else if len(e.Code) != 0 {
			return nil, fmt.Errorf("%w: code present without flag", ErrBadDiff)
		}
		if e.Balance != nil {
			a.Balance = *e.Balance
		}
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MarshalBinary encodes the diff: a version byte, the RLP body, and a CRC-32C of
// both.
func (d *StateDiff) MarshalBinary() ([]byte, error) {
	body, err := rlp.EncodeToBytes(d.toRLP())
	if err != nil {
		return nil, err
	}
	return sealChecksum(append([]byte{diffVersion}, body...)), nil
}

// UnmarshalBinary decodes and validates a diff written by MarshalBinary.
func (d *StateDiff) UnmarshalBinary(data []byte) error {
	body, err := openChecksum(data, diffVersion)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadDiff, err)
	}
	var enc []accountDiffRLP
	if err := rlp.DecodeBytes(body, &enc); err != nil {
		return fmt.Errorf("%w: %v", ErrBadDiff, err)
	}
	dec, err := diffFromRLP(enc)
	if err != nil {
		return err
	}
	*d = *dec
	return nil
}

func sealChecksum(b []byte) []byte {
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// openChecksum checks the trailing CRC-32C and the leading version byte and returns
// what lies between.
func openChecksum(data []byte, version byte) ([]byte, error) {
	if len(data) < 5 {
		return nil, errors.New("too short")
	}
	n := len(data) - 4
	if crc32.Checksum(data[:n], castagnoli) != binary.BigEndian.Uint32(data[n:]) {
		return nil, errors.New("checksum mismatch")
	}
	if data[0] != version {
		return nil, fmt.Errorf("unsupported version %d", data[0])
	}
	return data[1:n], nil
}

// MergeDiffs folds consecutive diffs into one with the same effect as applying them
// in order (later values win; a storage reset drops earlier slots).
func MergeDiffs(diffs []*StateDiff) *StateDiff {
	byAddr := make(map[common.Address]*AccountDiff)
	slots := make(map[common.Address]map[common.Hash]common.Hash)
	for _, d := range diffs {
		for i := range d.Accounts {
			a := d.Accounts[i]
			prev, ok := byAddr[a.Address]
			m := slots[a.Address]
			if a.StorageReset || a.Deleted || m == nil {
				m = make(map[common.Hash]common.Hash)
				slots[a.Address] = m
			}
			for _, s := range a.Storage {
				m[s.Key] = s.Value
			}
			merged := a
			merged.Storage = nil
			if ok {
				merged.StorageReset = a.StorageReset || a.Deleted || prev.StorageReset || prev.Deleted
				if merged.Code == nil && prev.Code != nil && prev.CodeHash == a.CodeHash {
					merged.Code = prev.Code
				}
			}
			byAddr[a.Address] = &merged
		}
	}
	out := &StateDiff{Accounts: make([]AccountDiff, 0, len(byAddr))}
	for addr, a := range byAddr {
		if !a.Deleted {
			for k, v := range slots[addr] {
				if a.StorageReset && v == (common.Hash{}) {
					continue
				}
				a.Storage = append(a.Storage, SlotDiff{Key: k, Value: v})
			}
		}
		out.Accounts = append(out.Accounts, *a)
	}
	out.Sort()
	return out
}

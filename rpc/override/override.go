// Package override holds the state and block overrides of eth_call and
// eth_estimateGas (their third and fourth parameters) with go-ethereum's
// semantics (internal/ethapi/override). The package and type names are
// go-ethereum's on purpose: JSON decoding errors name the Go type
// ("json: cannot unmarshal string into Go value of type
// override.StateOverride"), so Kestrel's messages are the same.
package override

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"sort"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/holiman/uint256"
)

// OverrideAccount is what a call sees of one account instead of its state.
// State replaces the whole storage, StateDiff changes single slots; giving
// both is an error.
type OverrideAccount struct {
	Nonce            *hexutil.Uint64             `json:"nonce"`
	Code             *hexutil.Bytes              `json:"code"`
	Balance          *hexutil.Big                `json:"balance"`
	State            map[common.Hash]common.Hash `json:"state"`
	StateDiff        map[common.Hash]common.Hash `json:"stateDiff"`
	MovePrecompileTo *common.Address             `json:"movePrecompileToAddress"`
}

// StateOverride maps accounts to their overrides.
type StateOverride map[common.Address]OverrideAccount

// State is what Apply writes the overrides into: a call's state before the
// call runs.
type State interface {
	SetNonce(addr common.Address, nonce uint64)
	SetCode(addr common.Address, code []byte)
	SetBalance(addr common.Address, balance *uint256.Int)
	// SetStorage replaces the account's whole storage with storage, keeping
	// its nonce, balance and code (creating the account if it does not exist).
	SetStorage(addr common.Address, storage map[common.Hash]common.Hash)
	SetState(addr common.Address, key, value common.Hash)
	// Finalise ends the overrides as if they had been a transaction of their
	// own, without removing empty accounts.
	Finalise()
}

// Apply writes the overrides into st in address order, as go-ethereum does, and
// moves precompiles in precompiles (the set the call's EVM will use) where
// asked. It stops at the first error, with go-ethereum's message; the accounts
// before it are then already written. A nil receiver does nothing.
func (so *StateOverride) Apply(st State, precompiles vm.PrecompiledContracts) error {
	if so == nil {
		return nil
	}
	addrs := make([]common.Address, 0, len(*so))
	for addr := range *so {
		addrs = append(addrs, addr)
	}
	sort.Slice(addrs, func(i, j int) bool { return bytes.Compare(addrs[i][:], addrs[j][:]) < 0 })

	movedTo := make(map[common.Address]bool) // destinations of moved precompiles
	for _, addr := range addrs {
		acct := (*so)[addr]
		if movedTo[addr] {
			return fmt.Errorf("account %s has already been overridden by a precompile", addr.Hex())
		}
		contract, isPrecompile := precompiles[addr]
		if dst := acct.MovePrecompileTo; dst != nil {
			if !isPrecompile {
				return fmt.Errorf("account %s is not a precompile", addr.Hex())
			}
			if _, overridden := (*so)[*dst]; overridden {
				return fmt.Errorf("account %s is already overridden", dst.Hex())
			}
			precompiles[*dst] = contract
			movedTo[*dst] = true
		}
		// An overridden precompile address is a plain account for the call.
		if isPrecompile {
			delete(precompiles, addr)
		}
		if acct.Nonce != nil {
			st.SetNonce(addr, uint64(*acct.Nonce))
		}
		if acct.Code != nil {
			st.SetCode(addr, *acct.Code)
		}
		if acct.Balance != nil {
			bal, _ := uint256.FromBig((*big.Int)(acct.Balance))
			st.SetBalance(addr, bal)
		}
		if acct.State != nil && acct.StateDiff != nil {
			return fmt.Errorf("account %s has both 'state' and 'stateDiff'", addr.Hex())
		}
		if acct.State != nil {
			st.SetStorage(addr, acct.State)
		}
		for key, value := range acct.StateDiff {
			st.SetState(addr, key, value)
		}
	}
	st.Finalise()
	return nil
}

// Check reports the error Apply would return for the precompile set
// precompiles, without writing anything (precompiles is not changed).
func (so *StateOverride) Check(precompiles vm.PrecompiledContracts) error {
	pc := make(vm.PrecompiledContracts, len(precompiles))
	for addr, c := range precompiles {
		pc[addr] = c
	}
	return so.Apply(nopState{}, pc)
}

type nopState struct{}

func (nopState) SetNonce(common.Address, uint64)                        {}
func (nopState) SetCode(common.Address, []byte)                         {}
func (nopState) SetBalance(common.Address, *uint256.Int)                {}
func (nopState) SetStorage(common.Address, map[common.Hash]common.Hash) {}
func (nopState) SetState(common.Address, common.Hash, common.Hash)      {}
func (nopState) Finalise()                                              {}

// BlockOverrides are header fields a call sees instead of its block's. The
// fields have no JSON tags, as go-ethereum's: names match case-insensitively
// ("number", "time", "gasLimit", "feeRecipient", "prevRandao",
// "baseFeePerGas", "blobBaseFee", ...).
type BlockOverrides struct {
	Number        *hexutil.Big
	Difficulty    *hexutil.Big // no effect after the merge but for DIFFICULTY's context field
	Time          *hexutil.Uint64
	GasLimit      *hexutil.Uint64
	FeeRecipient  *common.Address
	PrevRandao    *common.Hash
	BaseFeePerGas *hexutil.Big
	BlobBaseFee   *hexutil.Big
	BeaconRoot    *common.Hash       // refused for eth_call and eth_estimateGas
	Withdrawals   *types.Withdrawals // refused for eth_call and eth_estimateGas
}

// Check reports the overrides eth_call and eth_estimateGas refuse, with
// go-ethereum's messages. A nil receiver is fine.
func (bo *BlockOverrides) Check() error {
	if bo == nil {
		return nil
	}
	if bo.BeaconRoot != nil {
		return errors.New(`block override "beaconRoot" is not supported for this RPC method`)
	}
	if bo.Withdrawals != nil {
		return errors.New(`block override "withdrawals" is not supported for this RPC method`)
	}
	return nil
}

// Apply writes the overrides into a block context (after Check's errors). A
// nil receiver does nothing.
func (bo *BlockOverrides) Apply(ctx *vm.BlockContext) error {
	if err := bo.Check(); err != nil || bo == nil {
		return err
	}
	if bo.Number != nil {
		ctx.BlockNumber = new(big.Int).Set(bo.Number.ToInt())
	}
	if bo.Difficulty != nil {
		ctx.Difficulty = new(big.Int).Set(bo.Difficulty.ToInt())
	}
	if bo.Time != nil {
		ctx.Time = uint64(*bo.Time)
	}
	if bo.GasLimit != nil {
		ctx.GasLimit = uint64(*bo.GasLimit)
	}
	if bo.FeeRecipient != nil {
		ctx.Coinbase = *bo.FeeRecipient
	}
	if bo.PrevRandao != nil {
		r := *bo.PrevRandao
		ctx.Random = &r
	}
	if bo.BaseFeePerGas != nil {
		ctx.BaseFee = new(big.Int).Set(bo.BaseFeePerGas.ToInt())
	}
	if bo.BlobBaseFee != nil {
		ctx.BlobBaseFee = new(big.Int).Set(bo.BlobBaseFee.ToInt())
	}
	return nil
}

// NumberAndTime are the block number and time a call runs at: number and time
// of its block unless overridden.
func (bo *BlockOverrides) NumberAndTime(number *big.Int, time uint64) (*big.Int, uint64) {
	if bo == nil {
		return number, time
	}
	if bo.Number != nil {
		number = bo.Number.ToInt()
	}
	if bo.Time != nil {
		time = uint64(*bo.Time)
	}
	return number, time
}

package mempool

import (
	"errors"

	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/txpool"
	"github.com/ethereum/go-ethereum/core/txpool/legacypool"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
)

// Errors returned by the pool. Wherever go-ethereum has an exported error for
// the same condition, the pool returns (a wrap of) that very value, so both
// errors.Is against go-ethereum's variables and the message text that RPC
// clients see match go-ethereum. Returned errors are often wrapped with detail
// ("nonce too low: next nonce 5, tx nonce 3"); compare them with errors.Is.
var (
	// Decoding and envelope.

	// ErrOversizedData: the encoded transaction is larger than Config.MaxTxSize.
	ErrOversizedData = txpool.ErrOversizedData // "oversized data"
	// ErrTxTypeNotSupported: unknown type, blob (type 3, never accepted), deposit
	// or a type whose fork is not active in the open block.
	ErrTxTypeNotSupported = core.ErrTxTypeNotSupported // "transaction type not supported"
	// ErrInvalidChainId: the transaction is signed for another chain. Returned
	// errors wrap ErrInvalidSender too ("invalid sender: invalid chain id for
	// signer: have 1 want 31337", as go-ethereum's pool).
	ErrInvalidChainId = types.ErrInvalidChainId // "invalid chain id for signer"
	// ErrUnprotectedTx: legacy transaction without EIP-155 replay protection.
	ErrUnprotectedTx = errors.New("only replay-protected (EIP-155) transactions allowed over RPC")
	// ErrInvalidSender: the signature does not recover to a sender. Returned
	// errors wrap both this and the cause (often ErrInvalidSig).
	ErrInvalidSender = txpool.ErrInvalidSender // "invalid sender"
	// ErrInvalidSig: the signature values are out of range.
	ErrInvalidSig = types.ErrInvalidSig // "invalid transaction v, r, s values"

	// Stateless validation.

	ErrGasLimit                = txpool.ErrGasLimit             // "exceeds block gas limit"
	ErrGasLimitTooHigh         = core.ErrGasLimitTooHigh        // "transaction gas limit too high" (EIP-7825, Osaka)
	ErrNegativeValue           = txpool.ErrNegativeValue        // "negative value"
	ErrFeeCapVeryHigh          = core.ErrFeeCapVeryHigh         // "max fee per gas higher than 2^256-1"
	ErrTipVeryHigh             = core.ErrTipVeryHigh            // "max priority fee per gas higher than 2^256-1"
	ErrTipAboveFeeCap          = core.ErrTipAboveFeeCap         // "max priority fee per gas higher than max fee per gas"
	ErrNonceMax                = core.ErrNonceMax               // "nonce has max value"
	ErrIntrinsicGas            = core.ErrIntrinsicGas           // "intrinsic gas too low"
	ErrFloorDataGas            = core.ErrFloorDataGas           // "insufficient gas for floor data gas cost" (EIP-7623)
	ErrGasUintOverflow         = core.ErrGasUintOverflow        // "gas uint64 overflow"
	ErrMaxInitCodeSizeExceeded = vm.ErrMaxInitCodeSizeExceeded  // "max initcode size exceeded" (EIP-3860)
	ErrEmptyAuthList           = emptyAuthList{}                // "set code tx must have at least one authorization tuple" (go-ethereum's pool's text; errors.Is core.ErrEmptyAuthList)
	ErrSetCodeTxCreate         = core.ErrSetCodeTxCreate        // "EIP-7702 transaction cannot be used to create contract"
	ErrUnderpriced             = txpool.ErrUnderpriced          // "transaction underpriced"
	ErrTxGasPriceTooLow        = txpool.ErrTxGasPriceTooLow     // "transaction gas price below minimum" (tip below Config.MinTipCap)
	ErrReplaceUnderpriced      = txpool.ErrReplaceUnderpriced   // "replacement transaction underpriced"
	ErrAlreadyKnown            = txpool.ErrAlreadyKnown         // "already known"
	ErrNonceTooLow             = core.ErrNonceTooLow            // "nonce too low"
	ErrNonceTooHigh            = core.ErrNonceTooHigh           // "nonce too high" (more than Config.MaxNonceGap ahead)
	ErrInsufficientFunds       = core.ErrInsufficientFunds      // "insufficient funds for gas * price + value"
	ErrAccountLimitExceeded    = txpool.ErrAccountLimitExceeded // "account limit exceeded" (Config.AccountSlots)
	ErrTxPoolOverflow          = legacypool.ErrTxPoolOverflow   // "txpool is full" (Config.GlobalSlots)

	// ErrNilTx: Add was given a nil *Tx or a *Tx without a transaction.
	ErrNilTx = errors.New("nil transaction")
)

// emptyAuthList is ErrEmptyAuthList: go-ethereum's pool refuses a set-code
// transaction without authorizations with its own unexported error text, not
// with core.ErrEmptyAuthList (the state transition's), which it wraps.
type emptyAuthList struct{}

func (emptyAuthList) Error() string { return "set code tx must have at least one authorization tuple" }
func (emptyAuthList) Unwrap() error { return core.ErrEmptyAuthList }

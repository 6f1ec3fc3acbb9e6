package rpc

import (
	"context"
	"errors"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/rpc/override"
)

// BlockTag names a block relative to the node's view of the chain.
type BlockTag int

const (
	// TagNumber selects the block by BlockRef.Number.
	TagNumber BlockTag = iota
	// TagLatest is the newest sealed block (header, state root and receipts known).
	TagLatest
	// TagPending is the newest mini-block: the open block's state so far.
	TagPending
	// TagSafe and TagFinalized are the newest safe and finalized blocks. Until L1
	// settlement exists both equal TagLatest.
	TagSafe
	TagFinalized
	// TagEarliest is the genesis block.
	TagEarliest
	// TagHash selects the block by BlockRef.Hash.
	TagHash
)

// BlockRef selects a block by tag, number or hash (EIP-1898).
type BlockRef struct {
	Tag              BlockTag
	Number           uint64
	Hash             common.Hash
	RequireCanonical bool
}

// Block is a sealed block, or the open block when Sealed is false (then Hash,
// ParentHash, Root, TxHash, ReceiptHash and Bloom of Header are not final and the
// RPC layer reports them as null where go-ethereum does for pending blocks).
type Block struct {
	Header   *types.Header
	Hash     common.Hash
	Sealed   bool
	Txs      []*types.Transaction
	Senders  []common.Address
	Receipts []*types.Receipt // fully derived: TxHash, BlockHash (zero when unsealed), indices, ContractAddress, EffectiveGasPrice, log positions
	Size     uint64           // RLP size of the block as go-ethereum's types.Block.Size computes it
}

// TxInfo locates a transaction.
type TxInfo struct {
	Tx          *types.Transaction
	Sender      common.Address
	BlockNumber uint64
	BlockHash   common.Hash // zero when the block is not sealed yet
	Sealed      bool
	Index       uint64
	BaseFee     *big.Int // base fee of the containing block, for the effective gas price
	Pending     bool     // true when the transaction is in the mempool, not in any mini-block
	Time        uint64   // timestamp of an unsealed containing block (a sealed one's header has it)
}

// ReceiptInfo is a receipt with what eth_getTransactionReceipt prints besides it.
type ReceiptInfo struct {
	Receipt *types.Receipt // fully derived, as in Block.Receipts
	Tx      *types.Transaction
	From    common.Address
	Sealed  bool // false: BlockHash is not known yet and is printed as null
}

// CallMsg is a message for eth_call and eth_estimateGas after the RPC layer has
// applied go-ethereum's defaults for transaction arguments.
type CallMsg struct {
	From                  common.Address
	To                    *common.Address
	Gas                   uint64 // 0: the backend's cap
	GasPrice              *big.Int
	GasFeeCap             *big.Int
	GasTipCap             *big.Int
	Value                 *big.Int
	Data                  []byte
	AccessList            types.AccessList
	AuthList              []types.SetCodeAuthorization
	Nonce                 *uint64
	SkipNonceAndFeeChecks bool // true when no fee fields were given, as go-ethereum's eth_call does
	// BlobHashes are the call's blob versioned hashes: non-nil (even empty)
	// makes it a blob call, as "blobVersionedHashes" does in go-ethereum.
	BlobHashes []common.Hash
	// BlobFeeCap is maxFeePerBlobGas; zero when blob hashes are given without
	// it, nil otherwise.
	BlobFeeCap *big.Int
	// StateOverrides and BlockOverrides are the third and fourth parameters of
	// eth_call and eth_estimateGas (nil: none), applied by the backend as
	// go-ethereum does.
	StateOverrides *override.StateOverride
	BlockOverrides *override.BlockOverrides
}

// AccountResult is the answer to eth_getProof.
type AccountResult struct {
	Address      common.Address
	AccountProof [][]byte
	Balance      *uint256.Int
	CodeHash     common.Hash
	Nonce        uint64
	StorageHash  common.Hash
	StorageProof []StorageResult
}

// StorageResult is one storage slot's proof.
type StorageResult struct {
	Key   common.Hash
	Value common.Hash
	Proof [][]byte
}

// RevertError is returned by Call and EstimateGas when execution reverted; the
// RPC layer answers with code 3 and the revert data, as go-ethereum does.
type RevertError struct {
	Reason string // decoded Error(string) or Panic(uint256) reason, if any
	Data   []byte
}

func (e *RevertError) Error() string {
	if e.Reason != "" {
		return "execution reverted: " + e.Reason
	}
	return "execution reverted"
}

// Errors with fixed JSON-RPC meanings.
var (
	// ErrUnknownBlock: the block does not exist (the RPC layer answers null where
	// go-ethereum does, and an error otherwise).
	ErrUnknownBlock = errors.New("header not found")
	// ErrPrunedHistory: the block exists but this node does not keep its body
	// (a replica bootstrapped from a snapshot starts its history there). The
	// answer is go-ethereum's for expired history: code 4444.
	ErrPrunedHistory = &Error{Code: 4444, Message: "pruned history unavailable"}
	// ErrStateUnavailable: the block exists but its state is no longer kept.
	ErrStateUnavailable = errors.New("historical state not available")
)

// Backend is what the handler set needs from a node. The sequencer implements it
// today; replicas and full nodes implement it later. Every method is safe for
// concurrent use and answers from a consistent view: one call sees one block's or
// one mini-block's state, never a mix.
type Backend interface {
	ChainID() *big.Int
	// ChainConfig is the chain's configuration. The RPC layer uses it for the next
	// block's base fee (eip1559.CalcBaseFee) in eth_feeHistory and to derive senders
	// when Block.Senders is incomplete.
	ChainConfig() *params.ChainConfig
	ClientVersion() string
	// HeadNumber is the newest sealed block's number.
	HeadNumber() uint64
	// BlockByRef returns a block with its transactions and receipts, or
	// ErrUnknownBlock. TagPending returns the open block.
	BlockByRef(ctx context.Context, ref BlockRef) (*Block, error)
	// HeaderByRef returns a header and its hash without transactions.
	HeaderByRef(ctx context.Context, ref BlockRef) (*types.Header, common.Hash, error)

	Balance(ctx context.Context, addr common.Address, ref BlockRef) (*uint256.Int, error)
	Nonce(ctx context.Context, addr common.Address, ref BlockRef) (uint64, error)
	Code(ctx context.Context, addr common.Address, ref BlockRef) ([]byte, error)
	Storage(ctx context.Context, addr common.Address, slot common.Hash, ref BlockRef) (common.Hash, error)
	Proof(ctx context.Context, addr common.Address, slots []common.Hash, ref BlockRef) (*AccountResult, error)

	// Call executes msg on the state of ref without changing it. A revert returns
	// *RevertError together with the result data.
	Call(ctx context.Context, msg *CallMsg, ref BlockRef) ([]byte, error)
	// EstimateGas finds the smallest gas limit with which msg succeeds.
	EstimateGas(ctx context.Context, msg *CallMsg, ref BlockRef) (uint64, error)
	// GasCap is the gas limit used for eth_call when none is given.
	GasCap() uint64
	// SuggestTipCap is the priority fee eth_maxPriorityFeePerGas returns.
	SuggestTipCap(ctx context.Context) *big.Int

	// SendRawTransaction validates and admits a signed transaction. Errors carry
	// go-ethereum's messages (see package mempool).
	SendRawTransaction(ctx context.Context, raw []byte) (common.Hash, error)
	// SendRawTransactionSync admits the transaction and waits until its mini-block is
	// durable, then returns its receipt; on timeout it returns ErrSyncTimeout.
	SendRawTransactionSync(ctx context.Context, raw []byte, timeout time.Duration) (*ReceiptInfo, error)

	// Transaction returns where a transaction is, or nil when unknown.
	Transaction(ctx context.Context, hash common.Hash) (*TxInfo, error)
	// Receipt returns a receipt of a transaction in a sealed block, or nil.
	Receipt(ctx context.Context, hash common.Hash) (*ReceiptInfo, error)
}

// ErrSyncTimeout is returned by SendRawTransactionSync when the receipt did not
// arrive within the timeout; the transaction stays in the pool (EIP-7966 code 4).
var ErrSyncTimeout = errors.New("the transaction was added to the mempool but wasn't processed in the given timeout")

// BatchSender is an optional extension of Backend. When the backend implements it,
// a JSON-RPC batch carrying several eth_sendRawTransaction calls hands all of their
// (hex-decoded) transactions to one SendRawTransactions call, so that the pool can
// decode them and recover their senders in parallel and take its locks once. It
// returns one hash and one error per raw transaction, in order; the errors carry the
// same messages SendRawTransaction would return. Single requests, and batches with
// only one such call, still use SendRawTransaction.
type BatchSender interface {
	SendRawTransactions(ctx context.Context, raws [][]byte) ([]common.Hash, []error)
}

// BaseFeeCalculator is an optional extension of Backend for chains whose EIP-1559
// parameters differ from go-ethereum's defaults: eth_feeHistory then asks it for
// the base fee of the block after a header instead of eip1559.CalcBaseFee.
type BaseFeeCalculator interface {
	NextBaseFee(parent *types.Header) *big.Int
}

// Package exec runs transactions through go-ethereum's interpreter over Kestrel's
// state. Executor is the seam between the sequencer and an execution engine:
// Sequential is the reference engine, kept forever; a parallel engine must
// produce byte-identical receipts and diffs.
package exec

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/state"
)

// Tx is a transaction with its already recovered sender.
type Tx struct {
	Tx     *types.Transaction
	Sender common.Address
	// Msg, when set, is the message to apply instead of one built from Tx
	// (which may then be nil): Ethereum's state tests give messages, not
	// signed transactions.
	Msg *core.Message
}

// message is the message the transaction applies.
func (t *Tx) message(baseFee *big.Int) *core.Message {
	if t.Msg != nil {
		return t.Msg
	}
	return Message(t.Tx, t.Sender, baseFee)
}

// gas is the transaction's gas limit.
func (t *Tx) gas() uint64 {
	if t.Msg != nil {
		return t.Msg.GasLimit
	}
	return t.Tx.Gas()
}

// Env is the block a request executes in.
type Env struct {
	Config *params.ChainConfig
	Block  chain.BlockEnv
	// GetHash answers BLOCKHASH; it may block until a recent hash is known.
	GetHash vm.GetHashFunc
	// Context, when set, is the EVM block context to use instead of the one
	// derived from Block (state tests set every field themselves). Block's
	// GasLimit still bounds the request's gas.
	Context *vm.BlockContext
	// TouchCoinbase adds zero to the coinbase after each applied transaction,
	// as go-ethereum's state-test runner does (it matters when the coinbase
	// is empty or self-destructed). Chains never set it.
	TouchCoinbase bool
}

// Request is one mini-block's worth of work.
type Request struct {
	Txs []Tx
	// GasUsed is the block's cumulative gas before this mini-block.
	GasUsed uint64
	// BeaconRoot runs the EIP-4788 system call (zero root) before the transactions.
	BeaconRoot bool
	// ParentHash, when set, runs the EIP-2935 system call with it before the
	// transactions.
	ParentHash *common.Hash
	// Lazy is the EIP-2935 slot still waiting for the parent hash, if any.
	Lazy *state.LazySlot
}

// Rejection is a transaction the executor left out, with the reason.
type Rejection struct {
	Tx  Tx
	Err error
	// Retry is true when the transaction may fit a later block (block gas full).
	Retry bool
}

// Result is what a request produced.
type Result struct {
	Txs      []Tx
	Receipts []*chain.Receipt
	Rejected []Rejection
	Diff     *chain.StateDiff
	GasUsed  uint64 // cumulative in the block after this mini-block
}

// Executor executes mini-blocks. Implementations must be deterministic: the same
// reader contents, env and request give the same result, byte for byte.
type Executor interface {
	Execute(ctx context.Context, r state.Reader, env *Env, req *Request) (*Result, error)
}

// BlockContext is the EVM block context of env.
func BlockContext(env *Env) vm.BlockContext {
	if env.Context != nil {
		return *env.Context
	}
	random := env.Block.Random
	return vm.BlockContext{
		CanTransfer: core.CanTransfer,
		Transfer:    core.Transfer,
		GetHash:     env.GetHash,
		Coinbase:    env.Block.Coinbase,
		GasLimit:    env.Block.GasLimit,
		BlockNumber: new(big.Int).SetUint64(env.Block.Number),
		Time:        env.Block.Time,
		Difficulty:  new(big.Int),
		BaseFee:     new(big.Int).Set(env.Block.BaseFee),
		BlobBaseFee: big.NewInt(params.BlobTxMinBlobGasprice),
		Random:      &random,
	}
}

// Message turns a transaction with a known sender into a core.Message without
// recovering the signature again.
func Message(tx *types.Transaction, sender common.Address, baseFee *big.Int) *core.Message {
	msg := &core.Message{
		From: sender, To: tx.To(), Nonce: tx.Nonce(), Value: tx.Value(), GasLimit: tx.Gas(),
		GasPrice: new(big.Int).Set(tx.GasPrice()), GasFeeCap: tx.GasFeeCap(), GasTipCap: tx.GasTipCap(),
		Data: tx.Data(), AccessList: tx.AccessList(), SetCodeAuthorizations: tx.SetCodeAuthorizations(),
		BlobHashes: tx.BlobHashes(), BlobGasFeeCap: tx.BlobGasFeeCap(),
	}
	if baseFee != nil {
		msg.GasPrice.Add(msg.GasTipCap, baseFee)
		if msg.GasPrice.Cmp(msg.GasFeeCap) > 0 {
			msg.GasPrice.Set(msg.GasFeeCap)
		}
	}
	return msg
}

// Sequential is the reference executor: one transaction after another on one
// goroutine.
type Sequential struct{}

// Execute implements Executor.
func (Sequential) Execute(ctx context.Context, r state.Reader, env *Env, req *Request) (*Result, error) {
	if env.Block.GasLimit < req.GasUsed {
		return nil, fmt.Errorf("block gas used %d above limit %d", req.GasUsed, env.Block.GasLimit)
	}
	sdb := state.NewStateDB(r)
	sdb.SetLazySlot(req.Lazy)
	evm := vm.NewEVM(BlockContext(env), sdb, env.Config, vm.Config{})
	if err := SystemCalls(evm, sdb, req); err != nil {
		return nil, err
	}
	res := &Result{GasUsed: req.GasUsed}
	gp := core.NewGasPool(env.Block.GasLimit - req.GasUsed)
	touch := env.TouchCoinbase
	for _, tx := range req.Txs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		receipt, err := applyTx(evm, sdb, gp, tx, env.Block.BaseFee, res.GasUsed, touch)
		if err != nil {
			res.Rejected = append(res.Rejected, Rejection{Tx: tx, Err: err, Retry: errors.Is(err, core.ErrGasLimitReached)})
			continue
		}
		res.GasUsed = receipt.CumulativeGasUsed
		res.Txs = append(res.Txs, tx)
		res.Receipts = append(res.Receipts, receipt)
	}
	res.Diff = sdb.Diff()
	return res, nil
}

// SystemCalls runs the block-start system calls a request asks for.
func SystemCalls(evm *vm.EVM, sdb *state.StateDB, req *Request) error {
	if req.BeaconRoot {
		core.ProcessBeaconBlockRoot(common.Hash{}, evm)
	}
	if req.ParentHash != nil {
		if sdb.GetCodeSize(params.HistoryStorageAddress) == 0 {
			return errors.New("EIP-2935 history contract missing from state")
		}
		// The slot is about to be written for real; reads no longer wait.
		sdb.SetLazySlot(nil)
		core.ProcessParentBlockHash(*req.ParentHash, evm)
	}
	return nil
}

// txStateDB is what applying a transaction needs of a vm.StateDB beyond the
// interface: both engines' StateDBs have it.
type txStateDB interface {
	vm.StateDB
	RevertToSnapshot(int)
	TakeLogs() []*types.Log
}

// ApplyTx executes one transaction; on error the state and gas pool are left as
// they were.
func ApplyTx(evm *vm.EVM, sdb *state.StateDB, gp *core.GasPool, tx Tx, baseFee *big.Int, cumulative uint64) (*chain.Receipt, error) {
	return applyTx(evm, sdb, gp, tx, baseFee, cumulative, false)
}

// applyTx is ApplyTx on either engine's StateDB (the sequential one, or a
// parallel task's), optionally touching the coinbase (Env.TouchCoinbase).
// Accounts left empty are deleted from Spurious Dragon (EIP-158) on.
func applyTx(evm *vm.EVM, sdb txStateDB, gp *core.GasPool, tx Tx, baseFee *big.Int, cumulative uint64, touchCoinbase bool) (*chain.Receipt, error) {
	msg := tx.message(baseFee)
	snap := sdb.Snapshot()
	gas := gp.Snapshot()
	evm.SetTxContext(core.NewEVMTxContext(msg))
	result, err := core.ApplyMessage(evm, msg, gp)
	if err != nil {
		sdb.RevertToSnapshot(snap)
		sdb.TakeLogs()
		gp.Set(gas)
		return nil, err
	}
	if touchCoinbase {
		sdb.AddBalance(evm.Context.Coinbase, new(uint256.Int), tracing.BalanceChangeUnspecified)
	}
	sdb.Finalise(evm.ChainConfig().IsEIP158(evm.Context.BlockNumber))
	status := types.ReceiptStatusSuccessful
	if result.Failed() {
		status = types.ReceiptStatusFailed
	}
	logs := sdb.TakeLogs()
	for _, l := range logs {
		l.TxHash, l.BlockHash = common.Hash{}, common.Hash{}
	}
	return &chain.Receipt{Status: status, CumulativeGasUsed: cumulative + result.UsedGas, GasUsed: result.UsedGas, Logs: logs}, nil
}

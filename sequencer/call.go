package sequencer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/exec"
	"github.com/kestrel-l2/kestrel/core/state"
	"github.com/kestrel-l2/kestrel/rpc"
	"github.com/kestrel-l2/kestrel/rpc/override"
)

// callEnv is the state and block a call runs against, with the call's
// overrides.
type callEnv struct {
	r       state.Reader
	env     chain.BlockEnv
	lazy    *state.LazySlot
	release func()

	// blockCtx is the block context of the call: env's, with the block
	// overrides applied.
	blockCtx vm.BlockContext
	// overrides are the state overrides, applied to each run's StateDB.
	overrides *override.StateOverride
	rules     params.Rules
	// precompiles, when set, is the precompile set of the EVM (after
	// movePrecompileToAddress overrides).
	precompiles vm.PrecompiledContracts
}

func (s *Sequencer) callEnv(ref rpc.BlockRef) (*callEnv, error) {
	r, env, release, err := s.reader(ref)
	if err != nil {
		return nil, err
	}
	ce := &callEnv{r: r, env: env, release: release}
	if ref.Tag == rpc.TagPending {
		if p := s.index.getPending(); p != nil && !p.parentDone {
			ce.lazy = s.lazyParentSlot(env.Number)
		}
	}
	ce.blockCtx = exec.BlockContext(s.execEnv(env))
	// As go-ethereum's GetHashFn: no hash for the block itself or later ones,
	// which BLOCKHASH can ask for under an overridden block number.
	getHash := ce.blockCtx.GetHash
	ce.blockCtx.GetHash = func(n uint64) common.Hash {
		if n >= env.Number {
			return common.Hash{}
		}
		return getHash(n)
	}
	return ce, nil
}

// applyOverrides applies m's block overrides to the block context and checks
// its state overrides, as go-ethereum's DoCall and DoEstimateGas do before
// running anything. With setPrecompiles (eth_call) the EVM gets the precompile
// set the overrides leave; go-ethereum's gas estimator keeps the default set.
func (s *Sequencer) applyOverrides(ce *callEnv, m *rpc.CallMsg, setPrecompiles bool) error {
	if err := m.BlockOverrides.Apply(&ce.blockCtx); err != nil {
		return err
	}
	ce.rules = s.chainCf.Rules(ce.blockCtx.BlockNumber, ce.blockCtx.Random != nil, ce.blockCtx.Time)
	if m.StateOverrides == nil {
		return nil
	}
	precompiles := vm.ActivePrecompiledContracts(ce.rules)
	if err := m.StateOverrides.Apply(overrideState{state.NewStateDB(ce.r)}, precompiles); err != nil {
		return err
	}
	ce.overrides = m.StateOverrides
	if setPrecompiles {
		ce.precompiles = precompiles
	}
	return nil
}

// stateDB is a fresh StateDB over the call's state with the state overrides
// applied.
func (ce *callEnv) stateDB() *state.StateDB {
	sdb := state.NewStateDB(ce.r)
	sdb.SetLazySlot(ce.lazy)
	if ce.overrides != nil {
		// Checked in applyOverrides: it cannot fail now.
		_ = ce.overrides.Apply(overrideState{sdb}, vm.ActivePrecompiledContracts(ce.rules))
	}
	return sdb
}

// overrideState writes state overrides into a StateDB.
type overrideState struct{ *state.StateDB }

func (o overrideState) SetNonce(addr common.Address, nonce uint64) {
	o.StateDB.SetNonce(addr, nonce, tracing.NonceChangeUnspecified)
}

func (o overrideState) SetCode(addr common.Address, code []byte) {
	o.StateDB.SetCode(addr, code, tracing.CodeChangeUnspecified)
}

func (o overrideState) SetBalance(addr common.Address, balance *uint256.Int) {
	o.SubBalance(addr, o.GetBalance(addr), tracing.BalanceChangeUnspecified)
	o.AddBalance(addr, balance, tracing.BalanceChangeUnspecified)
}

func (o overrideState) SetState(addr common.Address, key, value common.Hash) {
	o.StateDB.SetState(addr, key, value)
}

// SetStorage replaces the account's storage as go-ethereum's StateDB.SetStorage:
// the account is destroyed (its stored slots no longer apply) and created again
// with its nonce, balance and code and the given slots.
func (o overrideState) SetStorage(addr common.Address, storage map[common.Hash]common.Hash) {
	existed := o.Exist(addr)
	var (
		nonce   uint64
		balance uint256.Int
		code    []byte
	)
	if existed {
		nonce, balance, code = o.GetNonce(addr), *o.GetBalance(addr), o.GetCode(addr)
		o.SelfDestruct(addr)
		o.StateDB.Finalise(false)
	}
	o.CreateAccount(addr)
	for key, value := range storage {
		o.StateDB.SetState(addr, key, value)
	}
	if existed {
		o.SetCode(addr, code)
		o.SetNonce(addr, nonce)
		o.SetBalance(addr, &balance)
	}
}

func (o overrideState) Finalise() { o.StateDB.Finalise(false) }

// message turns call arguments into a core.Message as go-ethereum's
// TransactionArgs.ToMessage does for eth_call: the fee fields as the RPC layer
// derived them (CallDefaults), nonce zero unless given, no nonce or EOA checks.
func message(m *rpc.CallMsg, gas uint64) *core.Message {
	msg := &core.Message{From: m.From, To: m.To, Value: m.Value, GasLimit: gas, Data: m.Data, AccessList: m.AccessList,
		GasPrice: m.GasPrice, GasFeeCap: m.GasFeeCap, GasTipCap: m.GasTipCap,
		BlobHashes: m.BlobHashes, BlobGasFeeCap: m.BlobFeeCap,
		SetCodeAuthorizations: m.AuthList, SkipNonceChecks: true, SkipTransactionChecks: true}
	if msg.Value == nil {
		msg.Value = new(big.Int)
	}
	if m.Nonce != nil {
		msg.Nonce = *m.Nonce
	}
	if msg.GasPrice == nil {
		msg.GasPrice = new(big.Int)
	}
	if msg.GasFeeCap == nil {
		msg.GasFeeCap = msg.GasPrice
	}
	if msg.GasTipCap == nil {
		msg.GasTipCap = msg.GasPrice
	}
	return msg
}

// errAborted is the error of a run stopped by the call timeout.
type errAborted struct{ timeout time.Duration }

func (e errAborted) Error() string { return fmt.Sprintf("execution aborted (timeout = %v)", e.timeout) }

// run executes msg once on a fresh StateDB over the call's state, as
// go-ethereum's eth_call and gas estimator do: NoBaseFee, the base fee zero
// when the message pays no gas price and the blob base fee zero when it pays
// no blob gas price. The error is the consensus error that kept msg from
// being applied, unwrapped, or errAborted.
func (s *Sequencer) run(ctx context.Context, ce *callEnv, msg *core.Message) (*core.ExecutionResult, error) {
	sdb := ce.stateDB()
	blockCtx := ce.blockCtx
	if msg.GasPrice.Sign() == 0 {
		blockCtx.BaseFee = new(big.Int)
	}
	if msg.BlobGasFeeCap != nil && msg.BlobGasFeeCap.BitLen() == 0 {
		blockCtx.BlobBaseFee = new(big.Int)
	}
	evm := vm.NewEVM(blockCtx, sdb, s.chainCf, vm.Config{NoBaseFee: true})
	if ce.precompiles != nil {
		evm.SetPrecompiles(ce.precompiles)
	}
	defer cancelOnDone(ctx, evm)()
	res, err := core.ApplyMessage(evm, msg, core.NewGasPool(math.MaxUint64))
	if evm.Cancelled() {
		return nil, errAborted{s.cfg.CallTimeout}
	}
	return res, err
}

func revertError(res *core.ExecutionResult) error {
	data := res.Revert()
	reason, errUnpack := abi.UnpackRevert(data)
	e := &rpc.RevertError{Data: data}
	if errUnpack == nil {
		e.Reason = reason
	}
	return e
}

func (s *Sequencer) callGas(m *rpc.CallMsg) uint64 {
	gas := m.Gas
	if gas == 0 || gas > s.cfg.CallGasCap {
		gas = s.cfg.CallGasCap
	}
	return gas
}

func (b *backend) Call(ctx context.Context, m *rpc.CallMsg, ref rpc.BlockRef) ([]byte, error) {
	s := b.s
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	ce, err := s.callEnv(ref)
	if err != nil {
		return nil, err
	}
	defer ce.release()
	if err := s.applyOverrides(ce, m, true); err != nil {
		return nil, err
	}
	msg := message(m, s.callGas(m))
	res, err := s.run(ctx, ce, msg)
	if err != nil {
		if errors.As(err, new(errAborted)) {
			return nil, err
		}
		return nil, fmt.Errorf("err: %w (supplied gas %d)", err, msg.GasLimit)
	}
	if errors.Is(res.Err, vm.ErrExecutionReverted) {
		return res.Return(), revertError(res)
	}
	if res.Err != nil {
		return nil, res.Err
	}
	return res.Return(), nil
}

// estimateErrorRatio is go-ethereum's estimateGasErrorRatio: the search stops
// once the answer is within 1.5% above the smallest gas limit that works.
const estimateErrorRatio = 0.015

// EstimateGas finds the smallest gas limit with which the call succeeds as
// go-ethereum's gas estimator (eth/gasestimator) does: the gas limit capped by
// the block (or the given limit), EIP-7825, the sender's funds and the gas cap;
// 21000 first for a plain transfer to an account without code; then a run at
// the cap, one at the gas the first run used (plus the call stipend, times
// 64/63), and a bisection skewed low that stops within 1.5%.
func (b *backend) EstimateGas(ctx context.Context, m *rpc.CallMsg, ref rpc.BlockRef) (uint64, error) {
	s := b.s
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	ce, err := s.callEnv(ref)
	if err != nil {
		return 0, err
	}
	defer ce.release()
	if err := s.applyOverrides(ce, m, false); err != nil {
		return 0, err
	}
	call := message(m, m.Gas)

	hi := ce.env.GasLimit
	if call.GasLimit >= params.TxGas {
		hi = call.GasLimit
	}
	if hi > params.MaxTxGas && s.chainCf.IsOsaka(ce.blockCtx.BlockNumber, ce.blockCtx.Time) {
		hi = params.MaxTxGas
	}
	feeCap := call.GasFeeCap
	if feeCap == nil {
		feeCap = call.GasPrice
	}
	// The sender's funds cap the gas it can pay for.
	if feeCap.BitLen() != 0 {
		sdb := ce.stateDB()
		available := sdb.GetBalance(call.From).ToBig()
		if call.Value.Cmp(available) >= 0 {
			return 0, core.ErrInsufficientFundsForTransfer
		}
		available.Sub(available, call.Value)
		if s.chainCf.IsCancun(new(big.Int).SetUint64(ce.env.Number), ce.env.Time) && len(call.BlobHashes) > 0 {
			blobCost := new(big.Int).SetUint64(uint64(len(call.BlobHashes)) * params.BlobTxBlobGasPerBlob)
			blobCost.Mul(blobCost, call.BlobGasFeeCap)
			if blobCost.Cmp(available) >= 0 {
				return 0, core.ErrInsufficientFunds
			}
			available.Sub(available, blobCost)
		}
		allowance := new(big.Int).Div(available, feeCap)
		if allowance.IsUint64() && hi > allowance.Uint64() {
			hi = allowance.Uint64()
		}
	}
	if gasCap := s.cfg.CallGasCap; gasCap != 0 && hi > gasCap {
		hi = gasCap
	}
	// try runs the call with gas; failed tells whether it failed in a way more
	// gas might fix, err is an error no gas limit fixes.
	try := func(gas uint64) (failed bool, res *core.ExecutionResult, err error) {
		call.GasLimit = gas
		res, err = s.run(ctx, ce, call)
		if err != nil {
			if errors.As(err, new(errAborted)) {
				return true, nil, err
			}
			if errors.Is(err, core.ErrIntrinsicGas) || errors.Is(err, core.ErrGasLimitTooHigh) {
				return true, nil, nil
			}
			return true, nil, fmt.Errorf("failed with %d gas: %w", gas, err)
		}
		return res.Failed(), res, nil
	}
	// A plain transfer to an account without code most likely needs 21000; it
	// is run anyway, as field combinations (access lists) may cost more.
	if len(call.Data) == 0 && call.To != nil && ce.stateDB().GetCodeSize(*call.To) == 0 {
		if failed, _, err := try(params.TxGas); !failed && err == nil {
			return params.TxGas, nil
		}
	}
	failed, res, err := try(hi)
	if err != nil {
		return 0, err
	}
	if failed {
		if res != nil && !errors.Is(res.Err, vm.ErrOutOfGas) {
			if errors.Is(res.Err, vm.ErrExecutionReverted) {
				return 0, revertError(res)
			}
			return 0, res.Err
		}
		return 0, fmt.Errorf("gas required exceeds allowance (%d)", hi)
	}
	// The gas the unconstrained run used bounds the answer from below.
	lo := res.UsedGas - 1
	if optimistic := (res.MaxUsedGas + params.CallStipend) * 64 / 63; optimistic < hi {
		failed, _, err := try(optimistic)
		if err != nil {
			return 0, err
		}
		if failed {
			lo = optimistic
		} else {
			hi = optimistic
		}
	}
	for lo+1 < hi {
		if float64(hi-lo)/float64(hi) < estimateErrorRatio {
			break
		}
		mid := lo + (hi-lo)/2
		if mid > lo*2 {
			// Most calls need little more than they use: bisect low.
			mid = lo * 2
		}
		failed, _, err := try(mid)
		if err != nil {
			return 0, err
		}
		if failed {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi, nil
}

// cancelOnDone cancels evm when ctx ends; the returned func stops watching.
func cancelOnDone(ctx context.Context, evm *vm.EVM) (stop func()) {
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			evm.Cancel()
		case <-done:
		}
	}()
	return func() { close(done) }
}

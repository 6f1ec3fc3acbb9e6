package sequencer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/params"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/exec"
	"github.com/kestrel-l2/kestrel/core/state"
	"github.com/kestrel-l2/kestrel/rpc"
)

// callEnv is the state and block a call runs against.
type callEnv struct {
	r       state.Reader
	env     chain.BlockEnv
	lazy    *state.LazySlot
	release func()
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
	return ce, nil
}

// message turns call arguments into a core.Message the way go-ethereum's eth_call
// does: no nonce or EOA checks, fees zero unless given.
func (s *Sequencer) message(ce *callEnv, m *rpc.CallMsg, gas uint64) *core.Message {
	msg := &core.Message{From: m.From, To: m.To, Value: m.Value, GasLimit: gas, Data: m.Data, AccessList: m.AccessList,
		SetCodeAuthorizations: m.AuthList, SkipNonceChecks: true, SkipTransactionChecks: true,
		GasPrice: new(big.Int), GasFeeCap: new(big.Int), GasTipCap: new(big.Int)}
	if msg.Value == nil {
		msg.Value = new(big.Int)
	}
	if m.Nonce != nil {
		msg.Nonce = *m.Nonce
	} else if a, ok := ce.r.Account(m.From); ok {
		msg.Nonce = a.Nonce
	}
	switch {
	case m.GasPrice != nil:
		msg.GasPrice, msg.GasFeeCap, msg.GasTipCap = m.GasPrice, m.GasPrice, m.GasPrice
	case m.GasFeeCap != nil || m.GasTipCap != nil:
		feeCap, tip := m.GasFeeCap, m.GasTipCap
		if feeCap == nil {
			feeCap = new(big.Int).Add(ce.env.BaseFee, tip)
		}
		if tip == nil {
			tip = new(big.Int)
		}
		msg.GasFeeCap, msg.GasTipCap = feeCap, tip
		price := new(big.Int).Add(tip, ce.env.BaseFee)
		if price.Cmp(feeCap) > 0 {
			price.Set(feeCap)
		}
		msg.GasPrice = price
	}
	return msg
}

// run executes msg once on a fresh StateDB over the call's state.
func (s *Sequencer) run(ctx context.Context, ce *callEnv, msg *core.Message) (*core.ExecutionResult, error) {
	sdb := state.NewStateDB(ce.r)
	sdb.SetLazySlot(ce.lazy)
	env := s.execEnv(ce.env)
	// Fees are not charged when none were given, as in go-ethereum's eth_call.
	noBaseFee := msg.GasFeeCap.Sign() == 0 && msg.GasTipCap.Sign() == 0
	evm := vm.NewEVM(exec.BlockContext(env), sdb, s.chainCf, vm.Config{NoBaseFee: noBaseFee})
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			evm.Cancel()
		case <-done:
		}
	}()
	evm.SetTxContext(core.NewEVMTxContext(msg))
	res, err := core.ApplyMessage(evm, msg, core.NewGasPool(math.MaxUint64))
	if err != nil {
		return nil, fmt.Errorf("err: %w (supplied gas %d)", err, msg.GasLimit)
	}
	if evm.Cancelled() {
		return nil, fmt.Errorf("execution aborted (timeout = %v)", s.cfg.CallTimeout)
	}
	return res, nil
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
	res, err := s.run(ctx, ce, s.message(ce, m, s.callGas(m)))
	if err != nil {
		return nil, err
	}
	if errors.Is(res.Err, vm.ErrExecutionReverted) {
		return res.Return(), revertError(res)
	}
	if res.Err != nil {
		return nil, res.Err
	}
	return res.Return(), nil
}

// EstimateGas binary-searches the smallest gas limit with which the call succeeds,
// as go-ethereum's estimator does (first try the limit the first run suggests,
// stop within 1.5%).
func (b *backend) EstimateGas(ctx context.Context, m *rpc.CallMsg, ref rpc.BlockRef) (uint64, error) {
	s := b.s
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	ce, err := s.callEnv(ref)
	if err != nil {
		return 0, err
	}
	defer ce.release()
	hi := ce.env.GasLimit
	if s.chainCf.IsOsaka(new(big.Int).SetUint64(ce.env.Number), ce.env.Time) && hi > params.MaxTxGas {
		hi = params.MaxTxGas
	}
	if m.Gas >= params.TxGas && m.Gas < hi {
		hi = m.Gas
	}
	if hi > s.cfg.CallGasCap {
		hi = s.cfg.CallGasCap
	}
	// With a fee given, the sender's balance caps the gas it can buy.
	probe := s.message(ce, m, hi)
	if feeCap := probe.GasFeeCap; feeCap.Sign() > 0 {
		a, _ := ce.r.Account(m.From)
		avail := a.Balance.ToBig()
		if probe.Value.Sign() > 0 {
			if probe.Value.Cmp(avail) >= 0 {
				return 0, core.ErrInsufficientFundsForTransfer
			}
			avail.Sub(avail, probe.Value)
		}
		allowance := new(big.Int).Div(avail, feeCap)
		if allowance.IsUint64() && hi > allowance.Uint64() {
			hi = allowance.Uint64()
		}
	}
	try := func(gas uint64) (bool, *core.ExecutionResult, error) {
		res, err := s.run(ctx, ce, s.message(ce, m, gas))
		if err != nil {
			if errors.Is(err, core.ErrIntrinsicGas) || errors.Is(err, core.ErrFloorDataGas) {
				return true, nil, nil // too little gas: keep searching upward
			}
			return true, nil, err
		}
		return res.Failed(), res, nil
	}
	failed, res, err := try(hi)
	if err != nil {
		return 0, err
	}
	if failed {
		if res != nil && errors.Is(res.Err, vm.ErrExecutionReverted) {
			return 0, revertError(res)
		}
		if res != nil && res.Err != nil {
			return 0, fmt.Errorf("gas required exceeds allowance (%d): %w", hi, res.Err)
		}
		return 0, fmt.Errorf("gas required exceeds allowance (%d)", hi)
	}
	lo := res.UsedGas - 1
	if opt := (res.MaxUsedGas + params.CallStipend) * 64 / 63; opt < hi {
		f, _, err := try(opt)
		if err != nil {
			return 0, err
		}
		if !f {
			hi = opt
		} else {
			lo = opt
		}
	}
	for lo+1 < hi {
		if float64(hi-lo)/float64(hi) < 0.015 {
			break
		}
		mid := (hi + lo) / 2
		if mid > lo*2 {
			mid = lo * 2
		}
		f, _, err := try(mid)
		if err != nil {
			return 0, err
		}
		if f {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi, nil
}

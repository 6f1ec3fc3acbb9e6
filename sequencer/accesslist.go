package sequencer

import (
	"context"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/tracers/logger"

	"github.com/kestrel-l2/kestrel/core/exec"
	"github.com/kestrel-l2/kestrel/core/state"
	"github.com/kestrel-l2/kestrel/rpc"
)

var _ rpc.AccessListCreator = (*backend)(nil)

// CreateAccessList implements rpc.AccessListCreator as go-ethereum's
// ethapi.AccessList does: run the message with an access-list tracer, again with
// the list found, until the list no longer grows. Each run starts from a fresh
// StateDB over the state of ref. Unlike go-ethereum, the whole search is bounded
// by the call timeout.
func (b *backend) CreateAccessList(ctx context.Context, m *rpc.CallMsg, ref rpc.BlockRef) (types.AccessList, uint64, error, error) {
	s := b.s
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	ce, err := s.callEnv(ref)
	if err != nil {
		return nil, 0, nil, err
	}
	defer ce.release()

	var nonce uint64
	if m.Nonce != nil {
		nonce = *m.Nonce
	} else if a, ok := ce.r.Account(m.From); ok {
		nonce = a.Nonce
	}
	to := crypto.CreateAddress(m.From, nonce)
	if m.To != nil {
		to = *m.To
	}
	number := new(big.Int).SetUint64(ce.env.Number)
	exclude := map[common.Address]struct{}{m.From: {}, to: {}}
	for _, addr := range vm.ActivePrecompiles(s.chainCf.Rules(number, true, ce.env.Time)) {
		exclude[addr] = struct{}{}
	}
	chainID := s.chainCf.ChainID
	for _, auth := range m.AuthList {
		// As go-ethereum: authorizations that could never be valid leave their
		// authority in the list.
		if (!auth.ChainID.IsZero() && chainID != nil && auth.ChainID.CmpBig(chainID) != 0) || auth.Nonce+1 < auth.Nonce {
			continue
		}
		if authority, err := auth.Authority(); err == nil {
			exclude[authority] = struct{}{}
		}
	}
	gas := m.Gas
	if gas == 0 {
		gas = s.callGas(m)
	}
	prev := logger.NewAccessListTracer(m.AccessList, exclude)
	for {
		if err := ctx.Err(); err != nil {
			return nil, 0, nil, err
		}
		acl := prev.AccessList()
		tracer := logger.NewAccessListTracer(acl, exclude)
		msg := &core.Message{From: m.From, To: m.To, Nonce: nonce, Value: m.Value, GasLimit: gas,
			GasPrice: m.GasPrice, GasFeeCap: m.GasFeeCap, GasTipCap: m.GasTipCap, Data: m.Data, AccessList: acl,
			SetCodeAuthorizations: m.AuthList, SkipNonceChecks: true, SkipTransactionChecks: true}
		if msg.Value == nil {
			msg.Value = new(big.Int)
		}
		if msg.GasPrice == nil {
			msg.GasPrice, msg.GasFeeCap, msg.GasTipCap = new(big.Int), new(big.Int), new(big.Int)
		}
		res, err := s.runAccessList(ctx, ce, msg, vm.Config{Tracer: tracer.Hooks(), NoBaseFee: true})
		if err != nil {
			return nil, 0, nil, err
		}
		if res.err != nil {
			return nil, 0, nil, &rpc.ApplyError{Err: res.err, Nonce: nonce, AccessList: acl}
		}
		if tracer.Equal(prev) {
			return acl, res.UsedGas, res.Err, nil
		}
		prev = tracer
	}
}

// aclRun is one run of the access-list search: the execution result, or the
// consensus error that kept the message from being applied.
type aclRun struct {
	*core.ExecutionResult
	err error // the message was not applied
}

// runAccessList applies msg once on a fresh StateDB over the call's state, with
// the block context go-ethereum's AccessList uses (base fee zero when the
// message pays no gas price). The error is only for an aborted run.
func (s *Sequencer) runAccessList(ctx context.Context, ce *callEnv, msg *core.Message, cfg vm.Config) (aclRun, error) {
	sdb := state.NewStateDB(ce.r)
	sdb.SetLazySlot(ce.lazy)
	blockCtx := exec.BlockContext(s.execEnv(ce.env))
	if msg.GasPrice.Sign() == 0 {
		blockCtx.BaseFee = new(big.Int)
	}
	evm := vm.NewEVM(blockCtx, sdb, s.chainCf, cfg)
	defer cancelOnDone(ctx, evm)()
	res, err := core.ApplyMessage(evm, msg, nil)
	if evm.Cancelled() {
		return aclRun{}, fmt.Errorf("execution aborted (timeout = %v)", s.cfg.CallTimeout)
	}
	return aclRun{ExecutionResult: res, err: err}, nil
}

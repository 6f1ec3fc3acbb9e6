package rpc

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"
)

func init() {
	methods["eth_createAccessList"] = method{(*Server).ethCreateAccessList, 3}
}

// AccessListCreator is an optional extension of Backend for eth_createAccessList.
// CreateAccessList runs msg on the state of ref the way go-ethereum's
// ethapi.AccessList does: with an access-list tracer (go-ethereum's
// logger.AccessListTracer) attached, again and again with the list the previous
// run collected, until a run adds nothing; the sender, the recipient (or the
// address a creation deploys to), the active precompiles and the authorities of
// valid EIP-7702 authorizations are left out of the list. It returns that list,
// the gas the last run used and that run's EVM error (nil when it succeeded).
//
// msg arrives with go-ethereum's defaults applied (fees filled in as
// setFeeDefaults does, gas capped); a nil msg.Nonce means the sender's nonce in
// the state of ref. When the message cannot be applied at all (a consensus error
// such as insufficient funds or intrinsic gas too low) the backend returns an
// *ApplyError. Safe for concurrent use.
type AccessListCreator interface {
	CreateAccessList(ctx context.Context, msg *CallMsg, ref BlockRef) (acl types.AccessList, gasUsed uint64, vmErr error, err error)
}

// ApplyError is returned by AccessListCreator.CreateAccessList when the message
// was rejected before execution. Nonce and AccessList are those of the rejected
// run: go-ethereum's message names the hash of the transaction they make up
// ("failed to apply transaction: <hash> err: <Err>").
type ApplyError struct {
	Err        error
	Nonce      uint64
	AccessList types.AccessList
}

func (e *ApplyError) Error() string { return "failed to apply transaction: " + e.Err.Error() }
func (e *ApplyError) Unwrap() error { return e.Err }

// methodNotAvailable is the error for a method the backend does not implement,
// the same go-ethereum gives for a method it does not know.
func methodNotAvailable(name string) *Error {
	return &Error{Code: CodeMethodNotFound, Message: "the method " + name + " does not exist/is not available"}
}

// ethCreateAccessList: eth_createAccessList(args, block = "latest", stateOverrides).
// As go-ethereum's BlockChainAPI.CreateAccessList: the arguments decode as for
// eth_call, but missing fees are filled in as for a transaction to be sent
// (maxPriorityFeePerGas = the suggested tip, maxFeePerGas = tip + 2 * base fee),
// so the sender must be able to pay for the gas limit.
func (s *Server) ethCreateAccessList(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	alc, ok := s.b.(AccessListCreator)
	if !ok {
		return dst, methodNotAvailable("eth_createAccessList")
	}
	ta, err := parseTxArgs(a)
	if err != nil {
		return dst, err
	}
	ref, err := optBlock(a, 1, TagLatest)
	if err != nil {
		return dst, err
	}
	if a.get(2) != nil {
		return dst, invalidParams("state overrides not supported")
	}
	head, _, err := s.b.HeaderByRef(ctx, ref)
	if err != nil {
		return dst, err
	}
	if head == nil {
		return dst, ErrUnknownBlock
	}
	filled := *ta
	if err := s.setFeeDefaults(ctx, &filled, head); err != nil {
		return dst, err
	}
	gasCap := s.b.GasCap()
	defGas := gasCap
	if defGas == 0 {
		defGas = math.MaxUint64 / 2
	}
	msg, err := s.toCallMsg(&filled, defGas, gasCap, func() (*big.Int, error) { return head.BaseFee, nil })
	if err != nil {
		return dst, err
	}
	if uint64(len(msg.AuthList)) > msg.Gas/params.CallNewAccountGas {
		return dst, errors.New("insufficient gas to process all authorizations")
	}
	acl, gasUsed, vmErr, err := alc.CreateAccessList(ctx, msg, ref)
	if err != nil {
		var ae *ApplyError
		if errors.As(err, &ae) {
			return dst, s.applyFailed(&filled, msg, ae)
		}
		return dst, err
	}
	if acl == nil {
		acl = types.AccessList{}
	}
	dst = append(dst, `{"accessList":`...)
	dst = appendAccessList(dst, acl)
	if vmErr != nil {
		dst = append(dst, `,"error":`...)
		dst = appendString(dst, vmErr.Error())
	}
	dst = append(dst, `,"gasUsed":`...)
	dst = appendUint64Hex(dst, gasUsed)
	return append(dst, '}'), nil
}

// setFeeDefaults fills in missing fee fields as go-ethereum's
// TransactionArgs.setFeeDefaults does for head (blob fees aside: blob fields are
// ignored).
func (s *Server) setFeeDefaults(ctx context.Context, ta *TransactionArgs, head *types.Header) error {
	if ta.GasPrice != nil && (ta.MaxFeePerGas != nil || ta.MaxPriorityFeePerGas != nil) {
		return errors.New("both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified")
	}
	if ta.GasPrice == nil && ta.MaxFeePerGas != nil && ta.MaxPriorityFeePerGas != nil {
		if ta.MaxFeePerGas.ToInt().Sign() == 0 {
			return errors.New("maxFeePerGas must be non-zero")
		}
		if ta.MaxFeePerGas.ToInt().Cmp(ta.MaxPriorityFeePerGas.ToInt()) < 0 {
			return fmt.Errorf("maxFeePerGas (%v) < maxPriorityFeePerGas (%v)", ta.MaxFeePerGas, ta.MaxPriorityFeePerGas)
		}
		return nil
	}
	london := head.Number != nil && s.b.ChainConfig().IsLondon(head.Number)
	if ta.GasPrice != nil {
		if ta.GasPrice.ToInt().Sign() == 0 && london {
			return errors.New("gasPrice must be non-zero after london fork")
		}
		return nil
	}
	tip := s.b.SuggestTipCap(ctx)
	if tip == nil {
		tip = new(big.Int)
	}
	if !london {
		if ta.MaxFeePerGas != nil || ta.MaxPriorityFeePerGas != nil {
			return errors.New("maxFeePerGas and maxPriorityFeePerGas are not valid before London is active")
		}
		ta.GasPrice = (*hexutil.Big)(new(big.Int).Set(tip))
		return nil
	}
	if ta.MaxPriorityFeePerGas == nil {
		ta.MaxPriorityFeePerGas = (*hexutil.Big)(new(big.Int).Set(tip))
	}
	if ta.MaxFeePerGas == nil {
		baseFee := head.BaseFee
		if baseFee == nil {
			baseFee = new(big.Int)
		}
		fee := new(big.Int).Mul(baseFee, big.NewInt(2))
		ta.MaxFeePerGas = (*hexutil.Big)(fee.Add(fee, ta.MaxPriorityFeePerGas.ToInt()))
	}
	if ta.MaxFeePerGas.ToInt().Cmp(ta.MaxPriorityFeePerGas.ToInt()) < 0 {
		return fmt.Errorf("maxFeePerGas (%v) < maxPriorityFeePerGas (%v)", ta.MaxFeePerGas, ta.MaxPriorityFeePerGas)
	}
	return nil
}

// applyFailed formats a rejected run like go-ethereum: the hash is that of the
// unsigned transaction TransactionArgs.ToTransaction(types.LegacyTxType) builds
// from the filled-in arguments.
func (s *Server) applyFailed(ta *TransactionArgs, msg *CallMsg, ae *ApplyError) error {
	al := ae.AccessList
	if al == nil {
		al = types.AccessList{}
	}
	chainID := s.b.ChainID()
	if ta.ChainID != nil {
		chainID = ta.ChainID.ToInt()
	}
	var inner types.TxData
	switch {
	case ta.GasPrice != nil:
		inner = &types.LegacyTx{Nonce: ae.Nonce, GasPrice: ta.GasPrice.ToInt(), Gas: msg.Gas, To: msg.To, Value: msg.Value, Data: msg.Data}
	case ta.AuthorizationList != nil:
		if msg.To == nil {
			// go-ethereum dereferences the missing recipient here and its
			// server answers for the crashed handler; so do we, without the crash.
			return &Error{Code: CodeInternal, Message: "method handler crashed"}
		}
		feeCap, overflow := uint256.FromBig(ta.MaxFeePerGas.ToInt())
		tipCap, overflow2 := uint256.FromBig(ta.MaxPriorityFeePerGas.ToInt())
		value, overflow3 := uint256.FromBig(msg.Value)
		cid, overflow4 := uint256.FromBig(chainID)
		if overflow || overflow2 || overflow3 || overflow4 {
			return &Error{Code: CodeInternal, Message: "method handler crashed"}
		}
		inner = &types.SetCodeTx{ChainID: cid, Nonce: ae.Nonce, GasTipCap: tipCap, GasFeeCap: feeCap, Gas: msg.Gas, To: *msg.To,
			Value: value, Data: msg.Data, AccessList: al, AuthList: msg.AuthList}
	default:
		inner = &types.DynamicFeeTx{ChainID: chainID, Nonce: ae.Nonce, GasTipCap: ta.MaxPriorityFeePerGas.ToInt(),
			GasFeeCap: ta.MaxFeePerGas.ToInt(), Gas: msg.Gas, To: msg.To, Value: msg.Value, Data: msg.Data, AccessList: al}
	}
	return fmt.Errorf("failed to apply transaction: %v err: %v", types.NewTx(inner).Hash(), ae.Err)
}

package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/eth/tracers/logger"
	"github.com/holiman/uint256"

	"github.com/kestrel-l2/kestrel/rpc/override"
)

func init() {
	methods["debug_traceTransaction"] = method{(*Server).debugTraceTransaction, 2}
	methods["debug_traceBlockByNumber"] = method{(*Server).debugTraceBlockByNumber, 2}
	methods["debug_traceBlockByHash"] = method{(*Server).debugTraceBlockByHash, 2}
	methods["debug_traceCall"] = method{(*Server).debugTraceCall, 3}
}

// TraceConfig is the configuration parameter of debug_traceTransaction. It has
// the shape of go-ethereum's tracers.TraceConfig, so that it decodes the same
// JSON and reports the same decoding errors: the struct logger's options
// (enableMemory, disableStack, disableStorage, enableReturnData, limit) sit at
// the top level, tracerConfig is handed to the named tracer untouched.
type TraceConfig struct {
	*logger.Config
	// Tracer names a native tracer (go-ethereum's tracers.DefaultDirectory);
	// nil selects the struct logger.
	Tracer *string
	// Timeout is a time.ParseDuration string bounding the traced execution.
	Timeout *string
	// Reexec is accepted for compatibility and ignored: a backend either keeps
	// the parent state or answers ErrStateUnavailable.
	Reexec       *uint64
	TracerConfig json.RawMessage
}

const (
	// DefaultTraceTimeout bounds a traced execution when the config names no
	// timeout (go-ethereum's default).
	DefaultTraceTimeout = 5 * time.Second
	// MaxTraceTimeout caps the timeout a caller may ask for; go-ethereum has no
	// cap, a public sequencer endpoint needs one.
	MaxTraceTimeout = time.Minute
)

// ErrTxNotFound is go-ethereum's answer to tracing a transaction that is not in
// a block.
var ErrTxNotFound = errors.New("transaction not found")

// TraceTimeout is the timeout c asks for: DefaultTraceTimeout when it names
// none, at most MaxTraceTimeout. A malformed duration gives time.ParseDuration's
// error, which go-ethereum returns as is.
func (c *TraceConfig) TraceTimeout() (time.Duration, error) {
	if c == nil || c.Timeout == nil {
		return DefaultTraceTimeout, nil
	}
	d, err := time.ParseDuration(*c.Timeout)
	if err != nil {
		return 0, err
	}
	return min(d, MaxTraceTimeout), nil
}

// Tracer is an optional extension of Backend for debug_traceTransaction.
// TraceTransaction re-executes a transaction of a block (sealed or open) on the
// state its block had before it, with the tracer cfg selects attached, and
// returns the tracer's JSON result exactly as go-ethereum's tracer produces it.
// It returns ErrTxNotFound for a transaction in no block, ErrStateUnavailable
// when the parent state is no longer kept, and the tracer's own error for an
// unknown tracer name or a bad tracerConfig. cfg is never nil. Safe for
// concurrent use.
type Tracer interface {
	TraceTransaction(ctx context.Context, hash common.Hash, cfg *TraceConfig) (json.RawMessage, error)
}

// BlockTracer is an optional extension of Backend for debug_traceBlockByNumber
// and debug_traceBlockByHash: every transaction of a sealed block traced in
// order, each on the state the ones before it left. It returns ErrUnknownBlock
// for a block that does not exist and the errors of Tracer otherwise.
type BlockTracer interface {
	TraceBlock(ctx context.Context, ref BlockRef, cfg *TraceConfig) ([]TxTraceResult, error)
}

// TxTraceResult is one transaction's trace in a block trace.
type TxTraceResult struct {
	TxHash common.Hash
	Result json.RawMessage // the tracer's JSON
	Error  string          // set instead of Result when this transaction's trace failed
}

func (s *Server) debugTraceBlockByNumber(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	raw, err := a.arg(0)
	if err != nil {
		return dst, err
	}
	ref, err := parseBlockNumber(0, raw)
	if err != nil {
		return dst, err
	}
	return s.traceBlock(ctx, a, ref, dst, "debug_traceBlockByNumber")
}

func (s *Server) debugTraceBlockByHash(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	hash, err := hashParam(a, 0)
	if err != nil {
		return dst, err
	}
	return s.traceBlock(ctx, a, BlockRef{Tag: TagHash, Hash: hash}, dst, "debug_traceBlockByHash")
}

// traceBlock answers as go-ethereum's TraceBlockByNumber/Hash:
// [{"txHash","result"} or {"txHash","error"}, ...]; a missing block is an
// error ("block #N not found", "block 0x… not found").
func (s *Server) traceBlock(ctx context.Context, a *args, ref BlockRef, dst []byte, name string) ([]byte, error) {
	bt, ok := s.b.(BlockTracer)
	if !ok {
		return dst, methodNotAvailable(name)
	}
	cfg, err := parseTraceConfig(a, 1)
	if err != nil {
		return dst, err
	}
	if err := s.checkTraceBlock(ctx, ref); err != nil {
		return dst, err
	}
	results, err := bt.TraceBlock(ctx, ref, cfg)
	if err != nil {
		return dst, err
	}
	dst = append(dst, '[')
	for i, r := range results {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"txHash":`...)
		dst = appendHash(dst, r.TxHash)
		switch {
		case r.Error != "":
			dst = append(dst, `,"error":`...)
			dst = appendString(dst, r.Error)
		case len(r.Result) > 0 && string(r.Result) != "null":
			if !validJSON(r.Result) {
				return dst, errors.New("tracer returned invalid JSON")
			}
			dst = append(dst, `,"result":`...)
			dst = append(dst, r.Result...)
		}
		dst = append(dst, '}')
	}
	return append(dst, ']'), nil
}

// checkTraceBlock answers as go-ethereum's tracers API for a block number or
// hash that selects no block: "block #N not found", "block 0x… not found".
func (s *Server) checkTraceBlock(ctx context.Context, ref BlockRef) error {
	if ref.Tag != TagNumber && ref.Tag != TagHash {
		return nil
	}
	b, err := s.block(ctx, ref)
	if err != nil {
		return err
	}
	if b == nil {
		if ref.Tag == TagHash {
			return fmt.Errorf("block %s not found", ref.Hash.Hex())
		}
		return fmt.Errorf("block #%d not found", ref.Number)
	}
	return nil
}

// TraceCallConfig is the configuration parameter of debug_traceCall, with the
// shape (and so the decoding errors) of go-ethereum's tracers.TraceCallConfig:
// a TraceConfig with state and block overrides and the index of the
// transaction of the block before which the call runs.
type TraceCallConfig struct {
	TraceConfig
	StateOverrides *override.StateOverride
	BlockOverrides *override.BlockOverrides
	// TxIndex, when set, runs the call on the state the block had before its
	// transaction TxIndex instead of the state at the block's end.
	TxIndex *hexutil.Uint
}

// CallBuilder turns debug_traceCall's transaction arguments into the call's
// message and the transaction the tracer's OnTxStart sees, as go-ethereum's
// CallDefaults, ToMessage and ToTransaction(DynamicFeeTxType) do. baseFee is
// the base fee of the (overridden) block context. Its errors are go-ethereum's
// messages, to be returned as they are.
type CallBuilder func(baseFee *big.Int) (*CallMsg, *types.Transaction, error)

// CallTracer is an optional extension of Backend for debug_traceCall, as
// go-ethereum's API.TraceCall: the call runs on the state at the end of block
// ref (or, with cfg.TxIndex, before that transaction of it), in the block's
// context with cfg's block and state overrides applied, with the tracer cfg
// selects attached and an empty tracers.Context. The backend calls build once
// the overrides are applied and the base fee is known, and reports errors in
// go-ethereum's order: the state, the overrides, build's, then the tracer's
// and "tracing failed: …" for a message that cannot be applied. ref is never
// pending; cfg is never nil. Safe for concurrent use.
type CallTracer interface {
	TraceCall(ctx context.Context, ref BlockRef, cfg *TraceCallConfig, build CallBuilder) (json.RawMessage, error)
}

// errTracePending is go-ethereum's answer to debug_traceCall on "pending".
var errTracePending = errors.New("tracing on top of pending is not supported")

// debugTraceCall: debug_traceCall(args, block, config).
func (s *Server) debugTraceCall(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	ct, ok := s.b.(CallTracer)
	if !ok {
		return dst, methodNotAvailable("debug_traceCall")
	}
	ta, err := parseTxArgs(a)
	if err != nil {
		return dst, err
	}
	// go-ethereum's parameter is a rpc.BlockNumberOrHash, not a pointer: an
	// absent one is a missing argument; null or {} decodes, and TraceCall
	// then finds that it names no block.
	rawRef, err := a.arg(1)
	if err != nil {
		return dst, err
	}
	ref, refErr := parseBlockNumberOrHash(1, rawRef)
	if refErr != nil && refErr != errNoBlock {
		return dst, refErr
	}
	cfg, err := parseTraceCallConfig(a, 2)
	if err != nil {
		return dst, err
	}
	if refErr != nil {
		return dst, refErr
	}
	if ref.Tag == TagPending {
		return dst, errTracePending
	}
	if err := s.checkTraceBlock(ctx, ref); err != nil {
		return dst, err
	}
	build := func(baseFee *big.Int) (*CallMsg, *types.Transaction, error) {
		gasCap := s.b.GasCap()
		defGas := gasCap
		if defGas == 0 {
			defGas = math.MaxUint64 / 2
		}
		msg, err := s.toCallMsg(ta, defGas, gasCap, func() (*big.Int, error) { return baseFee, nil })
		if err != nil {
			return nil, nil, err
		}
		tx, err := s.callTx(ta, msg, baseFee)
		if err != nil {
			return nil, nil, err
		}
		return msg, tx, nil
	}
	out, err := ct.TraceCall(ctx, ref, cfg, build)
	if err != nil {
		return dst, err
	}
	if len(out) == 0 {
		return append(dst, jsonNull...), nil
	}
	if !validJSON(out) {
		return dst, errors.New("tracer returned invalid JSON")
	}
	return append(dst, out...), nil
}

// callTx is go-ethereum's TransactionArgs.ToTransaction(DynamicFeeTxType) for
// arguments CallDefaults completed (msg is what toCallMsg made of them): a
// set-code transaction with an authorization list, else a blob transaction
// with blob hashes, else a dynamic-fee one, and a legacy one when a gas price
// is given (or the block has no base fee). Where go-ethereum's handler crashes
// (a set-code or blob transaction without a recipient) the answer is its
// server's for a crashed handler.
func (s *Server) callTx(ta *TransactionArgs, msg *CallMsg, baseFee *big.Int) (*types.Transaction, error) {
	crashed := &Error{Code: CodeInternal, Message: "method handler crashed"}
	chainID := s.b.ChainID()
	if ta.ChainID != nil {
		chainID = ta.ChainID.ToInt()
	}
	var nonce uint64
	if msg.Nonce != nil {
		nonce = *msg.Nonce
	}
	value := msg.Value
	if value == nil {
		value = new(big.Int)
	}
	al := types.AccessList{}
	if ta.AccessList != nil {
		al = *ta.AccessList
	}
	gasPrice := (*big.Int)(ta.GasPrice)
	feeCap, tipCap := (*big.Int)(ta.MaxFeePerGas), (*big.Int)(ta.MaxPriorityFeePerGas)
	if baseFee == nil {
		if gasPrice == nil {
			gasPrice = new(big.Int)
		}
	} else {
		if feeCap == nil {
			feeCap = new(big.Int)
		}
		if tipCap == nil {
			tipCap = new(big.Int)
		}
	}
	u256 := func(b *big.Int) (*uint256.Int, bool) {
		if b == nil {
			return new(uint256.Int), true
		}
		v, overflow := uint256.FromBig(b)
		return v, !overflow
	}
	var inner types.TxData
	switch {
	case gasPrice != nil:
		inner = &types.LegacyTx{To: msg.To, Nonce: nonce, Gas: msg.Gas, GasPrice: gasPrice, Value: value, Data: msg.Data}
	case ta.AuthorizationList != nil, ta.BlobHashes != nil:
		cid, ok1 := u256(chainID)
		fc, ok2 := u256(feeCap)
		tc, ok3 := u256(tipCap)
		v, ok4 := u256(value)
		bfc, ok5 := u256(msg.BlobFeeCap)
		if msg.To == nil || !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
			return nil, crashed
		}
		if ta.AuthorizationList != nil {
			inner = &types.SetCodeTx{ChainID: cid, Nonce: nonce, GasTipCap: tc, GasFeeCap: fc, Gas: msg.Gas, To: *msg.To,
				Value: v, Data: msg.Data, AccessList: al, AuthList: ta.AuthorizationList}
		} else {
			inner = &types.BlobTx{ChainID: cid, Nonce: nonce, GasTipCap: tc, GasFeeCap: fc, Gas: msg.Gas, To: *msg.To,
				Value: v, Data: msg.Data, AccessList: al, BlobHashes: ta.BlobHashes, BlobFeeCap: bfc}
		}
	default:
		inner = &types.DynamicFeeTx{ChainID: chainID, Nonce: nonce, GasTipCap: tipCap, GasFeeCap: feeCap, Gas: msg.Gas,
			To: msg.To, Value: value, Data: msg.Data, AccessList: al}
	}
	return types.NewTx(inner), nil
}

// parseTraceCallConfig decodes optional parameter i as go-ethereum decodes a
// *tracers.TraceCallConfig.
func parseTraceCallConfig(a *args, i int) (*TraceCallConfig, error) {
	return parseConfigObject[TraceCallConfig](a, i, "tracers.TraceCallConfig")
}

// debugTraceTransaction: debug_traceTransaction(hash, config).
func (s *Server) debugTraceTransaction(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	tr, ok := s.b.(Tracer)
	if !ok {
		return dst, methodNotAvailable("debug_traceTransaction")
	}
	hash, err := hashParam(a, 0)
	if err != nil {
		return dst, err
	}
	cfg, err := parseTraceConfig(a, 1)
	if err != nil {
		return dst, err
	}
	out, err := tr.TraceTransaction(ctx, hash, cfg)
	if err != nil {
		return dst, err
	}
	if len(out) == 0 {
		return append(dst, jsonNull...), nil
	}
	if !validJSON(out) {
		return dst, errors.New("tracer returned invalid JSON")
	}
	return append(dst, out...), nil
}

// parseTraceConfig decodes optional parameter i as go-ethereum decodes a
// *tracers.TraceConfig.
func parseTraceConfig(a *args, i int) (*TraceConfig, error) {
	return parseConfigObject[TraceConfig](a, i, "tracers.TraceConfig")
}

// parseConfigObject decodes optional object parameter i into a new T (zero
// when absent); typ is the go-ethereum type name its errors mention.
func parseConfigObject[T any](a *args, i int, typ string) (*T, error) {
	cfg := new(T)
	raw := a.get(i)
	if raw == nil {
		return cfg, nil
	}
	if raw[0] != '{' {
		return nil, typeError(i, jsonKind(raw), typ)
	}
	if err := json.Unmarshal(raw, cfg); err != nil {
		return nil, argError(i, err)
	}
	return cfg, nil
}

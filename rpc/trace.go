package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/eth/tracers/logger"
)

func init() {
	methods["debug_traceTransaction"] = method{(*Server).debugTraceTransaction, 2}
	methods["debug_traceBlockByNumber"] = method{(*Server).debugTraceBlockByNumber, 2}
	methods["debug_traceBlockByHash"] = method{(*Server).debugTraceBlockByHash, 2}
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
	if ref.Tag == TagNumber || ref.Tag == TagHash {
		if b, err := s.block(ctx, ref); err != nil {
			return dst, err
		} else if b == nil {
			if ref.Tag == TagHash {
				return dst, fmt.Errorf("block %s not found", ref.Hash.Hex())
			}
			return dst, fmt.Errorf("block #%d not found", ref.Number)
		}
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
	cfg := new(TraceConfig)
	raw := a.get(i)
	if raw == nil {
		return cfg, nil
	}
	if raw[0] != '{' {
		return nil, typeError(i, jsonKind(raw), "tracers.TraceConfig")
	}
	if err := json.Unmarshal(raw, cfg); err != nil {
		return nil, argError(i, err)
	}
	return cfg, nil
}

package rpc

import (
	"context"

	"github.com/ethereum/go-ethereum/consensus/misc/eip4844"
)

// eth_getHeaderByNumber / eth_getHeaderByHash print go-ethereum's
// RPCMarshalHeader; eth_getRawTransactionByHash the transaction's binary
// encoding (included or pooled); eth_blobBaseFee the blob base fee of the head
// (Kestrel refuses blob transactions, so it stays at the 1 wei minimum).
func init() {
	methods["eth_getHeaderByNumber"] = method{(*Server).ethGetHeaderByNumber, 1}
	methods["eth_getHeaderByHash"] = method{(*Server).ethGetHeaderByHash, 1}
	methods["eth_getRawTransactionByHash"] = method{(*Server).ethGetRawTransactionByHash, 1}
	methods["eth_blobBaseFee"] = method{(*Server).ethBlobBaseFee, 0}
}

func (s *Server) ethGetHeaderByNumber(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	ref, err := blockNumberParam(a, 0)
	if err != nil {
		return dst, err
	}
	b, err := s.block(ctx, ref)
	if err != nil || b == nil {
		return append(dst, jsonNull...), err
	}
	return s.appendHeader(dst, b), nil
}

// ethGetHeaderByHash answers null for a missing block and for lookup errors, as
// go-ethereum does.
func (s *Server) ethGetHeaderByHash(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	hash, err := hashParam(a, 0)
	if err != nil {
		return dst, err
	}
	b, err := s.block(ctx, BlockRef{Tag: TagHash, Hash: hash})
	if err != nil || b == nil {
		return append(dst, jsonNull...), nil
	}
	return s.appendHeader(dst, b), nil
}

func (s *Server) ethGetRawTransactionByHash(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	info, err := s.txByHash(ctx, a)
	if err != nil {
		return dst, err
	}
	if info == nil {
		return append(dst, jsonNull...), nil
	}
	raw, err := info.Tx.MarshalBinary()
	if err != nil {
		return dst, err
	}
	return appendBytesHex(dst, raw), nil
}

func (s *Server) ethBlobBaseFee(ctx context.Context, _ *args, dst []byte) ([]byte, error) {
	h, _, err := s.b.HeaderByRef(ctx, BlockRef{Tag: TagLatest})
	cfg := s.b.ChainConfig()
	if err != nil || h == nil || h.ExcessBlobGas == nil || cfg == nil {
		return append(dst, jsonNull...), nil
	}
	return appendBigHex(dst, eip4844.CalcBlobFee(cfg, h)), nil
}

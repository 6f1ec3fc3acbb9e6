package rpc

import "context"

// Uncle methods. Kestrel blocks never have uncles: the counts are "0x0" for a
// block that exists and null for one that does not, and uncles are always null,
// as go-ethereum answers for a post-merge chain.
//
// eth_protocolVersion answers "0x44" (eth/68, the wire protocol version that
// Erigon, Nethermind and Besu report): tools still call it, although the
// go-ethereum in go.mod no longer serves it (a listed difference of the
// conformance test). eth_coinbase, eth_mining and eth_hashrate are not
// registered: go-ethereum answers "the method ... does not exist/is not
// available" for them, and so do we.
func init() {
	methods["eth_protocolVersion"] = method{(*Server).ethProtocolVersion, 0}
	methods["eth_getUncleCountByBlockNumber"] = method{(*Server).ethGetUncleCountByBlockNumber, 1}
	methods["eth_getUncleCountByBlockHash"] = method{(*Server).ethGetUncleCountByBlockHash, 1}
	methods["eth_getUncleByBlockNumberAndIndex"] = method{(*Server).ethGetUncleByBlockNumberAndIndex, 2}
	methods["eth_getUncleByBlockHashAndIndex"] = method{(*Server).ethGetUncleByBlockHashAndIndex, 2}
}

func (s *Server) uncleCount(ctx context.Context, ref BlockRef, dst []byte) ([]byte, error) {
	b, err := s.block(ctx, ref)
	if err != nil || b == nil {
		return append(dst, jsonNull...), err
	}
	return appendUint64Hex(dst, 0), nil
}

func (s *Server) ethGetUncleCountByBlockNumber(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	ref, err := blockNumberParam(a, 0)
	if err != nil {
		return dst, err
	}
	return s.uncleCount(ctx, ref, dst)
}

func (s *Server) ethGetUncleCountByBlockHash(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	hash, err := hashParam(a, 0)
	if err != nil {
		return dst, err
	}
	return s.uncleCount(ctx, BlockRef{Tag: TagHash, Hash: hash}, dst)
}

// uncleByIndex decodes the index (parameter 1) like go-ethereum's hexutil.Uint
// and answers null; a failing block lookup still reports its error.
func (s *Server) uncleByIndex(ctx context.Context, a *args, ref BlockRef, dst []byte) ([]byte, error) {
	rawIdx, err := a.arg(1)
	if err != nil {
		return dst, err
	}
	if _, err := parseUint64(1, rawIdx, "hexutil.Uint"); err != nil {
		return dst, err
	}
	if _, err := s.block(ctx, ref); err != nil {
		return dst, err
	}
	return append(dst, jsonNull...), nil
}

func (s *Server) ethGetUncleByBlockNumberAndIndex(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	ref, err := blockNumberParam(a, 0)
	if err != nil {
		return dst, err
	}
	return s.uncleByIndex(ctx, a, ref, dst)
}

func (s *Server) ethGetUncleByBlockHashAndIndex(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	hash, err := hashParam(a, 0)
	if err != nil {
		return dst, err
	}
	return s.uncleByIndex(ctx, a, BlockRef{Tag: TagHash, Hash: hash}, dst)
}

// protocolVersion is eth/68.
const protocolVersion = 68

func (s *Server) ethProtocolVersion(_ context.Context, _ *args, dst []byte) ([]byte, error) {
	return appendUint64Hex(dst, protocolVersion), nil
}

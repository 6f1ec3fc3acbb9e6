package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

const (
	maxTopics    = 4    // LOG0..LOG4
	maxSubTopics = 1000 // alternatives per topic position
)

// logFilter is a decoded eth_getLogs filter.
type logFilter struct {
	blockHash *common.Hash
	from, to  BlockRef
	addresses []common.Address
	topics    [][]common.Hash // nil / empty position: wildcard
}

// parseLogFilter decodes the filter object like go-ethereum's FilterCriteria.
func parseLogFilter(raw []byte) (*logFilter, error) {
	if raw[0] != '{' {
		return nil, typeError(0, jsonKind(raw), "filters.FilterCriteria")
	}
	var in struct {
		BlockHash *common.Hash    `json:"blockHash"`
		FromBlock json.RawMessage `json:"fromBlock"`
		ToBlock   json.RawMessage `json:"toBlock"`
		Addresses json.RawMessage `json:"address"`
		Topics    json.RawMessage `json:"topics"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, argError(0, err)
	}
	f := &logFilter{from: BlockRef{Tag: TagLatest}, to: BlockRef{Tag: TagLatest}}
	hasFrom := len(in.FromBlock) > 0 && !isNull(in.FromBlock)
	hasTo := len(in.ToBlock) > 0 && !isNull(in.ToBlock)
	if in.BlockHash != nil {
		if hasFrom || hasTo {
			return nil, argError(0, errors.New("cannot specify both BlockHash and FromBlock/ToBlock, choose one or the other"))
		}
		f.blockHash = in.BlockHash
	}
	var err error
	if hasFrom {
		if f.from, err = parseBlockNumber(0, in.FromBlock); err != nil {
			return nil, err
		}
	}
	if hasTo {
		if f.to, err = parseBlockNumber(0, in.ToBlock); err != nil {
			return nil, err
		}
	}
	if addrs := trimWS(in.Addresses); len(addrs) > 0 && !isNull(addrs) {
		switch addrs[0] {
		case '"':
			a, err := decodeFilterAddress(addrs)
			if err != nil {
				return nil, argError(0, fmt.Errorf("invalid address: %v", err))
			}
			f.addresses = []common.Address{a}
		case '[':
			i := 0
			forEachElem(addrs, func(e []byte) bool {
				if e[0] != '"' {
					err = fmt.Errorf("non-string address at index %d", i)
					return false
				}
				a, aerr := decodeFilterAddress(e)
				if aerr != nil {
					err = fmt.Errorf("invalid address at index %d: %v", i, aerr)
					return false
				}
				f.addresses = append(f.addresses, a)
				i++
				return true
			})
			if err != nil {
				return nil, argError(0, err)
			}
		default:
			return nil, argError(0, errors.New("invalid addresses in query"))
		}
	}
	if topics := trimWS(in.Topics); len(topics) > 0 && !isNull(topics) {
		if topics[0] != '[' {
			return nil, invalidParams("invalid topic(s)")
		}
		n := 0
		forEachElem(topics, func([]byte) bool { n++; return true })
		if n > maxTopics {
			return nil, invalidParams("exceed max topics")
		}
		f.topics = make([][]common.Hash, n)
		pos := 0
		forEachElem(topics, func(t []byte) bool {
			switch t[0] {
			case 'n': // null: wildcard
			case '"':
				var h common.Hash
				if h, err = decodeTopic(t); err != nil {
					return false
				}
				f.topics[pos] = []common.Hash{h}
			case '[':
				m := 0
				forEachElem(t, func([]byte) bool { m++; return true })
				if m > maxSubTopics {
					err = invalidParams("exceed max topics")
					return false
				}
				wildcard := false
				forEachElem(t, func(e []byte) bool {
					switch e[0] {
					case 'n':
						wildcard = true
					case '"':
						var h common.Hash
						if h, err = decodeTopic(e); err != nil {
							return false
						}
						f.topics[pos] = append(f.topics[pos], h)
					default:
						err = invalidParams("invalid topic(s)")
						return false
					}
					return true
				})
				if err != nil {
					return false
				}
				if wildcard {
					f.topics[pos] = nil
				}
			default:
				err = invalidParams("invalid topic(s)")
				return false
			}
			pos++
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	return f, nil
}

func decodeFilterAddress(raw []byte) (common.Address, error) {
	b, err := decodeHexBytes(raw[1 : len(raw)-1])
	if err == nil && len(b) != common.AddressLength {
		err = fmt.Errorf("hex has invalid length %d after decoding; expected %d for address", len(b), common.AddressLength)
	}
	return common.BytesToAddress(b), err
}

func decodeTopic(raw []byte) (common.Hash, error) {
	b, err := decodeHexBytes(raw[1 : len(raw)-1])
	if err == nil && len(b) != common.HashLength {
		err = fmt.Errorf("hex has invalid length %d after decoding; expected %d for topic", len(b), common.HashLength)
	}
	if err != nil {
		return common.Hash{}, argError(0, err)
	}
	return common.BytesToHash(b), nil
}

// bloomMatch reports whether a block with this bloom may hold matching logs.
func (f *logFilter) bloomMatch(bloom types.Bloom) bool {
	if len(f.addresses) > 0 {
		found := false
		for _, a := range f.addresses {
			if types.BloomLookup(bloom, a) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	for _, sub := range f.topics {
		if len(sub) == 0 {
			continue
		}
		found := false
		for _, t := range sub {
			if types.BloomLookup(bloom, t) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// match reports whether l matches the address and topic criteria.
func (f *logFilter) match(l *types.Log) bool {
	if len(f.addresses) > 0 {
		found := false
		for _, a := range f.addresses {
			if a == l.Address {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if len(f.topics) > len(l.Topics) {
		return false
	}
	for i, sub := range f.topics {
		if len(sub) == 0 {
			continue
		}
		found := false
		for _, t := range sub {
			if l.Topics[i] == t {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// resolveLogBlock turns a fromBlock/toBlock tag into a number.
func (s *Server) resolveLogBlock(ctx context.Context, ref BlockRef, head uint64) (uint64, error) {
	switch ref.Tag {
	case TagNumber:
		return ref.Number, nil
	case TagLatest:
		return head, nil
	case TagPending:
		return 0, invalidParams("pending logs are not supported")
	case TagEarliest:
		return 0, nil
	default:
		h, _, err := s.b.HeaderByRef(ctx, ref)
		if err != nil {
			return 0, err
		}
		if h == nil || h.Number == nil {
			return 0, ErrUnknownBlock
		}
		return h.Number.Uint64(), nil
	}
}

// ethGetLogs: eth_getLogs(filter).
func (s *Server) ethGetLogs(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	raw, err := a.required(0)
	if err != nil {
		return dst, err
	}
	f, err := parseLogFilter(raw)
	if err != nil {
		return dst, err
	}
	return s.appendLogs(ctx, f, dst)
}

// errLogsRange and errLogsMax are eth_getLogs' answers to a query over
// Config.MaxLogsRange blocks or Config.MaxLogs logs.
func (s *Server) errLogsRange() *Error {
	return limitExceeded("query exceeds max block range %d", s.cfg.MaxLogsRange)
}

func (s *Server) errLogsMax() *Error {
	return limitExceeded("query exceeds max results %d", s.cfg.MaxLogs)
}

// logWriter appends matching logs as the elements of a JSON array, at most max
// of them. full is set when one more log matched than max allows.
type logWriter struct {
	dst   []byte
	count int
	max   int
	full  bool
}

// appendLogs appends the JSON array of the logs matching f, the whole answer of
// eth_getLogs (and eth_getFilterLogs). Blocks are skipped by their header bloom;
// matching blocks are read with BlockByRef. On error dst is returned unchanged.
func (s *Server) appendLogs(ctx context.Context, f *logFilter, dst []byte) ([]byte, error) {
	start := len(dst)
	w := logWriter{dst: append(dst, '['), max: s.cfg.MaxLogs}

	if f.blockHash != nil {
		ref := BlockRef{Tag: TagHash, Hash: *f.blockHash}
		h, _, err := s.b.HeaderByRef(ctx, ref)
		if errors.Is(err, ErrUnknownBlock) || (err == nil && h == nil) {
			return dst[:start], errors.New("unknown block")
		}
		if err != nil {
			return dst[:start], err
		}
		if f.bloomMatch(h.Bloom) {
			if err := s.scanBlockLogs(ctx, f, ref, &w); err != nil {
				if errors.Is(err, ErrUnknownBlock) {
					err = errors.New("unknown block")
				}
				return dst[:start], err
			}
		}
		return append(w.dst, ']'), nil
	}

	head := s.b.HeadNumber()
	from, err := s.resolveLogBlock(ctx, f.from, head)
	if err != nil {
		return dst[:start], err
	}
	to, err := s.resolveLogBlock(ctx, f.to, head)
	if err != nil {
		return dst[:start], err
	}
	if from > to {
		return dst[:start], invalidParams("invalid block range params")
	}
	if to > head {
		return dst[:start], invalidParams("block range extends beyond current head block")
	}
	if to-from >= s.cfg.MaxLogsRange {
		return dst[:start], s.errLogsRange()
	}
	if err := s.scanLogRange(ctx, f, from, to, &w); err != nil {
		return dst[:start], err
	}
	return append(w.dst, ']'), nil
}

// scanBlockLogs appends the logs of block ref that match f.
func (s *Server) scanBlockLogs(ctx context.Context, f *logFilter, ref BlockRef, w *logWriter) error {
	b, err := s.b.BlockByRef(ctx, ref)
	if err != nil {
		return err
	}
	if b == nil || b.Header == nil {
		return ErrUnknownBlock
	}
	for _, r := range b.Receipts {
		for _, l := range r.Logs {
			if !f.match(l) {
				continue
			}
			if w.count == w.max {
				w.full = true
				return s.errLogsMax()
			}
			if w.count > 0 {
				w.dst = append(w.dst, ',')
			}
			w.dst = appendLog(w.dst, l, b.Sealed)
			w.count++
		}
	}
	return nil
}

// scanLogRange appends the logs matching f of the blocks from..to (from <= to),
// which the caller has checked against Config.MaxLogsRange. Blocks whose header
// bloom rules them out are not read; when f names a block hash, only that block
// is read (filters installed with a block hash poll this way).
func (s *Server) scanLogRange(ctx context.Context, f *logFilter, from, to uint64, w *logWriter) error {
	for n := from; ; n++ {
		if n&63 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		ref := BlockRef{Tag: TagNumber, Number: n}
		h, hash, err := s.b.HeaderByRef(ctx, ref)
		if err != nil {
			return err
		}
		if h != nil && (f.blockHash == nil || *f.blockHash == hash) && f.bloomMatch(h.Bloom) {
			if err := s.scanBlockLogs(ctx, f, ref, w); err != nil {
				return err
			}
		}
		if n == to {
			return nil
		}
	}
}

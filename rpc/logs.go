package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
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

// parseLogFilter decodes the filter object as go-ethereum's
// FilterCriteria.UnmarshalJSON does, through the same shape (its type
// filters.input, whose name appears in decoding errors) and with the same
// checks in the same order. Every error is a decoding error of parameter 0
// (-32602 "invalid argument 0: …"). JSON null is the empty filter.
func parseLogFilter(raw []byte) (*logFilter, error) {
	if raw[0] != '{' && raw[0] != 'n' {
		return nil, typeError(0, jsonKind(raw), "filters.input")
	}
	type input struct {
		BlockHash *common.Hash `json:"blockHash"`
		FromBlock *blockNumber `json:"fromBlock"`
		ToBlock   *blockNumber `json:"toBlock"`
		Addresses any          `json:"address"`
		Topics    []any        `json:"topics"`
	}
	var in input
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, argError(0, err)
	}
	f, err := logFilterOf(in.BlockHash, in.FromBlock, in.ToBlock, in.Addresses, in.Topics)
	if err != nil {
		return nil, argError(0, err)
	}
	return f, nil
}

// logFilterOf checks and converts the decoded members of a filter object.
func logFilterOf(blockHash *common.Hash, from, to *blockNumber, addresses any, topics []any) (*logFilter, error) {
	f := &logFilter{from: BlockRef{Tag: TagLatest}, to: BlockRef{Tag: TagLatest}}
	if blockHash != nil {
		if from != nil || to != nil {
			return nil, errors.New("cannot specify both BlockHash and FromBlock/ToBlock, choose one or the other")
		}
		f.blockHash = blockHash
	} else {
		if from != nil {
			f.from = from.ref
		}
		if to != nil {
			f.to = to.ref
		}
	}
	if addresses != nil {
		switch addrs := addresses.(type) {
		case []any:
			for i, v := range addrs {
				str, ok := v.(string)
				if !ok {
					return nil, fmt.Errorf("non-string address at index %d", i)
				}
				a, err := decodeFilterAddress(str)
				if err != nil {
					return nil, fmt.Errorf("invalid address at index %d: %v", i, err)
				}
				f.addresses = append(f.addresses, a)
			}
		case string:
			a, err := decodeFilterAddress(addrs)
			if err != nil {
				return nil, fmt.Errorf("invalid address: %v", err)
			}
			f.addresses = []common.Address{a}
		default:
			return nil, errors.New("invalid addresses in query")
		}
	}
	if len(topics) > maxTopics {
		return nil, errExceedMaxTopics
	}
	// A topic position is null (any topic), a topic, or a list of alternatives
	// (where a null makes the whole position a wildcard; go-ethereum stops
	// reading the list there).
	if len(topics) > 0 {
		f.topics = make([][]common.Hash, len(topics))
		for i, t := range topics {
			switch topic := t.(type) {
			case nil:
			case string:
				h, err := decodeTopic(topic)
				if err != nil {
					return nil, err
				}
				f.topics[i] = []common.Hash{h}
			case []any:
				if len(topic) > maxSubTopics {
					return nil, errExceedMaxTopics
				}
				for _, alt := range topic {
					if alt == nil {
						f.topics[i] = nil
						break
					}
					str, ok := alt.(string)
					if !ok {
						return nil, errInvalidTopic
					}
					h, err := decodeTopic(str)
					if err != nil {
						return nil, err
					}
					f.topics[i] = append(f.topics[i], h)
				}
			default:
				return nil, errInvalidTopic
			}
		}
	}
	return f, nil
}

var (
	// go-ethereum's errExceedMaxTopics and errInvalidTopic (reported as
	// decoding errors of the filter parameter).
	errExceedMaxTopics = errors.New("exceed max topics")
	errInvalidTopic    = errors.New("invalid topic(s)")
)

func decodeFilterAddress(s string) (common.Address, error) {
	b, err := hexutil.Decode(s)
	if err == nil && len(b) != common.AddressLength {
		err = fmt.Errorf("hex has invalid length %d after decoding; expected %d for address", len(b), common.AddressLength)
	}
	return common.BytesToAddress(b), err
}

func decodeTopic(s string) (common.Hash, error) {
	b, err := hexutil.Decode(s)
	if err == nil && len(b) != common.HashLength {
		err = fmt.Errorf("hex has invalid length %d after decoding; expected %d for topic", len(b), common.HashLength)
	}
	return common.BytesToHash(b), err
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
	raw, err := a.arg(0)
	if err != nil {
		return dst, err
	}
	f, err := parseLogFilter(raw)
	if err != nil {
		return dst, err
	}
	// go-ethereum's default LogQueryLimit (topic alternatives are bounded by
	// parseLogFilter).
	if len(f.addresses) > maxFilterAddresses {
		return dst, errFilterQueryLimit
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

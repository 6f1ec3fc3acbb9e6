package rpc

// Polling filters: eth_newFilter, eth_newBlockFilter, eth_getFilterChanges,
// eth_getFilterLogs and eth_uninstallFilter, answered as go-ethereum's
// eth/filters answers them.
//
// Unlike go-ethereum, a filter buffers nothing. It keeps a cursor, the number of
// the first sealed block it has not reported yet, and a poll reads the blocks
// from the cursor up to the head from the backend. Blocks are sealed in order and
// never reorganised (one sequencer), so the cursor is all the state a poll needs;
// a filter's memory is its criteria, whatever the client's polling rate. The work
// of one poll is bounded by Config.MaxLogsRange and Config.MaxLogs.
//
// Expiry is lazy: a filter not polled (eth_getFilterChanges) for
// Config.FilterTimeout is removed when it is next looked up, and installing a
// filter sweeps out the expired ones, so no goroutine is needed.

import (
	"context"
	"errors"
	"sync"
	"time"
)

func init() {
	methods["eth_newFilter"] = method{(*Server).ethNewFilter, 1}
	methods["eth_newBlockFilter"] = method{(*Server).ethNewBlockFilter, 0}
	methods["eth_getFilterChanges"] = method{(*Server).ethGetFilterChanges, 1}
	methods["eth_getFilterLogs"] = method{(*Server).ethGetFilterLogs, 1}
	methods["eth_uninstallFilter"] = method{(*Server).ethUninstallFilter, 1}
}

// maxFilterAddresses bounds the addresses of an installed log filter, as
// go-ethereum's default LogQueryLimit does, so that the filter table's memory is
// bounded (topic alternatives are bounded by parseLogFilter).
const maxFilterAddresses = 1000

var (
	// errFilterNotFound answers an unknown, expired or uninstalled filter id,
	// with go-ethereum's message and code (CodeDefault).
	errFilterNotFound = errors.New("filter not found")
	// errFilterQueryLimit is go-ethereum's errExceedLogQueryLimit.
	errFilterQueryLimit = errors.New("exceed max addresses or topics per search position")
)

type filterKind uint8

const (
	blockFilter filterKind = iota + 1 // eth_newBlockFilter
	logsFilter                        // eth_newFilter
)

// installedFilter is one filter. kind and crit never change once installed and
// may be read without a lock; next is guarded by lock, deadline by the owning
// filterSet's mu.
type installedFilter struct {
	kind filterKind
	crit *logFilter // logsFilter only
	// lock (capacity 1) is held while a poll reads blocks and moves next, so that
	// concurrent polls of one filter report each block once. It is a channel so a
	// waiting poll can give up when its request is cancelled.
	lock     chan struct{}
	next     uint64    // first sealed block not yet reported
	deadline time.Time // expired from this instant unless polled before
}

// filterSet is a server's table of installed filters, safe for concurrent use.
// It holds no reference to the Server (see Server.filters).
type filterSet struct {
	now func() time.Time // time.Now; tests replace it before first use

	mu        sync.Mutex
	m         map[string]*installedFilter
	lastSweep time.Time
}

// filters returns s's filter table, creating it on first use.
func (s *Server) filters() *filterSet {
	s.filterOnce.Do(func() {
		s.filterTable = &filterSet{now: time.Now, m: make(map[string]*installedFilter)}
	})
	return s.filterTable
}

// install adds f with a fresh id, unless max filters are installed.
func (fs *filterSet) install(f *installedFilter, timeout time.Duration, max int) (string, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	now := fs.now()
	// Sweep when full, and otherwise at most once per timeout so that installing
	// stays cheap while expired filters cannot pile up.
	if len(fs.m) >= max || now.Sub(fs.lastSweep) >= timeout {
		for id, g := range fs.m {
			if !now.Before(g.deadline) {
				delete(fs.m, id)
			}
		}
		fs.lastSweep = now
	}
	if len(fs.m) >= max {
		return "", limitExceeded("too many filters installed (max %d)", max)
	}
	id := newSubID()
	for fs.m[id] != nil {
		id = newSubID()
	}
	f.deadline = now.Add(timeout)
	fs.m[id] = f
	return id, nil
}

// get returns the live filter id, or nil; an expired filter is removed. A poll
// (refresh) moves the deadline to timeout from now.
func (fs *filterSet) get(id []byte, refresh bool, timeout time.Duration) *installedFilter {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.m[string(id)]
	if f == nil {
		return nil
	}
	now := fs.now()
	if !now.Before(f.deadline) {
		delete(fs.m, string(id))
		return nil
	}
	if refresh {
		f.deadline = now.Add(timeout)
	}
	return f
}

// uninstall removes filter id and reports whether it was installed and live.
func (fs *filterSet) uninstall(id []byte) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.m[string(id)]
	if f == nil {
		return false
	}
	delete(fs.m, string(id))
	return fs.now().Before(f.deadline)
}

// count is the number of installed filters, expired ones not yet removed included.
func (fs *filterSet) count() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return len(fs.m)
}

// filterIDParam decodes the filter id parameter: any JSON string, as
// go-ethereum's rpc.ID (a string that names no filter is "filter not found").
func filterIDParam(a *args) ([]byte, error) {
	raw, err := a.arg(0)
	if err != nil {
		return nil, err
	}
	if isNull(raw) {
		return []byte{}, nil // an empty rpc.ID, which names no filter
	}
	if raw[0] != '"' {
		return nil, typeError(0, jsonKind(raw), "rpc.ID")
	}
	id, ok := unquote(raw)
	if !ok {
		return nil, typeError(0, "string", "rpc.ID")
	}
	return id, nil
}

// checkFilterCriteria refuses what go-ethereum's EventSystem.SubscribeLogs
// refuses: pending blocks, and block ranges other than latest..latest, n..latest
// and n..m with n <= m ("earliest" counts as 0 for fromBlock only; "safe" and
// "finalized" are refused). It also bounds the number of addresses.
func checkFilterCriteria(f *logFilter) error {
	if len(f.addresses) > maxFilterAddresses {
		return errFilterQueryLimit
	}
	if f.blockHash != nil {
		return nil
	}
	if f.from.Tag == TagPending || f.to.Tag == TagPending {
		return invalidParams("pending logs are not supported")
	}
	from := f.from
	if from.Tag == TagEarliest {
		from = BlockRef{Tag: TagNumber, Number: 0}
	}
	switch {
	case from.Tag == TagLatest && f.to.Tag == TagLatest:
	case from.Tag == TagNumber && f.to.Tag == TagLatest:
	case from.Tag == TagNumber && f.to.Tag == TagNumber && from.Number <= f.to.Number:
	default:
		return invalidParams("invalid block range params")
	}
	return nil
}

// ethNewFilter: eth_newFilter(criteria) installs a log filter reporting the
// matching logs of blocks sealed from now on.
func (s *Server) ethNewFilter(_ context.Context, a *args, dst []byte) ([]byte, error) {
	raw, err := a.arg(0)
	if err != nil {
		return dst, err
	}
	crit, err := parseLogFilter(raw)
	if err != nil {
		return dst, err
	}
	if err := checkFilterCriteria(crit); err != nil {
		return dst, err
	}
	f := &installedFilter{kind: logsFilter, crit: crit, lock: make(chan struct{}, 1), next: s.b.HeadNumber() + 1}
	id, err := s.filters().install(f, s.cfg.FilterTimeout, s.cfg.MaxFilters)
	if err != nil {
		return dst, err
	}
	return appendString(dst, id), nil
}

// ethNewBlockFilter: eth_newBlockFilter() installs a filter reporting the hashes
// of blocks sealed from now on.
func (s *Server) ethNewBlockFilter(_ context.Context, _ *args, dst []byte) ([]byte, error) {
	f := &installedFilter{kind: blockFilter, lock: make(chan struct{}, 1), next: s.b.HeadNumber() + 1}
	id, err := s.filters().install(f, s.cfg.FilterTimeout, s.cfg.MaxFilters)
	if err != nil {
		return dst, err
	}
	return appendString(dst, id), nil
}

// ethUninstallFilter: eth_uninstallFilter(id) → whether the filter existed.
func (s *Server) ethUninstallFilter(_ context.Context, a *args, dst []byte) ([]byte, error) {
	id, err := filterIDParam(a)
	if err != nil {
		return dst, err
	}
	return appendBool(dst, s.filters().uninstall(id)), nil
}

// ethGetFilterLogs: eth_getFilterLogs(id) runs a log filter's criteria as
// eth_getLogs does. As in go-ethereum it does not count as a poll (the filter's
// deadline stays), and a block filter id is "filter not found".
func (s *Server) ethGetFilterLogs(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	id, err := filterIDParam(a)
	if err != nil {
		return dst, err
	}
	f := s.filters().get(id, false, s.cfg.FilterTimeout)
	if f == nil || f.kind != logsFilter {
		return dst, errFilterNotFound
	}
	return s.appendLogs(ctx, f.crit, dst)
}

// ethGetFilterChanges: eth_getFilterChanges(id) → what the filter found in the
// blocks sealed since the last poll (or since it was installed): block hashes for
// a block filter, logs for a log filter.
func (s *Server) ethGetFilterChanges(ctx context.Context, a *args, dst []byte) ([]byte, error) {
	id, err := filterIDParam(a)
	if err != nil {
		return dst, err
	}
	f := s.filters().get(id, true, s.cfg.FilterTimeout)
	if f == nil {
		return dst, errFilterNotFound
	}
	select {
	case f.lock <- struct{}{}:
	case <-ctx.Done():
		return dst, ctx.Err()
	}
	defer func() { <-f.lock }()
	head := s.b.HeadNumber()
	if f.kind == blockFilter {
		return s.blockChanges(ctx, f, head, dst)
	}
	return s.logChanges(ctx, f, head, dst)
}

// blockChanges appends the hashes of blocks f.next..head, at most MaxLogsRange of
// them; the rest are left for the next poll. On a backend error nothing is
// consumed.
func (s *Server) blockChanges(ctx context.Context, f *installedFilter, head uint64, dst []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, '[')
	if head < f.next {
		return append(dst, ']'), nil
	}
	to := head
	if to-f.next >= s.cfg.MaxLogsRange {
		to = f.next + s.cfg.MaxLogsRange - 1
	}
	for n := f.next; ; n++ {
		if n&63 == 0 {
			if err := ctx.Err(); err != nil {
				return dst[:start], err
			}
		}
		h, hash, err := s.b.HeaderByRef(ctx, BlockRef{Tag: TagNumber, Number: n})
		if err == nil && h == nil {
			err = ErrUnknownBlock
		}
		if err != nil {
			return dst[:start], err
		}
		if n > f.next {
			dst = append(dst, ',')
		}
		dst = appendHash(dst, hash)
		if n == to {
			break
		}
	}
	f.next = to + 1
	return append(dst, ']'), nil
}

// logChanges appends the logs matching f.crit of blocks f.next..head that lie
// within the criteria's fromBlock..toBlock. When those blocks span more than
// MaxLogsRange or hold more than MaxLogs matching logs it answers eth_getLogs'
// limit error, with the skipped range as error data ({"fromBlock","toBlock"}),
// and moves past them: a filter that fell behind works again from the next poll,
// and the client can fetch the skipped range with eth_getLogs. On a backend error
// nothing is consumed.
func (s *Server) logChanges(ctx context.Context, f *installedFilter, head uint64, dst []byte) ([]byte, error) {
	start := len(dst)
	if head < f.next {
		return append(dst, '[', ']'), nil
	}
	from, to := f.next, head
	if c := f.crit; c.blockHash == nil {
		if c.from.Tag == TagNumber && c.from.Number > from {
			from = c.from.Number
		}
		if c.to.Tag == TagNumber && c.to.Number < to {
			to = c.to.Number
		}
	}
	if from > to {
		f.next = head + 1
		return append(dst, '[', ']'), nil
	}
	if to-from >= s.cfg.MaxLogsRange {
		f.next = head + 1
		return dst[:start], skipped(s.errLogsRange(), from, to)
	}
	w := logWriter{dst: append(dst, '['), max: s.cfg.MaxLogs}
	if err := s.scanLogRange(ctx, f.crit, from, to, &w); err != nil {
		if w.full {
			f.next = head + 1
			err = skipped(s.errLogsMax(), from, to)
		}
		return dst[:start], err
	}
	f.next = head + 1
	return append(w.dst, ']'), nil
}

// skipped adds the block range a poll skipped to a limit error as its data.
func skipped(e *Error, from, to uint64) *Error {
	data := append([]byte(`{"fromBlock":`), appendUint64Hex(nil, from)...)
	data = append(data, `,"toBlock":`...)
	data = append(appendUint64Hex(data, to), '}')
	e.Data = rawJSON(data)
	return e
}

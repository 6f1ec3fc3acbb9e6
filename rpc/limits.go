package rpc

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// Operational limits, applied in serveBody so that HTTP and WebSocket share
// them (see Config.MaxConcurrent, RequestTimeout and MaxResponseBytes):
//
//   - Concurrency. slots is a semaphore of Config.MaxConcurrent. A single
//     request takes a slot before it runs; a batch takes one (waiting as a
//     single request does) and then one more for each extra worker goroutine
//     only if one is free at once, so a batch never waits twice and never holds
//     more slots than goroutines executing its items. Waiters are served in
//     arrival order (blocked channel senders are queued FIFO). A request that
//     gets no slot within Config.QueueTimeout is answered CodeLimitExceeded;
//     in a batch, every call is.
//   - Deadline. The context of a request or of a whole batch ends after
//     Config.RequestTimeout (longer when the body holds
//     eth_sendRawTransactionSync, see requestTimeout). A call that ends after
//     the deadline, or that had not started by then, is answered CodeTimeout
//     "request timed out", as go-ethereum answers. Unlike go-ethereum, the
//     answer is written when the handler returns rather than by a timer beside
//     it: handlers and backends observe ctx, and a handler that does not
//     cannot be stopped by an early answer anyway.
//   - Answer size. A call whose answer object exceeds Config.MaxResponseBytes
//     is answered CodeTooLarge "response too large" instead. In a batch the
//     answers are also summed; the item whose answer makes the sum exceed the
//     limit and every item after it are answered CodeTooLarge, and items not
//     started yet are not run. go-ethereum (which limits batches only) keeps
//     the item that crosses the limit and sums results only; here the limit is
//     a bound. Batch items run concurrently, so "after" is in the order items
//     finish, which is the request order when the batch runs on one goroutine.

// syncTimeoutGrace is what a body holding eth_sendRawTransactionSync gets on top
// of Config.SyncSendMaxTimeout, so that its own timeout (EIP-7966 code 4, with
// the transaction hash) is answered rather than the request deadline.
const syncTimeoutGrace = time.Second

const (
	msgTimeout  = "request timed out"  // go-ethereum's errMsgTimeout
	msgTooLarge = "response too large" // go-ethereum's errMsgResponseTooLarge
)

// errRequestTimeout is the cause of a request context past Config.RequestTimeout.
var errRequestTimeout = errors.New("rpc: request timed out")

// initLimits sets up the concurrency semaphore and the metrics hook.
func (s *Server) initLimits() {
	// A channel of zero-size elements allocates no buffer, whatever its capacity.
	s.slots = make(chan struct{}, s.cfg.MaxConcurrent)
	m := s.cfg.Metrics
	if _, noop := m.(NoopMetrics); noop {
		m = nil
	}
	s.wsm = noWSMetrics{}
	if wm, ok := m.(WSMetricer); ok {
		s.wsm = wm
	}
	if m != nil {
		s.metrics = m
		// Interned names: the label of a request is found without allocating.
		s.methodNames = make(map[string]string, len(methods))
		for name := range methods {
			s.methodNames[name] = name
		}
	}
}

// acquire takes a concurrency slot, waiting at most Config.QueueTimeout.
func (s *Server) acquire(ctx context.Context) bool {
	select {
	case s.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(s.cfg.QueueTimeout)
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// tryAcquire takes a concurrency slot if one is free now.
func (s *Server) tryAcquire() bool {
	select {
	case s.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s *Server) release() { <-s.slots }

// busyMessage is the answer to a request that found no free slot.
func (s *Server) busyMessage() string {
	return "limit exceeded: too many concurrent requests (max " + string(appendUint(nil, uint64(s.cfg.MaxConcurrent))) +
		"), try again later"
}

// deadlineSlack is how long one shared deadline context is handed out: requests
// starting within it share the context, and each gets between RequestTimeout
// and RequestTimeout plus deadlineSlack.
const deadlineSlack = 10 * time.Millisecond

// sharedDeadline is a request context shared by the requests that start within
// deadlineSlack of each other on the same long-lived parent. Sharing saves the
// context and timer allocations (four, about half the cost of an eth_chainId)
// per request; a shared context is released when its deadline passes.
type sharedDeadline struct {
	parent  context.Context
	ctx     context.Context
	cancel  context.CancelFunc // called by nothing but the deadline; kept for vet
	handout time.Time          // handed out until then
}

func noCancel() {}

// requestTimeout derives the context of one request or batch. sync: the body
// holds eth_sendRawTransactionSync, which may wait up to SyncSendMaxTimeout.
func (s *Server) requestTimeout(ctx context.Context, sync bool) (context.Context, context.CancelFunc) {
	d := s.cfg.RequestTimeout
	if sync {
		d = max(d, s.cfg.SyncSendMaxTimeout+syncTimeoutGrace)
		return context.WithTimeoutCause(ctx, d, errRequestTimeout)
	}
	// HTTP requests (baseCtx) and in-process callers without a context of their
	// own (Background) share; WebSocket frames carry their own values and don't.
	if ctx != s.baseCtx && ctx != context.Background() {
		return context.WithTimeoutCause(ctx, d, errRequestTimeout)
	}
	now := time.Now()
	if sd := s.deadline.Load(); sd != nil && sd.parent == ctx && now.Before(sd.handout) {
		return sd.ctx, noCancel
	}
	sd := &sharedDeadline{parent: ctx, handout: now.Add(deadlineSlack)}
	sd.ctx, sd.cancel = context.WithDeadlineCause(ctx, sd.handout.Add(d), errRequestTimeout)
	s.deadline.Store(sd)
	return sd.ctx, noCancel
}

// timedOut reports whether ctx ended by Config.RequestTimeout (not by the
// client or server going away).
func timedOut(ctx context.Context) bool {
	return ctx.Err() != nil && context.Cause(ctx) == errRequestTimeout
}

func (r *request) isSync() bool {
	return r.kind != kindInvalid && string(r.method) == "eth_sendRawTransactionSync"
}

// methodLabel is r's method name for metrics: a registered name or
// MethodUnknown. Only called when metrics are on.
func (s *Server) methodLabel(r *request) string {
	if r.kind == kindInvalid {
		return MethodUnknown
	}
	if name, ok := s.methodNames[string(r.method)]; ok {
		return name
	}
	return MethodUnknown
}

// appendLimitError answers r (a call; nothing for a notification) with a limit
// error and records the code in r.
func appendLimitError(dst []byte, r *request, code int, msg string) []byte {
	r.code = code
	if r.kind != kindCall {
		return dst
	}
	return appendErrorObject(dst, r.id, code, msg, nil)
}

// serveSingle answers a request that is not part of a batch.
func (s *Server) serveSingle(ctx context.Context, r *request, dst []byte) []byte {
	if r.kind == kindInvalid {
		return s.call(ctx, r, dst, nil) // nothing runs: no slot needed
	}
	var t0 time.Time
	if s.metrics != nil {
		t0 = time.Now()
	}
	if !s.acquire(ctx) {
		out := appendLimitError(dst, r, CodeLimitExceeded, s.busyMessage())
		s.record(r, t0, len(out)-len(dst))
		return out
	}
	defer s.release()
	ctx, cancel := s.requestTimeout(ctx, r.isSync())
	defer cancel()
	return s.call(ctx, r, dst, nil)
}

// call runs one request under its deadline and the answer size limit, and
// records its metrics. The caller holds a concurrency slot (unless r is
// invalid). used, for batch items, is the batch's running total of answer
// bytes.
func (s *Server) call(ctx context.Context, r *request, dst []byte, used *atomic.Int64) []byte {
	var t0 time.Time
	if s.metrics != nil {
		t0 = time.Now()
		s.metrics.RecordInFlight(1)
		defer s.metrics.RecordInFlight(-1)
	}
	start := len(dst)
	limit := int64(s.cfg.MaxResponseBytes)
	var out []byte
	switch {
	case r.kind == kindInvalid:
		out = s.exec(ctx, r, dst)
	case timedOut(ctx):
		out = appendLimitError(dst, r, CodeTimeout, msgTimeout) // a batch item not started in time
	case used != nil && used.Load() > limit:
		out = appendLimitError(dst, r, CodeTooLarge, msgTooLarge)
	default:
		out = s.exec(ctx, r, dst)
		n := int64(len(out) - start)
		switch {
		case timedOut(ctx):
			out = appendLimitError(out[:start], r, CodeTimeout, msgTimeout)
		case n > limit:
			out = appendLimitError(out[:start], r, CodeTooLarge, msgTooLarge)
			if used != nil {
				used.Add(n)
			}
		case used != nil && used.Add(n) > limit:
			out = appendLimitError(out[:start], r, CodeTooLarge, msgTooLarge)
		}
	}
	s.record(r, t0, len(out)-start)
	return out
}

// record reports an answered request to the metrics hook.
func (s *Server) record(r *request, t0 time.Time, bytes int) {
	if s.metrics == nil {
		return
	}
	s.metrics.RecordRequest(s.methodLabel(r), r.code, time.Since(t0), bytes)
}

// recordBody reports a body refused as a whole (parse error, empty or oversized
// batch, body too large).
func (s *Server) recordBody(code int, bytes int) {
	if s.metrics != nil {
		s.metrics.RecordRequest(MethodUnknown, code, 0, bytes)
	}
}

// rejectBatch answers every call of a batch that got no concurrency slot.
func (s *Server) rejectBatch(reqs []request, dst []byte, t0 time.Time) []byte {
	mark := len(dst)
	dst = append(dst, '[')
	wrote := false
	msg := s.busyMessage()
	for k := range reqs {
		r := &reqs[k]
		before := len(dst)
		if wrote {
			dst = append(dst, ',')
		}
		afterComma := len(dst)
		if r.kind == kindInvalid {
			r.code = CodeInvalidRequest
			dst = appendErrorObject(dst, r.id, CodeInvalidRequest, r.errMsg, nil)
		} else {
			dst = appendLimitError(dst, r, CodeLimitExceeded, msg)
		}
		s.record(r, t0, len(dst)-afterComma)
		if len(dst) == afterComma {
			dst = dst[:before] // notification
			continue
		}
		wrote = true
	}
	if !wrote {
		return dst[:mark]
	}
	return append(dst, ']')
}

// batchHasSync reports whether a batch holds eth_sendRawTransactionSync.
func batchHasSync(reqs []request) bool {
	for k := range reqs {
		if reqs[k].isSync() {
			return true
		}
	}
	return false
}

package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
	"github.com/valyala/fasthttp"
)

// maxMethodNameLength matches go-ethereum's limit.
const maxMethodNameLength = 2048

// maxPooledBuf is the largest per-worker response buffer kept for reuse.
const maxPooledBuf = 1 << 20

type reqKind uint8

const (
	kindCall reqKind = iota
	kindNotification
	kindInvalid
)

// request is one parsed JSON-RPC message. All byte slices point into the body.
type request struct {
	id     []byte // raw JSON id; nil when absent (notification) or invalid
	method []byte // method name (escapes decoded)
	params []byte // raw params value; nil when absent
	kind   reqKind
	errMsg string // for kindInvalid

	// pre holds the outcome of a batched eth_sendRawTransaction (BatchSender).
	pre *preSent

	code int // JSON-RPC error code of the answer, 0 for a result (for metrics)

	args args // decoded positional parameters (kept here to avoid an allocation)
}

type preSent struct {
	hash common.Hash
	err  error
}

// parseRequest decodes the envelope of one message (validated JSON).
func parseRequest(msg []byte, r *request) {
	*r = request{kind: kindInvalid, errMsg: "invalid request"}
	if len(msg) == 0 || msg[0] != '{' {
		return
	}
	var (
		version, method, id, params []byte
		haveID                      bool
	)
	forEachField(msg, func(key, val []byte) {
		switch {
		case keyIs(key, "jsonrpc"):
			version = val
		case keyIs(key, "method"):
			method = val
		case keyIs(key, "id"):
			id, haveID = val, true
		case keyIs(key, "params"):
			params = val
		}
	})
	validID := haveID && len(id) > 0 && id[0] != '{' && id[0] != '['
	if validID {
		r.id = id
		if id[0] == '"' && !utf8.Valid(id) {
			// Keep the response valid UTF-8: re-encode the string with U+FFFD.
			if str, ok := unquote(id); ok {
				r.id = appendString(nil, string(str))
			}
		}
	}
	if v, ok := unquote(version); !ok || string(v) != "2.0" {
		return
	}
	if method == nil {
		return
	}
	name, ok := unquote(method)
	if !ok || len(name) == 0 {
		return
	}
	if haveID && !validID {
		return
	}
	r.method = name
	r.params = params
	if haveID {
		r.kind = kindCall
	} else {
		r.kind = kindNotification
	}
	r.errMsg = ""
}

// serveBody answers an HTTP request body, appending the response to dst. It
// also returns the HTTP status code. As go-ethereum's HTTP server, which reads
// one JSON value from the body: an empty body (or only whitespace) gets no
// answer at all, malformed JSON gets -32700 "parse error", and anything after
// the first JSON value is ignored.
func (s *Server) serveBody(ctx context.Context, body []byte, dst []byte) (out []byte, status int) {
	return s.serve(ctx, body, dst, false)
}

// serveWSBody answers one WebSocket message. Malformed JSON gets -32700 with
// the decoder's message, as go-ethereum's WebSocket server sends for a syntax
// error; an empty message too.
func (s *Server) serveWSBody(ctx context.Context, body []byte, dst []byte) []byte {
	out, _ := s.serve(ctx, body, dst, true)
	return out
}

func (s *Server) serve(ctx context.Context, body []byte, dst []byte, ws bool) (out []byte, status int) {
	start := len(dst)
	defer func() {
		// Handlers recover on their own (exec); this guards the envelope code.
		if p := recover(); p != nil {
			s.log.Error("RPC request handling panicked", "panic", p, "stack", string(debug.Stack()))
			out = appendErrorObject(dst[:start], nil, CodeInternal, "internal error", nil)
			status = fasthttp.StatusInternalServerError
		}
	}()
	if len(body) > s.cfg.MaxBodyBytes {
		out = s.tooLarge(dst)
		s.recordBody(CodeInvalidRequest, len(out)-start)
		return out, fasthttp.StatusRequestEntityTooLarge
	}
	body = trimWS(body)
	switch {
	case len(body) == 0 && ws:
		return s.bodyError(dst, CodeParseError, "empty request body"), fasthttp.StatusOK
	case len(body) == 0:
		return dst, fasthttp.StatusOK
	case !validJSON(body) && ws:
		var v json.RawMessage
		msg := "parse error"
		if err := json.Unmarshal(body, &v); err != nil {
			msg = err.Error()
		}
		return s.bodyError(dst, CodeParseError, msg), fasthttp.StatusOK
	case !validJSON(body):
		// go-ethereum decodes the first JSON value with a json.Decoder.
		var v json.RawMessage
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(&v); err != nil {
			return s.bodyError(dst, CodeParseError, "parse error"), fasthttp.StatusOK
		}
		body = v
	}
	switch body[0] {
	case '[':
		return s.serveBatch(ctx, body, dst), fasthttp.StatusOK
	case '{':
		var r request
		parseRequest(body, &r)
		return s.serveSingle(ctx, &r, dst), fasthttp.StatusOK // limits.go
	default:
		return s.bodyError(dst, CodeInvalidRequest, "invalid request"), fasthttp.StatusOK
	}
}

// bodyError answers a body refused as a whole.
func (s *Server) bodyError(dst []byte, code int, msg string) []byte {
	out := appendErrorObject(dst, nil, code, msg, nil)
	s.recordBody(code, len(out)-len(dst))
	return out
}

// exec runs one request and appends its response (nothing for notifications).
// A panicking handler is answered with CodeInternal.
func (s *Server) exec(ctx context.Context, r *request, dst []byte) (out []byte) {
	if r.kind == kindInvalid {
		r.code = CodeInvalidRequest
		return appendErrorObject(dst, r.id, CodeInvalidRequest, r.errMsg, nil)
	}
	start := len(dst)
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("RPC handler panicked", "method", string(r.method), "panic", p, "stack", string(debug.Stack()))
			out = dst[:start]
			r.code = CodeInternal
			if r.kind == kindCall {
				out = appendErrorObject(out, r.id, CodeInternal, "method handler crashed", nil)
			}
		}
	}()
	out = s.run(ctx, r, dst)
	if r.kind == kindNotification {
		out = out[:start]
	}
	return out
}

func (s *Server) run(ctx context.Context, r *request, dst []byte) []byte {
	if len(r.method) > maxMethodNameLength {
		r.code = CodeInvalidRequest
		return appendErrorObject(dst, r.id, CodeInvalidRequest, "method name too long: "+
			string(appendUint(nil, uint64(len(r.method))))+" > 2048", nil)
	}
	m, ok := methods[string(r.method)]
	if !ok {
		r.code = CodeMethodNotFound
		return appendErrorObject(dst, r.id, CodeMethodNotFound,
			"the method "+string(r.method)+" does not exist/is not available", nil)
	}
	start := len(dst)
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	if r.id == nil {
		dst = append(dst, jsonNull...)
	} else {
		dst = append(dst, r.id...)
	}
	dst = append(dst, `,"result":`...)

	var err error
	if r.pre != nil {
		if r.pre.err == nil {
			dst = appendHash(dst, r.pre.hash)
		}
		err = r.pre.err
	} else {
		a := &r.args
		if err = splitParams(r.params, a, m.maxArgs); err == nil {
			dst, err = m.fn(s, ctx, a, dst)
		}
	}
	if err != nil {
		code, msg, data := errorFields(err)
		r.code = code
		return appendErrorObject(dst[:start], r.id, code, msg, data)
	}
	return append(dst, '}')
}

// batchState is the per-batch scratch space, pooled.
type batchState struct {
	elems []request
	spans []span
	bufs  [][]byte
}

type span struct {
	buf        int32 // worker buffer index
	start, end int32
}

var batchPool = sync.Pool{New: func() any { return new(batchState) }}

func (s *Server) serveBatch(ctx context.Context, body []byte, dst []byte) []byte {
	st := batchPool.Get().(*batchState)
	defer func() {
		clear(st.elems)
		st.elems = st.elems[:0]
		st.spans = st.spans[:0]
		for i := range st.bufs {
			if cap(st.bufs[i]) > maxPooledBuf {
				st.bufs[i] = nil
			} else {
				st.bufs[i] = st.bufs[i][:0]
			}
		}
		if cap(st.elems) > 4*DefaultMaxBatch {
			st.elems = nil
		}
		batchPool.Put(st)
	}()

	// Count first: a batch over the limit is refused as a whole.
	n := 0
	forEachElem(body, func([]byte) bool { n++; return true })
	if n == 0 {
		return s.bodyError(dst, CodeInvalidRequest, "empty batch")
	}
	if n > s.cfg.MaxBatch {
		// As go-ethereum: one error, with the id of the first call in the batch.
		var id []byte
		forEachElem(body, func(e []byte) bool {
			var r request
			parseRequest(e, &r)
			if r.kind == kindCall {
				id = r.id
				return false
			}
			return true
		})
		dst = append(dst, '[')
		mark := len(dst)
		dst = appendErrorObject(dst, id, CodeInvalidRequest, "batch too large", nil)
		s.recordBody(CodeInvalidRequest, len(dst)-mark)
		return append(dst, ']')
	}
	if cap(st.elems) < n {
		st.elems = make([]request, n)
	}
	st.elems = st.elems[:n]
	i := 0
	forEachElem(body, func(e []byte) bool {
		parseRequest(e, &st.elems[i])
		i++
		return true
	})
	reqs := st.elems

	// Limits (limits.go): one slot for the batch, waited for; one more per extra
	// worker, only when free now. One deadline and one answer budget for all items.
	var t0 time.Time
	if s.metrics != nil {
		t0 = time.Now()
	}
	if !s.acquire(ctx) {
		return s.rejectBatch(reqs, dst, t0)
	}
	defer s.release()
	ctx, cancel := s.requestTimeout(ctx, batchHasSync(reqs))
	defer cancel()
	var used atomic.Int64

	if s.batcher != nil {
		s.preSend(ctx, reqs)
	}

	workers := 1
	for workers < min(runtime.GOMAXPROCS(0), n) && s.tryAcquire() {
		workers++
	}
	defer func() {
		for range workers - 1 {
			s.release()
		}
	}()
	if workers <= 1 {
		return s.execSequential(ctx, reqs, dst, &used)
	}

	if cap(st.spans) < n {
		st.spans = make([]span, n)
	}
	st.spans = st.spans[:n]
	for len(st.bufs) < workers {
		st.bufs = append(st.bufs, nil)
	}
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			buf := st.bufs[w]
			for {
				k := int(next.Add(1) - 1)
				if k >= n {
					break
				}
				startOff := len(buf)
				buf = s.call(ctx, &reqs[k], buf, &used)
				st.spans[k] = span{buf: int32(w), start: int32(startOff), end: int32(len(buf))}
			}
			st.bufs[w] = buf
		}(w)
	}
	wg.Wait()

	wrote := false
	mark := len(dst)
	dst = append(dst, '[')
	for k := range n {
		sp := st.spans[k]
		if sp.end == sp.start {
			continue
		}
		if wrote {
			dst = append(dst, ',')
		}
		dst = append(dst, st.bufs[sp.buf][sp.start:sp.end]...)
		wrote = true
	}
	if !wrote {
		return dst[:mark] // only notifications: no response at all
	}
	return append(dst, ']')
}

func (s *Server) execSequential(ctx context.Context, reqs []request, dst []byte, used *atomic.Int64) []byte {
	mark := len(dst)
	dst = append(dst, '[')
	wrote := false
	for k := range reqs {
		before := len(dst)
		if wrote {
			dst = append(dst, ',')
		}
		afterComma := len(dst)
		dst = s.call(ctx, &reqs[k], dst, used)
		if len(dst) == afterComma {
			dst = dst[:before] // notification: no entry, drop the comma
			continue
		}
		wrote = true
	}
	if !wrote {
		return dst[:mark]
	}
	return append(dst, ']')
}

// preSend hands all well-formed eth_sendRawTransaction calls of a batch to the
// backend's BatchSender at once.
func (s *Server) preSend(ctx context.Context, reqs []request) {
	var (
		idx  []int
		raws [][]byte
	)
	for k := range reqs {
		r := &reqs[k]
		if r.kind == kindInvalid || string(r.method) != "eth_sendRawTransaction" {
			continue
		}
		var a args
		if splitParams(r.params, &a, 1) != nil {
			continue
		}
		v := a.get(0)
		if v == nil {
			continue
		}
		raw, err := parseBytes(0, v)
		if err != nil {
			continue // answered by the regular handler
		}
		idx = append(idx, k)
		raws = append(raws, raw)
	}
	if len(raws) < 2 {
		return
	}
	results := make([]preSent, len(raws))
	func() {
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("BatchSender panicked", "panic", p, "stack", string(debug.Stack()))
				for i := range results {
					results[i] = preSent{err: &Error{Code: CodeInternal, Message: "method handler crashed"}}
				}
			}
		}()
		hashes, errs := s.batcher.SendRawTransactions(ctx, raws)
		for i := range results {
			switch {
			case i < len(errs) && errs[i] != nil:
				results[i].err = errs[i]
			case i < len(hashes):
				results[i].hash = hashes[i]
			default:
				results[i].err = &Error{Code: CodeInternal, Message: "batch sender returned too few results"}
			}
		}
	}()
	for i, k := range idx {
		reqs[k].pre = &results[i]
	}
}

// Package rpc serves Ethereum JSON-RPC 2.0 over HTTP (fasthttp) from a Backend.
//
// Requests are POSTed JSON-RPC 2.0 objects or batches. Dispatch is a map from
// method name to a handler that decodes its own positional parameters; results
// are encoded by hand into the response buffer in the same shape go-ethereum
// prints them. Batch items are executed concurrently and answered in order;
// batched eth_sendRawTransaction calls go to BatchSender when the backend has it.
//
// Defaults that differ from go-ethereum: eth_estimateGas estimates against the
// "pending" block when no block is given (go-ethereum: "latest"). Any
// Content-Type is accepted. GET answers 200 with an empty body (health check),
// GET /health 200 while the process serves and GET /ready 200 or 503 from the
// backend's Readiness (health.go); OPTIONS answers CORS pre-flight requests.
// Answers of 1 KiB or more are gzip-compressed for clients that accept it.
//
// Limits shared by HTTP and WebSocket (limits.go): requests executing at once
// (Config.MaxConcurrent, then -32005 after Config.QueueTimeout), a deadline per
// request or batch (Config.RequestTimeout, -32002 "request timed out") and the
// answer size (Config.MaxResponseBytes, -32003 "response too large"). Per-method
// metrics go to Config.Metrics (metrics.go).
package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"
)

// Server is a JSON-RPC server over a Backend.
type Server struct {
	cfg     Config
	b       Backend
	batcher BatchSender // nil when the backend does not implement it
	log     *slog.Logger
	signer  types.Signer

	chainIDJSON []byte // cached eth_chainId result

	corsAll     bool
	corsOrigins []string

	// Limits and metrics (limits.go).
	slots       chan struct{}     // concurrency semaphore of Config.MaxConcurrent
	metrics     Metricer          // Config.Metrics; nil: none
	methodNames map[string]string // interned method names, for metric labels
	// deadline is the request context shared for deadlineSlack.
	deadline atomic.Pointer[sharedDeadline]

	baseCtx    context.Context
	cancelBase context.CancelFunc

	filterOnce  sync.Once
	filterTable *filterSet // eth_newFilter and friends (filters.go)

	// Open WebSocket connections (ws.go).
	wsMu     sync.Mutex
	wsConns  int
	wsWG     sync.WaitGroup
	wsQueued atomic.Int64 // bytes queued for WebSocket writers, all connections
	wsm      WSMetricer   // Config.Metrics when it implements WSMetricer; else a no-op

	// routes are extra GET handlers by path prefix (HandleGET), set before Start.
	routes []route

	mu      sync.Mutex
	stopped bool
	srv     *fasthttp.Server
	ln      net.Listener
	serveCh chan error
}

// NewServer checks cfg and creates a server; Start makes it listen.
func NewServer(cfg Config, b Backend, logger *slog.Logger) (*Server, error) {
	if b == nil {
		return nil, errors.New("rpc: nil backend")
	}
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: cfg,
		b:   b,
		log: logger,
	}
	if bs, ok := b.(BatchSender); ok {
		s.batcher = bs
	}
	if cc := b.ChainConfig(); cc != nil {
		s.signer = types.LatestSigner(cc)
	} else {
		s.signer = types.LatestSignerForChainID(b.ChainID())
	}
	s.chainIDJSON = appendBigHex(nil, b.ChainID())
	for _, o := range cfg.CORSOrigins {
		if o == "*" {
			s.corsAll = true
		}
		s.corsOrigins = append(s.corsOrigins, strings.ToLower(o))
	}
	s.baseCtx, s.cancelBase = context.WithCancel(context.Background())
	s.initLimits()
	return s, nil
}

// Start listens on Config.Addr and serves in the background.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errors.New("rpc: server stopped")
	}
	if s.srv != nil {
		return errors.New("rpc: server already started")
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	s.srv = &fasthttp.Server{
		Handler:                      s.Handler(),
		ErrorHandler:                 s.errorHandler,
		ReadTimeout:                  s.cfg.ReadTimeout,
		WriteTimeout:                 s.cfg.WriteTimeout,
		IdleTimeout:                  s.cfg.IdleTimeout,
		MaxRequestBodySize:           s.cfg.MaxBodyBytes,
		NoDefaultServerHeader:        true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		Logger:                       fasthttpLogger{s.log},
	}
	s.ln = ln
	s.serveCh = make(chan error, 1)
	srv := s.srv
	go func() { s.serveCh <- srv.Serve(ln) }()
	s.log.Info("JSON-RPC server started", "addr", ln.Addr().String())
	return nil
}

// Addr is the bound address once started (useful with port 0), else Config.Addr.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return s.ln.Addr().String()
	}
	return s.cfg.Addr
}

// Stop stops accepting connections, cancels running requests (waiting
// eth_sendRawTransactionSync calls return) and waits for open requests to finish
// or ctx to expire. A stopped server cannot be started again.
func (s *Server) Stop(ctx context.Context) error {
	s.cancelBase()
	s.mu.Lock()
	srv, ch, ln := s.srv, s.serveCh, s.ln
	already := s.stopped
	s.stopped = true
	s.mu.Unlock()
	if srv == nil || already {
		return nil
	}
	err := srv.ShutdownWithContext(ctx)
	// If Serve had not registered the listener yet, Shutdown did not close it.
	ln.Close()
	// WebSocket connections are hijacked: Shutdown does not wait for them. The
	// cancelled base context closes them.
	wsDone := make(chan struct{})
	go func() { s.wsWG.Wait(); close(wsDone) }()
	select {
	case <-wsDone:
	case <-ctx.Done():
	}
	select {
	case <-ch:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	s.log.Info("JSON-RPC server stopped")
	return err
}

// Handler returns the fasthttp request handler.
func (s *Server) Handler() fasthttp.RequestHandler { return s.serveHTTP }

// HandleBody answers one HTTP request body (a request or a batch) in-process. It
// returns the response body; nil when nothing is to be answered (notifications).
func (s *Server) HandleBody(ctx context.Context, body []byte) []byte {
	out, _ := s.serveBody(ctx, body, nil)
	if len(out) == 0 {
		return nil
	}
	return out
}

var (
	strContentTypeJSON = []byte("application/json")
	strAllowMethods    = "POST, GET, OPTIONS"
)

func (s *Server) serveHTTP(ctx *fasthttp.RequestCtx) {
	s.setCORS(ctx)
	if ctx.IsGet() && websocket.FastHTTPIsWebSocketUpgrade(ctx) {
		s.serveWS(ctx) // ws.go
		return
	}
	switch {
	case ctx.IsPost():
		body := ctx.PostBody()
		// Build the answer in the response's own (pooled) body buffer.
		buf := ctx.Response.SwapBody(nil)[:0]
		var status int
		buf, status = s.serveBody(s.baseCtx, body, buf)
		buf = compressBody(ctx, buf) // health.go
		ctx.Response.SwapBody(buf)
		ctx.SetStatusCode(status)
		ctx.Response.Header.SetContentTypeBytes(strContentTypeJSON)
	case ctx.IsGet() || ctx.IsHead():
		if h := s.routeFor(ctx.Path()); h != nil {
			h(ctx)
			return
		}
		switch string(ctx.Path()) {
		case "/health":
			s.serveHealth(ctx) // health.go
		case "/ready":
			s.serveReady(ctx)
		default:
			// Health check, as go-ethereum answers an empty GET.
			ctx.SetStatusCode(fasthttp.StatusOK)
			ctx.Response.Header.SetContentTypeBytes(strContentTypeJSON)
		}
	case ctx.IsOptions():
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		ctx.Response.Header.Set("Allow", strAllowMethods)
	default:
		ctx.Response.Header.Set("Allow", strAllowMethods)
		ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
		ctx.Response.Header.SetContentTypeBytes(strContentTypeJSON)
		ctx.SetBody(appendErrorObject(nil, nil, CodeInvalidRequest, "method not allowed", nil))
	}
}

type route struct {
	prefix string
	h      fasthttp.RequestHandler
}

// HandleGET serves GET and HEAD requests whose path starts with prefix with h
// (beside JSON-RPC on the same listener: the snapshot endpoint of
// bootstrapping replicas, for instance). Call it before Start.
func (s *Server) HandleGET(prefix string, h fasthttp.RequestHandler) {
	s.routes = append(s.routes, route{prefix: prefix, h: h})
}

func (s *Server) routeFor(path []byte) fasthttp.RequestHandler {
	for _, r := range s.routes {
		if len(path) >= len(r.prefix) && string(path[:len(r.prefix)]) == r.prefix {
			return r.h
		}
	}
	return nil
}

// errorHandler answers requests fasthttp could not read, notably bodies over
// MaxRequestBodySize, with a JSON-RPC error.
func (s *Server) errorHandler(ctx *fasthttp.RequestCtx, err error) {
	s.setCORS(ctx)
	ctx.Response.Header.SetContentTypeBytes(strContentTypeJSON)
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		ctx.SetStatusCode(fasthttp.StatusRequestEntityTooLarge)
		out := s.tooLarge(nil)
		s.recordBody(CodeInvalidRequest, len(out))
		ctx.SetBody(out)
		return
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		ctx.SetStatusCode(fasthttp.StatusRequestTimeout)
		ctx.SetBody(appendErrorObject(nil, nil, CodeInvalidRequest, "request timeout", nil))
		return
	}
	ctx.SetStatusCode(fasthttp.StatusBadRequest)
	ctx.SetBody(appendErrorObject(nil, nil, CodeInvalidRequest, "bad request: "+err.Error(), nil))
}

func (s *Server) tooLarge(dst []byte) []byte {
	msg := "request body too large (max " + string(appendUint(nil, uint64(s.cfg.MaxBodyBytes))) + " bytes)"
	return appendErrorObject(dst, nil, CodeInvalidRequest, msg, nil)
}

// setCORS sets the CORS headers of an answer, as rs/cors (go-ethereum's CORS
// handler) does: with a list of origins every answer varies by Origin (allowed
// or not, and with none), so shared caches key on it; pre-flight answers also
// vary by the requested method and headers, which are echoed.
func (s *Server) setCORS(ctx *fasthttp.RequestCtx) {
	if len(s.corsOrigins) == 0 {
		return
	}
	h := &ctx.Response.Header
	if !s.corsAll {
		h.Add("Vary", "Origin")
	}
	if ctx.IsOptions() {
		h.Add("Vary", "Access-Control-Request-Method")
		h.Add("Vary", "Access-Control-Request-Headers")
	}
	origin := ctx.Request.Header.Peek("Origin")
	if len(origin) == 0 {
		return
	}
	if s.corsAll {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		o := strings.ToLower(string(origin))
		if !slices.Contains(s.corsOrigins, o) {
			return
		}
		h.SetBytesV("Access-Control-Allow-Origin", origin)
	}
	if ctx.IsOptions() {
		h.Set("Access-Control-Allow-Methods", strAllowMethods)
		if req := ctx.Request.Header.Peek("Access-Control-Request-Headers"); len(req) > 0 {
			h.SetBytesV("Access-Control-Allow-Headers", req)
		} else {
			h.Set("Access-Control-Allow-Headers", "Content-Type")
		}
		h.Set("Access-Control-Max-Age", "600")
	}
}

// syncTimeout resolves the eth_sendRawTransactionSync wait for a requested
// timeout in milliseconds (0: none requested).
func (s *Server) syncTimeout(ms uint64) time.Duration {
	max := s.cfg.SyncSendMaxTimeout
	if ms == 0 {
		return min(DefaultSyncSendTimeout, max)
	}
	if ms > uint64(max/time.Millisecond) {
		return max
	}
	return time.Duration(ms) * time.Millisecond
}

// fasthttpLogger routes fasthttp's connection-level messages (client errors such
// as oversized bodies) to the debug log.
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug("fasthttp: " + fmt.Sprintf(format, args...))
}

package rpc

import (
	"errors"
	"sync"

	"github.com/valyala/fasthttp"
)

// Readiness is an optional Backend extension: Ready reports whether the
// backend can serve requests now (nil) or why not. GET /ready answers 200 or
// 503 from it; a backend without it is ready while the server runs. Ready is
// called on the HTTP goroutine of every probe: it must be cheap, must not block
// and must be safe for concurrent use.
type Readiness interface {
	Ready() error
}

var errServerStopping = errors.New("rpc server stopping")

// ready reports whether GET /ready answers 200.
func (s *Server) ready() error {
	if s.baseCtx.Err() != nil {
		return errServerStopping
	}
	if r, ok := s.b.(Readiness); ok {
		return r.Ready()
	}
	return nil
}

// serveHealth answers GET /health: 200 while the process serves HTTP at all
// (liveness).
func (s *Server) serveHealth(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.Header.SetContentTypeBytes(strContentTypeJSON)
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetBodyString(`{"status":"ok"}`)
}

// serveReady answers GET /ready: 200 when the server and its backend can serve
// requests, 503 with the reason otherwise (readiness, for load balancers).
func (s *Server) serveReady(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.Header.SetContentTypeBytes(strContentTypeJSON)
	if err := s.ready(); err != nil {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		body := append([]byte(`{"status":"unavailable","reason":`), appendString(nil, err.Error())...)
		ctx.SetBody(append(body, '}'))
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetBodyString(`{"status":"ok"}`)
}

// gzipMinBytes is the smallest answer sent compressed: below it the gzip
// framing (~20 bytes) and the CPU time outweigh the saving.
const gzipMinBytes = 1024

// gzipLevel favours speed: JSON of hex strings compresses about as well at
// level 1 as at the default level, in a fraction of the time.
const gzipLevel = fasthttp.CompressBestSpeed

// gzipBufs holds scratch buffers for compressed answers.
var gzipBufs = sync.Pool{New: func() any { return new([]byte) }}

// compressBody gzips an HTTP answer body in place when the client accepts gzip
// and the body is at least gzipMinBytes, setting Content-Encoding and Vary.
// go-ethereum compresses every answer when asked; tiny ones are left alone here.
func compressBody(ctx *fasthttp.RequestCtx, body []byte) []byte {
	if len(body) < gzipMinBytes {
		return body
	}
	h := &ctx.Response.Header
	h.Add("Vary", "Accept-Encoding")
	if !ctx.Request.Header.HasAcceptEncoding("gzip") {
		return body
	}
	zp := gzipBufs.Get().(*[]byte)
	z := fasthttp.AppendGzipBytesLevel((*zp)[:0], body, gzipLevel)
	body = append(body[:0], z...)
	if cap(z) <= maxPooledBuf {
		*zp = z
		gzipBufs.Put(zp)
	}
	h.SetContentEncoding("gzip")
	return body
}

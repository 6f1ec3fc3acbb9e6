package rpc

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"
)

// WebSocket transport. Every text (or binary) frame is one JSON-RPC request or
// batch, answered through the same dispatch as HTTP (serveBody), so limits,
// metrics and handlers are shared. What differs:
//
//   - eth_subscribe / eth_unsubscribe work (subs.go); a subscription's
//     notifications are written after the answer that created it.
//   - At most Config.WSMaxInflight requests of one connection run at once; the
//     reader stops reading while that many run, so a client that floods requests
//     is slowed down by TCP, not buffered.
//   - One writer goroutine owns the socket. Answers and notifications queue for
//     it; a connection whose queue holds more than Config.WSQueueBytes of answers
//     (a client that sends but does not read) is closed. Notifications wait for
//     queue space instead, and a subscriber that falls behind catches up from the
//     hub or the backend (mini-blocks and heads), so nothing is lost for a slow
//     reader that keeps reading; one that stops reading altogether is closed when
//     a write does not finish within Config.WriteTimeout.
//   - The server pings every Config.WSPingInterval; a peer that sends nothing
//     (not even a pong) for two intervals is closed.

// wsWriteBuf is the size of the websocket writer's buffer; larger frames are
// written in several syscalls.
const wsWriteBuf = 32 << 10

var errConnClosed = errors.New("connection closed")

func (s *Server) wsUpgrader() *websocket.FastHTTPUpgrader {
	return &websocket.FastHTTPUpgrader{
		ReadBufferSize:  4096,
		WriteBufferSize: wsWriteBuf,
		CheckOrigin:     s.wsOriginAllowed,
	}
}

// wsOriginAllowed admits clients that send no Origin (non-browser clients),
// browsers on localhost, and the origins allowed by Config.CORSOrigins.
func (s *Server) wsOriginAllowed(ctx *fasthttp.RequestCtx) bool {
	origin := string(ctx.Request.Header.Peek("Origin"))
	if origin == "" || s.corsAll {
		return true
	}
	lo := strings.ToLower(origin)
	for _, o := range s.corsOrigins {
		if o == lo {
			return true
		}
	}
	u, err := url.Parse(lo)
	if err != nil {
		return false
	}
	h := u.Hostname()
	return h == "localhost" || h == "127.0.0.1" || h == "::1"
}

func (s *Server) serveWS(ctx *fasthttp.RequestCtx) {
	s.wsMu.Lock()
	full := s.wsConns >= s.cfg.WSMaxConns
	if !full {
		s.wsConns++
		s.wsWG.Add(1)
	}
	s.wsMu.Unlock()
	if full {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.Response.Header.SetContentTypeBytes(strContentTypeJSON)
		ctx.SetBody(appendErrorObject(nil, nil, CodeLimitExceeded, "too many WebSocket connections", nil))
		return
	}
	release := func() {
		s.wsMu.Lock()
		s.wsConns--
		s.wsMu.Unlock()
		s.wsm.RecordWSConn(-1)
		s.wsWG.Done()
	}
	s.wsm.RecordWSConn(1)
	remote := ctx.RemoteAddr().String()
	err := s.wsUpgrader().Upgrade(ctx, func(c *websocket.Conn) {
		defer release()
		newWSConn(s, c, remote).serve()
	})
	if err != nil {
		// The upgrader has answered the client (400/403); the handler never runs.
		release()
		s.log.Debug("WebSocket upgrade refused", "remote", remote, "err", err)
	}
}

// wsMsg is one frame: the concatenation of its parts. Notifications share
// their (large) payload between subscribers and add a per-subscription prefix.
type wsMsg struct {
	head, body, tail []byte
}

func (m wsMsg) size() int { return len(m.head) + len(m.body) + len(m.tail) }

type wsConn struct {
	s      *Server
	c      *websocket.Conn
	remote string
	ctx    context.Context
	cancel context.CancelFunc

	inflight chan struct{} // a token per running request
	wg       sync.WaitGroup

	mu     sync.Mutex
	queue  []wsMsg
	queued int           // bytes in queue
	signal chan struct{} // cap 1: wakes the writer
	space  chan struct{} // closed and replaced when the writer took the queue
	closed bool
	reason string // for the log
	label  string // for metrics: a fixed set of reasons
	subs   map[string]*subscription
}

func newWSConn(s *Server, c *websocket.Conn, remote string) *wsConn {
	ctx, cancel := context.WithCancel(s.baseCtx)
	return &wsConn{
		s: s, c: c, remote: remote, ctx: ctx, cancel: cancel,
		inflight: make(chan struct{}, s.cfg.WSMaxInflight),
		signal:   make(chan struct{}, 1),
		space:    make(chan struct{}),
		subs:     make(map[string]*subscription),
	}
}

// serve runs the connection until either side closes it, then waits for its
// requests and subscriptions to end.
func (w *wsConn) serve() {
	w.s.log.Debug("WebSocket connection opened", "remote", w.remote)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		w.writeLoop()
	}()
	w.readLoop()
	w.close("peer", "")
	w.wg.Wait()
	<-writerDone
	w.mu.Lock()
	reason, label := w.reason, w.label
	w.mu.Unlock()
	w.s.wsm.RecordWSClosed(label)
	w.s.log.Debug("WebSocket connection closed", "remote", w.remote, "reason", reason)
}

func (w *wsConn) readLoop() {
	c, cfg := w.c, &w.s.cfg
	c.SetReadLimit(int64(cfg.MaxBodyBytes))
	idle := 2 * cfg.WSPingInterval
	_ = c.SetReadDeadline(time.Now().Add(idle))
	c.SetPongHandler(func(string) error { return c.SetReadDeadline(time.Now().Add(idle)) })
	for {
		typ, msg, err := c.ReadMessage()
		if err != nil {
			switch {
			case errors.Is(err, websocket.ErrReadLimit):
				w.closeWith(websocket.CloseMessageTooBig, "frame_too_large", "message larger than "+
					string(appendUint(nil, uint64(cfg.MaxBodyBytes)))+" bytes")
			case websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived):
				w.close("peer", "closed by peer")
			default:
				w.close("error", err.Error())
			}
			return
		}
		_ = c.SetReadDeadline(time.Now().Add(idle))
		if w.ctx.Err() != nil {
			return // closed meanwhile (see close)
		}
		if typ != websocket.TextMessage && typ != websocket.BinaryMessage {
			continue
		}
		select {
		case w.inflight <- struct{}{}:
		case <-w.ctx.Done():
			return
		}
		w.wg.Add(1)
		go w.handle(msg)
	}
}

// wsCallKey carries the connection and the request's new subscriptions in the
// handler context.
type wsCallKey struct{}

type wsCall struct {
	conn    *wsConn
	mu      sync.Mutex
	started []*subscription // created by this request, started after its answer
}

func (w *wsConn) handle(msg []byte) {
	defer func() {
		<-w.inflight
		w.wg.Done()
	}()
	call := &wsCall{conn: w}
	ctx := context.WithValue(w.ctx, wsCallKey{}, call)
	out := w.s.serveWSBody(ctx, msg, nil)
	if len(out) > 0 {
		if err := w.enqueue(wsMsg{body: out}, false); err != nil {
			call.cancelAll()
			return
		}
	}
	call.mu.Lock()
	subs := call.started
	call.started = nil
	call.mu.Unlock()
	for _, sub := range subs {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			sub.run()
		}()
	}
}

func (c *wsCall) cancelAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sub := range c.started {
		c.conn.removeSub(sub.id)
	}
	c.started = nil
}

// enqueue queues a frame for the writer. Answers (wait false) close a connection
// whose queue is over its limit; notifications (wait true) wait for room.
func (w *wsConn) enqueue(m wsMsg, wait bool) error {
	n := m.size()
	limit := w.s.cfg.WSQueueBytes
	for {
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return errConnClosed
		}
		if w.queued == 0 || w.queued+n <= limit {
			w.queue = append(w.queue, m)
			w.queued += n
			w.s.wsQueued.Add(int64(n))
			w.s.wsm.RecordWSQueued(n)
			w.mu.Unlock()
			select {
			case w.signal <- struct{}{}:
			default:
			}
			return nil
		}
		space := w.space
		w.mu.Unlock()
		if !wait {
			w.closeWith(websocket.ClosePolicyViolation, "unread_answers", "client does not read its answers")
			return errConnClosed
		}
		select {
		case <-space:
		case <-w.ctx.Done():
			return errConnClosed
		}
	}
}

func (w *wsConn) writeLoop() {
	ping := time.NewTicker(w.s.cfg.WSPingInterval)
	defer ping.Stop()
	var batch []wsMsg
	for {
		select {
		case <-w.signal:
		case <-ping.C:
			if err := w.c.WriteControl(websocket.PingMessage, nil, time.Now().Add(w.s.cfg.WriteTimeout)); err != nil {
				w.close("slow_reader", "ping: "+err.Error())
				return
			}
			continue
		case <-w.ctx.Done():
			w.close("server_stop", "server stopping")
			return
		}
		w.mu.Lock()
		batch, w.queue = w.queue, batch[:0]
		w.mu.Unlock()
		for i, m := range batch {
			if err := w.write(m); err != nil {
				w.close("slow_reader", "write: "+err.Error())
				return
			}
			w.mu.Lock()
			if w.closed {
				w.mu.Unlock()
				return
			}
			w.queued -= m.size()
			w.s.wsQueued.Add(-int64(m.size()))
			w.s.wsm.RecordWSQueued(-m.size())
			if w.queued < w.s.cfg.WSQueueBytes/2 || i == len(batch)-1 {
				close(w.space)
				w.space = make(chan struct{})
			}
			w.mu.Unlock()
			batch[i] = wsMsg{}
		}
	}
}

func (w *wsConn) write(m wsMsg) error {
	if err := w.c.SetWriteDeadline(time.Now().Add(w.s.cfg.WriteTimeout)); err != nil {
		return err
	}
	wr, err := w.c.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	for _, p := range [...][]byte{m.head, m.body, m.tail} {
		if len(p) == 0 {
			continue
		}
		if _, err := wr.Write(p); err != nil {
			return err
		}
	}
	return wr.Close()
}

// closeWith sends a close frame with a reason, then closes.
func (w *wsConn) closeWith(code int, label, reason string) {
	_ = w.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
	w.close(label, reason)
}

// close ends the connection once: requests and subscriptions are cancelled and
// the reader and writer stop.
func (w *wsConn) close(label, reason string) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.reason, w.label = reason, label
	w.s.wsQueued.Add(-int64(w.queued))
	w.s.wsm.RecordWSQueued(-w.queued)
	w.queue, w.queued = nil, 0
	close(w.space)
	w.mu.Unlock()
	w.cancel()
	// The hijacked connection is closed by fasthttp once serve returns; expired
	// deadlines end the reader and any blocked write now.
	nc := w.c.NetConn()
	_ = nc.SetReadDeadline(time.Now())
	_ = nc.SetWriteDeadline(time.Now())
}

func (w *wsConn) addSub(sub *subscription) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errConnClosed
	}
	if len(w.subs) >= w.s.cfg.WSMaxSubscriptions {
		return limitExceeded("too many subscriptions on this connection (max %d)", w.s.cfg.WSMaxSubscriptions)
	}
	w.subs[sub.id] = sub
	w.s.wsm.RecordWSSub(sub.kind.String(), 1)
	return nil
}

func (w *wsConn) removeSub(id string) bool {
	w.mu.Lock()
	sub, ok := w.subs[id]
	delete(w.subs, id)
	w.mu.Unlock()
	if ok {
		sub.cancel()
		w.s.wsm.RecordWSSub(sub.kind.String(), -1)
	}
	return ok
}

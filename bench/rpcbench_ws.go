package bench

// The WebSocket phase of the RPC benchmark: how many eth_subscribe("miniBlocks")
// subscribers one sequencer feeds at 100 mini-blocks/s before one falls behind.
//
// A background sender offers pre-signed transfers at RPCOptions.WSTxRate in
// small batches every 5 ms, so that every 10 ms mini-block holds transactions
// (the sequencer makes no empty mini-blocks). For K = WSStart, 2·WSStart, …
// up to WSMax, K WebSocket clients connect and subscribe; after a short settle
// each mini-block made (by its timestamp) within a WSDuration window must reach
// every client. A client keeps up when it received every such mini-block, in
// index order without gaps, with a lag (receive time − the mini-block's
// timestamp) whose p99 is at most WSLag. The series stops at the first K where
// a client did not keep up or the sequencer made fewer than 90% of its
// nominal mini-blocks.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/kestrel-l2/kestrel/sequencer"
)

// wsPrefix is how much of each frame a subscriber reads to find the index and
// the timestamp (they come first in the notification); the rest is discarded.
const wsPrefix = 512

// wsMinRate is the share of the nominal mini-block rate a step must achieve.
const wsMinRate = 0.9

// WSStep is one subscriber count.
type WSStep struct {
	Subscribers int `json:"subscribers"`
	// KeptUp counts the subscribers that received every mini-block of the
	// window in order with a p99 lag within the threshold.
	KeptUp int  `json:"keptUp"`
	OK     bool `json:"ok"`
	// Reason says why the step failed.
	Reason string `json:"reason,omitempty"`
	// Lagging, Missing and Failed count subscribers whose p99 lag was over the
	// threshold, that missed or reordered a mini-block, and whose connection
	// failed.
	Lagging int `json:"lagging"`
	Missing int `json:"missing"`
	Failed  int `json:"failed"`
	// MiniBlocks were made within the window (by timestamp); MiniBlocksPerSec
	// is their rate.
	MiniBlocks       int     `json:"miniBlocks"`
	MiniBlocksPerSec float64 `json:"miniBlocksPerSec"`
	// Frames were received within the window by all subscribers together, of
	// FrameBytes on average.
	Frames     int     `json:"frames"`
	FrameBytes float64 `json:"frameBytes"`
	// Lag over every frame of every subscriber; WorstP99Ms is the highest
	// per-subscriber p99.
	LagP50Ms   float64 `json:"lagP50Ms"`
	LagP99Ms   float64 `json:"lagP99Ms"`
	LagMaxMs   float64 `json:"lagMaxMs"`
	WorstP99Ms float64 `json:"worstSubscriberP99Ms"`
	// ConnectTime is how long connecting and subscribing all of them took.
	ConnectTime time.Duration `json:"connectNs"`
	// BackgroundTxPerSec is the background load actually sent during the step.
	BackgroundTxPerSec float64 `json:"backgroundTxPerSec"`
	// RecoveredAfter is, after a failed step, how long the node took to return
	// to steady state (mini-blocks of the usual size, on time) before the next
	// step started.
	RecoveredAfter time.Duration `json:"recoveredAfterNs,omitempty"`
}

// WSReport is the WebSocket phase.
type WSReport struct {
	TxRate            int           `json:"backgroundTxRate"`
	MiniBlockInterval time.Duration `json:"miniBlockIntervalNs"`
	LagThreshold      time.Duration `json:"lagThresholdNs"`
	Window            time.Duration `json:"windowNs"`
	Steps             []WSStep      `json:"steps"`
	// MaxKeptUp is the largest subscriber count at which every subscriber kept
	// up (0: none); FirstFailure the count that failed (0: none up to the cap).
	MaxKeptUp    int    `json:"maxKeptUp"`
	FirstFailure int    `json:"firstFailure,omitempty"`
	Note         string `json:"note"`
	// BackgroundErrors counts background transactions the node refused.
	BackgroundErrors int `json:"backgroundErrors"`
}

func (ws *WSReport) nominalRate() float64 {
	return float64(time.Second) / float64(ws.MiniBlockInterval)
}

func (ws *WSReport) line() string {
	s := fmt.Sprintf("ws miniBlocks: %d subscribers kept up at %.0f mini-blocks/s (lag p99 <= %v)", ws.MaxKeptUp, ws.nominalRate(), ws.LagThreshold)
	switch {
	case ws.FirstFailure > 0:
		s += fmt.Sprintf("; %d did not", ws.FirstFailure)
	case len(ws.Steps) > 0:
		s += "; the cap was reached without falling behind"
	}
	return s
}

func (ws *WSReport) writeTable(out io.Writer) {
	fmt.Fprintf(out, "WebSocket miniBlocks subscribers (Kestrel; mini-block interval %v, background %d transfers/s, %v window per step, behind = a missed/reordered mini-block or lag p99 > %v):\n",
		ws.MiniBlockInterval, ws.TxRate, ws.Window, ws.LagThreshold)
	fmt.Fprintln(out, "- "+ws.Note)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "subscribers\tkept up\tmini-blocks/s\tframe KiB\tlag p50\tlag p99\tworst sub p99\tlag max\tbackground tx/s\tconnect\t result")
	for _, s := range ws.Steps {
		result := "ok"
		if !s.OK {
			result = "BEHIND: " + s.Reason
		}
		if s.RecoveredAfter > 0 {
			result += fmt.Sprintf(" (steady again %v later)", s.RecoveredAfter.Round(100*time.Millisecond))
		}
		fmt.Fprintf(tw, "%d\t%d\t%.1f\t%.1f\t%.1fms\t%.1fms\t%.1fms\t%.1fms\t%.0f\t%v\t %s\n", s.Subscribers, s.KeptUp, s.MiniBlocksPerSec, s.FrameBytes/1024,
			s.LagP50Ms, s.LagP99Ms, s.WorstP99Ms, s.LagMaxMs, s.BackgroundTxPerSec, s.ConnectTime.Round(time.Millisecond), result)
	}
	tw.Flush()
	if ws.FirstFailure > 0 {
		fmt.Fprintf(out, "Largest subscriber count that kept up: %d (%d fell behind)\n", ws.MaxKeptUp, ws.FirstFailure)
	} else {
		fmt.Fprintf(out, "Largest subscriber count that kept up: %d (the cap; none fell behind)\n", ws.MaxKeptUp)
	}
}

// bgSender offers transactions at a steady rate.
type bgSender struct {
	sent   atomic.Int64
	errs   atomic.Int64
	errMsg atomic.Pointer[string]
	out    atomic.Bool // ran out of transactions
	stop   chan struct{}
	done   chan struct{}
}

func startBackground(url string, txs []RawTx, rate int) (*bgSender, error) {
	c, err := newRPCClient(url, 2)
	if err != nil {
		return nil, err
	}
	b := &bgSender{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		defer c.close()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		start := time.Now()
		next := 0
		for {
			select {
			case <-b.stop:
				return
			case <-tick.C:
			}
			due := min(int(time.Since(start).Seconds()*float64(rate)), len(txs))
			if due <= next {
				if next == len(txs) {
					b.out.Store(true)
				}
				continue
			}
			for next < due {
				idx := make([]int, 0, min(due-next, maxBatch))
				for ; next < due && len(idx) < maxBatch; next++ {
					idx = append(idx, next)
				}
				raw, err := c.post(sendBody(txs, idx), 30*time.Second)
				if err == nil && bytes.Contains(raw, strErrorKey) {
					err = fmt.Errorf("%.200s", raw)
				}
				if err != nil {
					b.errs.Add(1)
					msg := err.Error()
					b.errMsg.CompareAndSwap(nil, &msg)
				}
				b.sent.Add(int64(len(idx)))
			}
		}
	}()
	return b, nil
}

func (b *bgSender) close() {
	close(b.stop)
	<-b.done
}

// wsSub is one subscriber's connection and what it saw in the window.
type wsSub struct {
	conn *websocket.Conn
	// Set by the reader; read after it ended.
	lags        []int32 // microseconds
	first, last uint64
	frames      int
	bytes       int64
	disorder    bool
	err         error
}

// wsWindow is the measuring window in unix milliseconds (mini-block time),
// published to the readers once every subscriber is connected.
type wsWindow struct {
	from, to atomic.Int64
}

// parseHexField finds `"key":"0x…"` in b and returns its value.
func parseHexField(b []byte, key string) (uint64, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := b[i+len(key):]
	if len(rest) < 3 || rest[0] != '"' || rest[1] != '0' || rest[2] != 'x' {
		return 0, false
	}
	rest = rest[3:]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(rest[:end]), 16, 64)
	return v, err == nil
}

// parseMiniBlockFrame reads a miniBlocks notification's index and timestamp
// (unix ms) from the frame's beginning.
func parseMiniBlockFrame(prefix []byte) (index, tsMs uint64, err error) {
	if bytes.Contains(prefix, []byte(`"missingIndex"`)) || bytes.Contains(prefix, []byte(`"result":{"error"`)) {
		return 0, 0, fmt.Errorf("subscription error: %.200s", prefix)
	}
	index, ok1 := parseHexField(prefix, `"result":{"index":`)
	tsMs, ok2 := parseHexField(prefix, `,"timestamp":`)
	if !ok1 || !ok2 {
		return 0, 0, fmt.Errorf("not a miniBlocks notification: %.200s", prefix)
	}
	return index, tsMs, nil
}

// read consumes frames until the connection ends, recording those whose
// mini-block timestamp falls in the window.
func (s *wsSub) read(win *wsWindow) {
	buf := make([]byte, wsPrefix)
	for {
		_, r, err := s.conn.NextReader()
		if err != nil {
			s.err = err
			return
		}
		n, err := io.ReadFull(r, buf)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			s.err = err
			return
		}
		rest, err := io.Copy(io.Discard, r)
		if err != nil {
			s.err = err
			return
		}
		// The frame's last byte arrived now.
		now := time.Now().UnixMicro()
		idx, ts, err := parseMiniBlockFrame(buf[:n])
		if err != nil {
			s.err = err
			return
		}
		from, to := win.from.Load(), win.to.Load()
		if from == 0 || int64(ts) < from || int64(ts) >= to {
			continue
		}
		if s.frames > 0 && idx != s.last+1 {
			s.disorder = true
		}
		if s.frames == 0 {
			s.first = idx
		}
		s.last = idx
		s.frames++
		s.bytes += int64(n) + rest
		s.lags = append(s.lags, int32(min(now-int64(ts)*1000, 1<<31-1)))
	}
}

var subscribeMsg = []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["miniBlocks"]}`)

// dialSub connects and subscribes, returning once the subscription is
// confirmed.
func dialSub(ctx context.Context, url string) (*websocket.Conn, error) {
	d := websocket.Dialer{ReadBufferSize: 64 << 10, WriteBufferSize: 4096, HandshakeTimeout: 30 * time.Second}
	conn, _, err := d.DialContext(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	if err := conn.WriteMessage(websocket.TextMessage, subscribeMsg); err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			conn.Close()
			return nil, err
		}
		if bytes.Contains(msg, []byte(`"id":1`)) && !bytes.Contains(msg, []byte(`"method":"eth_subscription"`)) {
			if bytes.Contains(msg, strErrorKey) {
				conn.Close()
				return nil, fmt.Errorf("eth_subscribe: %.200s", msg)
			}
			break
		}
	}
	_ = conn.SetReadDeadline(time.Time{})
	return conn, nil
}

func runWS(ctx context.Context, node *Node, bg []RawTx, o RPCOptions) (*WSReport, error) {
	rep := &WSReport{
		TxRate: o.WSTxRate, MiniBlockInterval: sequencer.DefaultConfig().MiniBlockInterval, LagThreshold: o.WSLag, Window: o.WSDuration,
		Note: "the subscribers' clients run in this process and share its cores with the sequencer and the background sender; each reads only a frame's first bytes and discards the rest",
	}
	bgs, err := startBackground(node.URL(), bg, o.WSTxRate)
	if err != nil {
		return rep, err
	}
	defer bgs.close()
	time.Sleep(time.Second) // steady state
	url := "ws://" + node.Seq.RPCAddr()
	var baseline float64 // frame bytes of the first step that kept up
	try := func(k int) (bool, error) {
		fmt.Fprintf(o.Progress, "rpc: %d WebSocket subscribers...\n", k)
		step, err := wsStep(ctx, url, k, o, bgs, rep.nominalRate())
		if err != nil {
			return false, err
		}
		rep.Steps = append(rep.Steps, *step)
		rep.BackgroundErrors = int(bgs.errs.Load())
		fmt.Fprintf(o.Progress, "rpc: %d subscribers: %d kept up, %.1f mini-blocks/s, lag p50 %.1fms p99 %.1fms worst p99 %.1fms %s\n",
			k, step.KeptUp, step.MiniBlocksPerSec, step.LagP50Ms, step.LagP99Ms, step.WorstP99Ms, step.Reason)
		if rep.BackgroundErrors > 0 {
			return false, fmt.Errorf("%d background batches failed, e.g. %s", rep.BackgroundErrors, *bgs.errMsg.Load())
		}
		if bgs.out.Load() {
			return false, errors.New("the background transactions ran out during the phase")
		}
		if step.OK {
			rep.MaxKeptUp = max(rep.MaxKeptUp, k)
			if baseline == 0 {
				baseline = step.FrameBytes
			}
			return true, ctx.Err()
		}
		if rep.FirstFailure == 0 || k < rep.FirstFailure {
			rep.FirstFailure = k
		}
		// A failed step leaves a backlog (the sequencer fell behind the
		// background load and makes oversized mini-blocks until it catches
		// up); the next step must not inherit it.
		if baseline > 0 {
			d, err := waitRecovered(ctx, url, baseline, o.WSLag)
			if err != nil {
				return false, fmt.Errorf("after %d subscribers: %w", k, err)
			}
			rep.Steps[len(rep.Steps)-1].RecoveredAfter = d
			fmt.Fprintf(o.Progress, "rpc: back to steady state after %v\n", d.Round(time.Millisecond))
		}
		return false, ctx.Err()
	}
	for k := o.WSStart; k <= o.WSMax; k *= 2 {
		ok, err := try(k)
		if err != nil {
			return rep, err
		}
		if !ok {
			break
		}
	}
	// Bisect between the last count that kept up and the first that did not.
	for range o.WSRefine {
		lo, hi := rep.MaxKeptUp, rep.FirstFailure
		if hi == 0 || lo == 0 || hi-lo < max(2, lo/10) {
			break
		}
		if _, err := try((lo + hi) / 2); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func wsStep(ctx context.Context, url string, k int, o RPCOptions, bgs *bgSender, nominal float64) (*WSStep, error) {
	step := &WSStep{Subscribers: k}
	subs := make([]*wsSub, k)
	win := &wsWindow{}
	t0 := time.Now()
	var (
		wg      sync.WaitGroup
		dialErr atomic.Pointer[error]
		next    atomic.Int64
	)
	for range min(k, 32) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= k || dialErr.Load() != nil {
					return
				}
				conn, err := dialSub(ctx, url)
				if err != nil {
					err = fmt.Errorf("subscriber %d: %w", i, err)
					dialErr.CompareAndSwap(nil, &err)
					return
				}
				subs[i] = &wsSub{conn: conn}
			}
		}()
	}
	wg.Wait()
	step.ConnectTime = time.Since(t0)
	var readers sync.WaitGroup
	closeAll := func() {
		for _, s := range subs {
			if s != nil {
				s.conn.Close()
			}
		}
		readers.Wait()
	}
	for _, s := range subs {
		if s != nil {
			readers.Add(1)
			go func() { defer readers.Done(); s.read(win) }()
		}
	}
	if p := dialErr.Load(); p != nil {
		closeAll()
		step.Reason = "connect: " + (*p).Error()
		step.Failed = k
		return step, nil
	}
	time.Sleep(500 * time.Millisecond) // settle
	from := time.Now()
	sent0 := bgs.sent.Load()
	win.to.Store(from.Add(o.WSDuration).UnixMilli())
	win.from.Store(from.UnixMilli())
	// Frames made in the window may arrive until well after it; one later than
	// twice the threshold plus half a second counts as missed.
	select {
	case <-time.After(o.WSDuration):
	case <-ctx.Done():
		closeAll()
		return nil, ctx.Err()
	}
	step.BackgroundTxPerSec = float64(bgs.sent.Load()-sent0) / o.WSDuration.Seconds()
	time.Sleep(2*o.WSLag + 500*time.Millisecond)
	closeAll()

	// The mini-blocks of the window: from the lowest to the highest index any
	// subscriber saw with a timestamp in it.
	var lo, hi uint64
	seen := false
	for _, s := range subs {
		if s.frames == 0 {
			continue
		}
		if !seen || s.first < lo {
			lo = s.first
		}
		if !seen || s.last > hi {
			hi = s.last
		}
		seen = true
	}
	if seen {
		step.MiniBlocks = int(hi - lo + 1)
	}
	step.MiniBlocksPerSec = float64(step.MiniBlocks) / o.WSDuration.Seconds()
	var all []int32
	var bytesTotal int64
	for _, s := range subs {
		all = append(all, s.lags...)
		step.Frames += s.frames
		bytesTotal += s.bytes
		slices.Sort(s.lags)
		p99 := percentileI32(s.lags, 99)
		step.WorstP99Ms = max(step.WorstP99Ms, p99)
		failed := s.err != nil && !isClosedByUs(s.err)
		switch {
		case failed:
			step.Failed++
		case s.frames != step.MiniBlocks || s.first != lo || s.disorder:
			step.Missing++
		case p99 > msf(o.WSLag):
			step.Lagging++
		default:
			step.KeptUp++
		}
	}
	if step.Frames > 0 {
		step.FrameBytes = float64(bytesTotal) / float64(step.Frames)
	}
	slices.Sort(all)
	step.LagP50Ms, step.LagP99Ms = percentileI32(all, 50), percentileI32(all, 99)
	if len(all) > 0 {
		step.LagMaxMs = float64(all[len(all)-1]) / 1000
	}
	var reasons []string
	if step.MiniBlocks == 0 {
		reasons = append(reasons, "no mini-block in the window")
	} else if step.MiniBlocksPerSec < wsMinRate*nominal {
		reasons = append(reasons, fmt.Sprintf("only %.1f mini-blocks/s", step.MiniBlocksPerSec))
	}
	if step.Missing > 0 {
		reasons = append(reasons, fmt.Sprintf("%d missed mini-blocks", step.Missing))
	}
	if step.Lagging > 0 {
		reasons = append(reasons, fmt.Sprintf("%d with lag p99 > %v", step.Lagging, o.WSLag))
	}
	if step.Failed > 0 {
		for _, s := range subs {
			if s.err != nil && !isClosedByUs(s.err) {
				reasons = append(reasons, fmt.Sprintf("%d connections failed (%v)", step.Failed, s.err))
				break
			}
		}
	}
	step.OK = len(reasons) == 0 && step.KeptUp == k
	if len(reasons) > 0 {
		step.Reason = strings.Join(reasons, "; ")
	}
	return step, nil
}

// recoveryFrames is how many consecutive normal mini-blocks mean steady state.
const recoveryFrames = 100

// waitRecovered follows the feed with one subscriber until recoveryFrames
// consecutive mini-blocks are at most twice the baseline size (plus 4 KiB) and
// arrive within lag of their timestamp, and returns how long that took.
func waitRecovered(ctx context.Context, url string, baseline float64, lag time.Duration) (time.Duration, error) {
	const timeout = 2 * time.Minute
	start := time.Now()
	conn, err := dialSub(ctx, url)
	if err != nil {
		return 0, fmt.Errorf("recovery: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	_ = conn.SetReadDeadline(start.Add(timeout))
	buf := make([]byte, wsPrefix)
	good := 0
	for good < recoveryFrames {
		_, r, err := conn.NextReader()
		if err != nil {
			return 0, fmt.Errorf("no steady state within %v: %w", timeout, err)
		}
		n, err := io.ReadFull(r, buf)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, err
		}
		rest, err := io.Copy(io.Discard, r)
		if err != nil {
			return 0, err
		}
		_, ts, err := parseMiniBlockFrame(buf[:n])
		if err != nil {
			return 0, err
		}
		late := time.Since(time.UnixMilli(int64(ts)))
		if float64(int64(n)+rest) <= 2*baseline+4096 && late <= lag {
			good++
		} else {
			good = 0
		}
	}
	return time.Since(start), nil
}

// isClosedByUs reports whether a reader's error comes from the bench closing
// the connection at the end of the step.
func isClosedByUs(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, websocket.ErrCloseSent) || errors.Is(err, io.EOF)
}

// percentileI32 is the nearest-rank percentile of sorted microseconds, in ms.
func percentileI32(sorted []int32, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	k := int(float64(len(sorted))*p/100+0.999999) - 1
	return float64(sorted[max(0, min(k, len(sorted)-1))]) / 1000
}

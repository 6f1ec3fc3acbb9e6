package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/rpc"
	"github.com/kestrel-l2/kestrel/store"
)

// Source is what the publisher reads: the node's event hub for what just
// happened, and its store for what the hub no longer holds (after an outage of
// the stream, or at start).
type Source interface {
	Hub() *rpc.Hub
	// StoredMiniBlock and StoredBlock read the durable log.
	StoredMiniBlock(index uint64) (*chain.MiniBlock, error)
	StoredBlock(number uint64) (*store.BlockRecord, error)
	// MiniBlockHead and HeadNumber are the newest durable mini-block and the
	// newest sealed block.
	MiniBlockHead() uint64
	HeadNumber() uint64
	// StreamStart is where a stream created now begins: the first mini-block
	// index and block number a replica bootstrapping from the node's oldest
	// snapshot needs.
	StreamStart() (mini, block uint64)
}

// Publisher copies the node's durable mini-blocks and sealed headers to the
// JetStream streams. It runs beside the node and never holds it up: it reads
// from the hub (which never waits for readers) and the store, so when the
// stream is down the node goes on, and publishing resumes from the stream's
// last message when it returns.
type Publisher struct {
	cfg     Config
	src     Source
	connect func() (*nats.Conn, error)
	log     *slog.Logger

	miniNext   atomic.Uint64 // next mini-block index to publish
	headNext   atomic.Uint64 // next block number to publish
	published  atomic.Uint64 // messages
	bytes      atomic.Uint64 // message bytes
	miniBytes  atomic.Uint64 // of which mini-block messages
	busy       atomic.Int64  // nanoseconds encoding and publishing
	errs       atomic.Uint64 // failed sessions
	connected  atomic.Bool
	conn       atomic.Pointer[nats.Conn]
	retryDelay time.Duration
}

// NewPublisher returns a publisher of src's chain; connect opens a connection to
// the NATS server (an in-process one for the embedded server).
func NewPublisher(cfg Config, src Source, connect func() (*nats.Conn, error), log *slog.Logger) *Publisher {
	if log == nil {
		log = slog.Default()
	}
	return &Publisher{cfg: cfg, src: src, connect: connect, log: log, retryDelay: time.Second}
}

// PublisherStats are the publisher's counters.
type PublisherStats struct {
	NextMiniBlock, NextBlock uint64 // the next index and number to publish
	Messages, Bytes          uint64
	MiniBytes                uint64 // Bytes of mini-block messages (the rest: headers)
	Errors                   uint64 // sessions that ended on an error (stream down, refused)
	Reconnects               uint64 // times the connection to the stream server was re-established
	Connected                bool
	// Busy is the time spent encoding and publishing (waiting for the
	// stream's acknowledgements included).
	Busy time.Duration
}

// Stats returns the publisher's counters.
func (p *Publisher) Stats() PublisherStats {
	st := PublisherStats{NextMiniBlock: p.miniNext.Load(), NextBlock: p.headNext.Load(), Messages: p.published.Load(),
		Bytes: p.bytes.Load(), MiniBytes: p.miniBytes.Load(), Errors: p.errs.Load(), Busy: time.Duration(p.busy.Load()), Connected: p.connected.Load() && p.conn.Load() != nil && p.conn.Load().IsConnected()}
	if nc := p.conn.Load(); nc != nil {
		st.Reconnects = nc.Stats().Reconnects
	}
	return st
}

// Run publishes until ctx ends. Stream outages are logged and retried; Run
// returns only when ctx is done.
func (p *Publisher) Run(ctx context.Context) {
	var nc *nats.Conn
	defer func() {
		if nc != nil {
			nc.Close()
		}
	}()
	for ctx.Err() == nil {
		if nc == nil || nc.IsClosed() {
			c, err := p.connect()
			if err != nil {
				p.sessionFailed(ctx, "connect", err)
				continue
			}
			nc = c
			p.conn.Store(c)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			p.sessionFailed(ctx, "jetstream", err)
			continue
		}
		var wg sync.WaitGroup
		sctx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 2)
		for _, k := range []Kind{KindMiniBlock, KindHeader} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errc <- p.session(sctx, js, k)
			}()
		}
		err = <-errc
		cancel()
		wg.Wait()
		p.connected.Store(false)
		if ctx.Err() != nil {
			return
		}
		p.sessionFailed(ctx, "publish", err)
	}
}

func (p *Publisher) sessionFailed(ctx context.Context, what string, err error) {
	n := p.errs.Add(1)
	// The first failure of an outage is a warning; repeats are rarer lines.
	if n == 1 || n%30 == 0 {
		p.log.Warn("Diff stream unavailable; the node keeps producing and publishing resumes when it returns",
			"step", what, "err", err, "nextMiniBlock", p.miniNext.Load(), "failures", n)
	}
	select {
	case <-ctx.Done():
	case <-time.After(p.retryDelay):
	}
}

// kindOps are the differences between the two streams.
type kindOps struct {
	stream, subject string
	head            func() uint64
	start           uint64
	next            *atomic.Uint64
	// fetch appends the messages of sequence numbers from on, at most max,
	// returning the hub's wake channel when nothing was available.
	fetch func(from uint64, max int, enc *Encoder) ([][]byte, <-chan struct{}, error)
}

func (p *Publisher) ops(k Kind) kindOps {
	startMini, startBlock := p.src.StreamStart()
	hub := p.src.Hub()
	stream, subject := p.cfg.names(k)
	if k == KindMiniBlock {
		var buf []*rpc.MiniBlockEvent
		return kindOps{stream: stream, subject: subject, head: p.src.MiniBlockHead, start: startMini + 1, next: &p.miniNext,
			fetch: func(from uint64, max int, enc *Encoder) ([][]byte, <-chan struct{}, error) {
				r := hub.MiniBlocks(from, max, buf[:0])
				buf = r.Items
				return fetchEncoded(r, from, max, p.src.MiniBlockHead(), "mini-block",
					func(i uint64) ([]byte, error) {
						mb, err := p.src.StoredMiniBlock(i)
						if err != nil {
							return nil, err
						}
						return enc.MiniBlock(mb)
					},
					func(ev *rpc.MiniBlockEvent) (uint64, []byte, error) {
						data, err := enc.MiniBlock(ev.Mini)
						return ev.Mini.Index, data, err
					})
			},
		}
	}
	var buf []*rpc.HeadEvent
	return kindOps{stream: stream, subject: subject, head: p.src.HeadNumber, start: startBlock + 1, next: &p.headNext,
		fetch: func(from uint64, max int, enc *Encoder) ([][]byte, <-chan struct{}, error) {
			r := hub.Heads(from, max, buf[:0])
			buf = r.Items
			return fetchEncoded(r, from, max, p.src.HeadNumber(), "header",
				func(n uint64) ([]byte, error) {
					rec, err := p.src.StoredBlock(n)
					if err != nil {
						return nil, err
					}
					return enc.BlockRecord(rec)
				},
				func(ev *rpc.HeadEvent) (uint64, []byte, error) {
					n := ev.Header.Number.Uint64()
					if ev.Signature == nil {
						return n, nil, errors.New("the head event carries no signature")
					}
					data, err := enc.BlockRecord(&store.BlockRecord{Header: ev.Header, Signature: ev.Signature, FirstMini: ev.FirstMini, LastMini: ev.LastMini})
					return n, data, err
				})
		},
	}
}

// fetchEncoded encodes the messages from sequence number from on, at most max:
// the hub's events when it still holds from, else the node's log (up to its
// head and the hub's oldest event). It returns the hub's wake channel for when
// nothing was available.
func fetchEncoded[T any](r rpc.HubRead[T], from uint64, max int, head uint64, what string,
	stored func(seq uint64) ([]byte, error), event func(T) (uint64, []byte, error)) ([][]byte, <-chan struct{}, error) {
	var out [][]byte
	if !r.Started || from < r.Oldest {
		for seq := from; seq <= head && len(out) < max && (!r.Started || seq < r.Oldest); seq++ {
			data, err := stored(seq)
			if err != nil {
				return nil, nil, fmt.Errorf("stored %s %d: %w", what, seq, err)
			}
			out = append(out, data)
		}
		return out, r.Wake, nil
	}
	for _, ev := range r.Items {
		seq, data, err := event(ev)
		if err != nil {
			return nil, nil, fmt.Errorf("encode %s %d: %w", what, seq, err)
		}
		out = append(out, data)
	}
	return out, r.Wake, nil
}

// session makes sure the stream exists and publishes into it from its last
// message on, until an error or ctx.
func (p *Publisher) session(ctx context.Context, js jetstream.JetStream, k Kind) error {
	o := p.ops(k)
	next, err := p.ensureStream(ctx, js, k, o)
	if err != nil {
		return err
	}
	o.next.Store(next)
	p.connected.Store(true)
	enc := NewEncoder()
	poll := time.NewTicker(time.Second) // the hub's wake covers new events; this covers a restarted hub
	defer poll.Stop()
	for {
		start := time.Now()
		msgs, wake, err := o.fetch(next, 256, enc)
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-wake:
			case <-poll.C:
			}
			continue
		}
		for _, data := range msgs {
			if err := p.publish(ctx, js, o, next, data); err != nil {
				return err
			}
			next++
			o.next.Store(next)
		}
		p.busy.Add(int64(time.Since(start)))
	}
}

var errWrongLast = errors.New("stream's last sequence is not the previous index")

func (p *Publisher) publish(ctx context.Context, js jetstream.JetStream, o kindOps, seq uint64, data []byte) error {
	// A publish lost with a dropped connection is never answered: give up
	// soon and resynchronise from the stream's last sequence number.
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ack, err := js.PublishMsg(pctx, &nats.Msg{Subject: o.subject, Data: data}, jetstream.WithExpectLastSequence(seq-1))
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return fmt.Errorf("%w (publishing %s %d): %v", errWrongLast, o.stream, seq, err)
		}
		return fmt.Errorf("publish %s %d: %w", o.stream, seq, err)
	}
	if ack.Sequence != seq {
		return fmt.Errorf("published %s %d but the stream stored it at %d", o.stream, seq, ack.Sequence)
	}
	p.published.Add(1)
	p.bytes.Add(uint64(len(data)))
	if o.next == &p.miniNext {
		p.miniBytes.Add(uint64(len(data)))
	}
	return nil
}

// ensureStream creates the stream (starting at the node's oldest snapshot) or
// updates its limits, and returns the next sequence number to publish.
func (p *Publisher) ensureStream(ctx context.Context, js jetstream.JetStream, k Kind, o kindOps) (uint64, error) {
	cfg := jetstream.StreamConfig{
		Name: o.stream, Subjects: []string{o.subject}, Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld,
		Storage: jetstream.FileStorage, Replicas: max(1, p.cfg.Replicas), MaxMsgs: -1, MaxBytes: -1, MaxAge: p.cfg.MaxAge,
		MaxMsgSize: p.cfg.MaxPayload, AllowDirect: true,
	}
	if k == KindMiniBlock {
		if p.cfg.MaxMsgs > 0 {
			cfg.MaxMsgs = p.cfg.MaxMsgs
		}
		if p.cfg.MaxBytes > 0 {
			cfg.MaxBytes = p.cfg.MaxBytes
		}
	}
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := js.Stream(ictx, o.stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		cfg.FirstSeq = o.start
		if s, err = js.CreateStream(ictx, cfg); err != nil {
			return 0, fmt.Errorf("create stream %s: %w", o.stream, err)
		}
		p.log.Info("Created diff stream", "stream", o.stream, "subject", o.subject, "firstSeq", cfg.FirstSeq)
	case err != nil:
		return 0, fmt.Errorf("stream %s: %w", o.stream, err)
	default:
		have := s.CachedInfo().Config
		cfg.FirstSeq = have.FirstSeq
		if have.MaxMsgs != cfg.MaxMsgs || have.MaxBytes != cfg.MaxBytes || have.MaxAge != cfg.MaxAge || have.MaxMsgSize != cfg.MaxMsgSize {
			if s, err = js.UpdateStream(ictx, cfg); err != nil {
				return 0, fmt.Errorf("update stream %s limits: %w", o.stream, err)
			}
		}
	}
	info, err := s.Info(ictx)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", o.stream, err)
	}
	next := info.State.LastSeq + 1
	if head := o.head(); next > head+1 {
		return 0, fmt.Errorf("stream %s already holds sequence %d but this node's newest is %d: it belongs to another chain or an earlier data directory; delete the stream or choose another --stream.name",
			o.stream, next-1, head)
	}
	return next, nil
}

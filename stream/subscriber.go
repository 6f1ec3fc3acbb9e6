package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Conn is a replica's connection to the streams.
type Conn struct {
	cfg Config
	nc  *nats.Conn
	js  jetstream.JetStream
	log *slog.Logger
}

// Dial connects to the NATS server at cfg.URL. The connection reconnects on its
// own for as long as it is open; name identifies the client to the server.
func Dial(cfg Config, name string, log *slog.Logger) (*Conn, error) {
	if log == nil {
		log = slog.Default()
	}
	if cfg.URL == "" {
		return nil, errors.New("stream URL is empty")
	}
	nc, err := Connect(cfg.URL, name, log)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &Conn{cfg: cfg, nc: nc, js: js, log: log}, nil
}

// Connect opens a client connection to url that reconnects on its own, forever.
func Connect(url, name string, log *slog.Logger) (*nats.Conn, error) {
	nc, err := nats.Connect(url, nats.Name(name), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(250*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("Diff stream connection lost; reconnecting", "url", url, "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("Diff stream reconnected", "url", c.ConnectedUrl()) }))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", url, err)
	}
	return nc, nil
}

// Close closes the connection.
func (c *Conn) Close() { c.nc.Close() }

// ErrNoStream is returned when the stream does not exist (yet).
var ErrNoStream = errors.New("stream does not exist")

// Bounds returns the first and last sequence number a stream holds. An empty
// stream has last = first - 1.
func (c *Conn) Bounds(ctx context.Context, k Kind) (first, last uint64, err error) {
	name, _ := c.cfg.names(k)
	s, err := c.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, 0, fmt.Errorf("%w: %s", ErrNoStream, name)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("stream %s: %w", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("stream %s: %w", name, err)
	}
	return info.State.FirstSeq, info.State.LastSeq, nil
}

// Get fetches one message by its sequence number.
func (c *Conn) Get(ctx context.Context, k Kind, seq uint64) ([]byte, error) {
	name, _ := c.cfg.names(k)
	s, err := c.js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return nil, fmt.Errorf("stream %s message %d: %w", name, seq, err)
	}
	return m.Data, nil
}

// Follow delivers the messages of a stream from sequence number from on, in
// order, to fn until ctx ends or fn returns an error, which Follow returns. It
// reads through the durable consumer named durable, created at from each time
// (the caller, not the server, is the authority on what it has applied), with
// at most window messages buffered ahead of fn.
func (c *Conn) Follow(ctx context.Context, k Kind, durable string, from uint64, window int, fn func(seq uint64, data []byte) error) error {
	name, subject := c.cfg.names(k)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := c.js.DeleteConsumer(cctx, name, durable)
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		cancel()
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("%w: %s", ErrNoStream, name)
		}
		return fmt.Errorf("reset consumer %s on %s: %w", durable, name, err)
	}
	cons, err := c.js.CreateConsumer(cctx, name, jetstream.ConsumerConfig{
		Durable: durable, FilterSubject: subject,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from,
		// Acknowledgements would cost a message each way; the replica tracks
		// what it applied and restarts the consumer after any gap.
		AckPolicy: jetstream.AckNonePolicy,
		// An abandoned replica's consumer goes away on its own.
		InactiveThreshold: 24 * time.Hour,
	})
	cancel()
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("%w: %s", ErrNoStream, name)
		}
		return fmt.Errorf("create consumer %s on %s: %w", durable, name, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(max(window, 2)))
	if err != nil {
		return fmt.Errorf("consume %s: %w", name, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("consume %s: %w", name, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("consume %s: message metadata: %w", name, err)
		}
		if err := fn(meta.Sequence.Stream, msg.Data()); err != nil {
			return err
		}
	}
}

package sequencer

import (
	"context"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/rpc"
	"github.com/kestrel-l2/kestrel/store"
	"github.com/kestrel-l2/kestrel/stream"
)

// startStream starts the embedded nats-server (unless an external URL is
// configured) and the publisher of the diff stream.
func (s *Sequencer) startStream() error {
	if s.cfg.Stream == nil || s.Following() {
		return nil
	}
	cfg := *s.cfg.Stream
	log := s.log.With("component", "stream")
	var connect func() (*nats.Conn, error)
	if cfg.URL == "" {
		cfg.StoreDir = filepath.Join(s.dataDir, "nats")
		srv, err := stream.StartServer(cfg, log)
		if err != nil {
			return err
		}
		s.streamSrv = srv
		connect = func() (*nats.Conn, error) { return srv.Connect("kestrel-sequencer") }
		s.log.Info("Diff stream server started (embedded NATS JetStream)", "url", srv.URL(), "store", cfg.StoreDir)
	} else {
		connect = func() (*nats.Conn, error) { return stream.Connect(cfg.URL, "kestrel-sequencer", log) }
	}
	s.publisher = stream.NewPublisher(cfg, streamSource{s}, connect, log)
	s.registerStreamMetrics()
	ctx, cancel := context.WithCancel(context.Background())
	s.pubCancel, s.pubDone = cancel, make(chan struct{})
	go func() {
		defer close(s.pubDone)
		s.publisher.Run(ctx)
	}()
	return nil
}

// stopStream lets the publisher catch up briefly, then stops it and the
// embedded server. Anything not published is published on the next start.
func (s *Sequencer) stopStream() error {
	if s.publisher == nil {
		return nil
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		st := s.publisher.Stats()
		if !st.Connected || (st.NextMiniBlock > s.miniHead.Load() && st.NextBlock > s.index.headNumber()) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.pubCancel()
	<-s.pubDone
	if s.streamSrv != nil {
		s.streamSrv.Shutdown()
	}
	return nil
}

// StreamURL is the URL replicas use to reach the diff stream ("" without one).
func (s *Sequencer) StreamURL() string {
	switch {
	case s.streamSrv != nil:
		return s.streamSrv.URL()
	case s.cfg.Stream != nil:
		return s.cfg.Stream.URL
	}
	return ""
}

// Publisher is the diff stream publisher (nil without a stream).
func (s *Sequencer) Publisher() *stream.Publisher { return s.publisher }

// streamSource is what the publisher reads from the node.
type streamSource struct{ s *Sequencer }

func (p streamSource) Hub() *rpc.Hub { return p.s.hub }
func (p streamSource) StoredMiniBlock(i uint64) (*chain.MiniBlock, error) {
	return p.s.store.MiniBlock(i)
}
func (p streamSource) StoredBlock(n uint64) (*store.BlockRecord, error) { return p.s.store.Block(n) }
func (p streamSource) MiniBlockHead() uint64                            { return p.s.miniHead.Load() }
func (p streamSource) HeadNumber() uint64                               { return p.s.index.headNumber() }

// StreamStart is the oldest snapshot: a replica bootstraps from it at the
// earliest, so a new stream needs nothing older.
func (p streamSource) StreamStart() (uint64, uint64) {
	metas, err := p.s.store.Snapshots()
	if err != nil || len(metas) == 0 {
		return 0, 0
	}
	return metas[0].MiniIndex, metas[0].Block
}

// MetricsRegistry is where the node's Prometheus series are registered (nil
// without --metrics.addr), for the role built on the node to add its own.
func (s *Sequencer) MetricsRegistry() prometheus.Registerer {
	if pm, ok := s.m.(*PromMetrics); ok {
		return pm.registry
	}
	return nil
}

// registerStreamMetrics exports the publisher's counters.
func (s *Sequencer) registerStreamMetrics() {
	reg, p := s.MetricsRegistry(), s.publisher
	if reg == nil || p == nil {
		return
	}
	counter := func(name, help string, f func(stream.PublisherStats) uint64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "kestrel", Subsystem: "stream", Name: name, Help: help},
			func() float64 { return float64(f(p.Stats())) }))
	}
	gauge := func(name, help string, f func(stream.PublisherStats) float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "kestrel", Subsystem: "stream", Name: name, Help: help},
			func() float64 { return f(p.Stats()) }))
	}
	counter("published_messages_total", "Messages published to the diff stream.", func(st stream.PublisherStats) uint64 { return st.Messages })
	counter("published_bytes_total", "Bytes published to the diff stream.", func(st stream.PublisherStats) uint64 { return st.Bytes })
	counter("publish_failures_total", "Publishing sessions that ended on an error (stream down or refusing).", func(st stream.PublisherStats) uint64 { return st.Errors })
	counter("reconnects_total", "Times the connection to the stream server was re-established.", func(st stream.PublisherStats) uint64 { return st.Reconnects })
	gauge("connected", "1 while the publisher is connected to the stream.", func(st stream.PublisherStats) float64 {
		if st.Connected {
			return 1
		}
		return 0
	})
	gauge("unpublished_mini_blocks", "Durable mini-blocks not yet on the stream.", func(st stream.PublisherStats) float64 {
		head := s.miniHead.Load()
		if st.NextMiniBlock == 0 || st.NextMiniBlock > head {
			return 0
		}
		return float64(head - st.NextMiniBlock + 1)
	})
}

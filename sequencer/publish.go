package sequencer

import (
	"context"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"

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

package stream

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Server is a nats-server with JetStream embedded in the node's process.
type Server struct {
	ns  *server.Server
	log *slog.Logger
}

// StartServer starts an embedded nats-server with JetStream on cfg.Listen,
// keeping its data in cfg.StoreDir.
func StartServer(cfg Config, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	host, port, err := splitListen(cfg.Listen)
	if err != nil {
		return nil, err
	}
	if cfg.StoreDir == "" {
		return nil, errors.New("embedded stream server needs a store directory")
	}
	opts := &server.Options{
		ServerName: "kestrel", Host: host, Port: port,
		JetStream: true, StoreDir: cfg.StoreDir,
		MaxPayload: cfg.MaxPayload, NoSigs: true,
		// The node's process owns signals and logging.
		HTTPPort: 0,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats-server: %w", err)
	}
	ns.SetLoggerV2(natsLogger{log}, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded nats-server did not start listening on %s", cfg.Listen)
	}
	return &Server{ns: ns, log: log}, nil
}

// URL is the client URL of the embedded server.
func (s *Server) URL() string { return s.ns.ClientURL() }

// Addr is the bound HOST:PORT.
func (s *Server) Addr() string { return s.ns.Addr().String() }

// Connect opens an in-process client connection (no TCP).
func (s *Server) Connect(name string) (*nats.Conn, error) {
	return nats.Connect(s.URL(), nats.InProcessServer(s.ns), nats.Name(name), nats.MaxReconnects(-1))
}

// Shutdown stops the server and waits for it.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// natsLogger routes nats-server's log lines to slog: notices at debug (they are
// chatty), warnings and errors as such.
type natsLogger struct{ l *slog.Logger }

func (n natsLogger) Noticef(format string, v ...any) {
	n.l.Debug(fmt.Sprintf(format, v...), "component", "nats")
}
func (n natsLogger) Warnf(format string, v ...any) {
	n.l.Warn(fmt.Sprintf(format, v...), "component", "nats")
}
func (n natsLogger) Fatalf(format string, v ...any) {
	n.l.Error(fmt.Sprintf(format, v...), "component", "nats")
}
func (n natsLogger) Errorf(format string, v ...any) {
	n.l.Error(fmt.Sprintf(format, v...), "component", "nats")
}
func (n natsLogger) Debugf(format string, v ...any) {}
func (n natsLogger) Tracef(format string, v ...any) {}

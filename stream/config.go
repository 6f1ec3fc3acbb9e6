package stream

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Config is the stream's transport configuration, shared by the sequencer
// (publisher, optionally hosting the server) and replicas (subscribers).
type Config struct {
	// Listen is the address of the nats-server embedded in the sequencer
	// process (HOST:PORT, port 0 picks a free one). Ignored when URL is set.
	Listen string
	// URL points at an external NATS server or cluster (nats://HOST:PORT, several
	// separated by commas). Empty: the sequencer runs the embedded server.
	URL string
	// Name prefixes the JetStream streams (NAME_MINI, NAME_HEADERS) and their
	// subjects (lower-cased, "name.mini", "name.headers").
	Name string
	// StoreDir is where the embedded server keeps JetStream data.
	StoreDir string
	// Retention of the mini-block stream: the oldest messages go first when any
	// limit is passed (0: no limit of that kind). Headers are small and keep
	// MaxAge only.
	MaxMsgs  int64
	MaxBytes int64
	MaxAge   time.Duration
	// MaxPayload is the largest message the embedded server accepts and the
	// largest the streams store.
	MaxPayload int32
	// Replicas is the number of copies a NATS cluster keeps of each stream
	// (1 for the embedded server).
	Replicas int
}

// DefaultConfig is what `kestrel sequencer` uses: an embedded server on the
// NATS port, a day or 4 GiB of mini-blocks, whichever is smaller.
func DefaultConfig() Config {
	return Config{
		Listen:     "127.0.0.1:4222",
		Name:       "KESTREL",
		MaxBytes:   4 << 30,
		MaxAge:     24 * time.Hour,
		MaxPayload: 8 << 20, // nats-server discourages more; a mini-block is far smaller
		Replicas:   1,
	}
}

// Check reports the first invalid setting.
func (c *Config) Check() error {
	if c.Name == "" || strings.ContainsAny(c.Name, ".*> \t") {
		return fmt.Errorf("stream name %q must be non-empty without '.', '*', '>' or spaces", c.Name)
	}
	if c.URL == "" {
		if _, _, err := splitListen(c.Listen); err != nil {
			return err
		}
	}
	switch {
	case c.MaxMsgs < 0:
		return errors.New("stream max messages must not be negative")
	case c.MaxBytes < 0:
		return errors.New("stream max bytes must not be negative")
	case c.MaxAge < 0:
		return errors.New("stream max age must not be negative")
	case c.MaxPayload < 1<<20 || c.MaxPayload > 64<<20:
		return errors.New("stream max payload must be between 1 MiB and 64 MiB")
	case c.Replicas < 0 || c.Replicas > 5:
		return errors.New("stream replicas must be between 1 and 5")
	}
	return nil
}

// names are the JetStream stream and subject of a kind of message.
func (c *Config) names(k Kind) (stream, subject string) {
	if k == KindMiniBlock {
		return c.Name + "_MINI", strings.ToLower(c.Name) + ".mini"
	}
	return c.Name + "_HEADERS", strings.ToLower(c.Name) + ".headers"
}

// splitListen parses HOST:PORT; port 0 becomes nats-server's random port.
func splitListen(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("stream listen address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("stream listen address %q: bad port", addr)
	}
	if port == 0 {
		port = -1 // server.RANDOM_PORT
	}
	return host, port, nil
}

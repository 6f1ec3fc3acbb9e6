package rpc

import (
	"errors"
	"fmt"
	"time"
)

// Defaults applied by Config.Check to zero-valued fields.
const (
	DefaultAddr               = "127.0.0.1:8545"
	DefaultMaxBodyBytes       = 5 << 20 // 5 MiB
	DefaultMaxBatch           = 1000
	DefaultMaxLogsRange       = 10000 // blocks per eth_getLogs query
	DefaultMaxLogs            = 10000 // logs per eth_getLogs answer
	DefaultReadTimeout        = 30 * time.Second
	DefaultWriteTimeout       = 30 * time.Second
	DefaultIdleTimeout        = 120 * time.Second
	DefaultSyncSendMaxTimeout = 10 * time.Second
	// DefaultSyncSendTimeout is what eth_sendRawTransactionSync waits when the
	// request gives no timeout (EIP-7966); capped at Config.SyncSendMaxTimeout.
	DefaultSyncSendTimeout = 2 * time.Second
)

// Config configures the JSON-RPC server. Zero values mean the defaults above.
type Config struct {
	Addr         string // listen address, "127.0.0.1:8545"; port 0 picks a free port
	MaxBodyBytes int    // largest request body; larger ones get HTTP 413 (5 MiB)
	MaxBatch     int    // most requests in one batch (1000)
	MaxLogsRange uint64 // most blocks one eth_getLogs query may span (10000)
	MaxLogs      int    // most logs one eth_getLogs query may return (10000)
	// CORSOrigins lists the origins allowed to call from a browser; "*" allows
	// all. Empty: no CORS headers are sent.
	CORSOrigins  []string
	ReadTimeout  time.Duration // 30s
	WriteTimeout time.Duration // 30s
	IdleTimeout  time.Duration // 120s
	// SyncSendMaxTimeout caps the timeout of eth_sendRawTransactionSync (10s). A
	// request without a timeout waits DefaultSyncSendTimeout (2s), or this cap if
	// it is lower.
	SyncSendMaxTimeout time.Duration
}

// Check fills zero fields with their defaults and rejects invalid values.
func (c *Config) Check() error {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.MaxBodyBytes < 0 || c.MaxBatch < 0 || c.MaxLogs < 0 {
		return errors.New("rpc: negative MaxBodyBytes, MaxBatch or MaxLogs")
	}
	if c.ReadTimeout < 0 || c.WriteTimeout < 0 || c.IdleTimeout < 0 || c.SyncSendMaxTimeout < 0 {
		return errors.New("rpc: negative timeout")
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxBodyBytes < 64 {
		return fmt.Errorf("rpc: MaxBodyBytes %d too small", c.MaxBodyBytes)
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.MaxLogsRange == 0 {
		c.MaxLogsRange = DefaultMaxLogsRange
	}
	if c.MaxLogs == 0 {
		c.MaxLogs = DefaultMaxLogs
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.SyncSendMaxTimeout == 0 {
		c.SyncSendMaxTimeout = DefaultSyncSendMaxTimeout
	}
	for _, o := range c.CORSOrigins {
		if o == "" {
			return errors.New("rpc: empty CORS origin")
		}
	}
	return nil
}

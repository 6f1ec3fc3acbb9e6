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

	DefaultWSMaxSubscriptions = 256      // per WebSocket connection
	DefaultWSMaxInflight      = 64       // requests one WebSocket connection may have running
	DefaultWSMaxConns         = 10000    // open WebSocket connections
	DefaultWSQueueBytes       = 16 << 20 // notification bytes queued for one connection
	DefaultWSPingInterval     = 30 * time.Second

	DefaultFilterTimeout = 5 * time.Minute // an unpolled filter expires (as go-ethereum)
	DefaultMaxFilters    = 10000           // installed filters, all clients together

	DefaultMaxConcurrent    = 1024             // requests executing at once, HTTP and WebSocket together
	DefaultQueueTimeout     = 2 * time.Second  // wait for a free slot before answering "too many concurrent requests"
	DefaultRequestTimeout   = 30 * time.Second // as go-ethereum's HTTP write timeout
	DefaultMaxResponseBytes = 25_000_000       // as go-ethereum's --rpc.batch-response-max-size
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

	// WebSocket (the same listener, HTTP upgrade). A frame over MaxBodyBytes closes
	// the connection.
	WSMaxSubscriptions int           // subscriptions one connection may hold (256)
	WSMaxInflight      int           // requests one connection may have running at once (64)
	WSMaxConns         int           // open WebSocket connections (10000)
	WSQueueBytes       int           // notification bytes queued for a slow connection before it is closed (16 MiB)
	WSPingInterval     time.Duration // keep-alive ping period (30s); a peer silent for two periods is closed

	// Filters (eth_newFilter and friends, over HTTP).
	FilterTimeout time.Duration // a filter not polled for this long is removed (5m)
	MaxFilters    int           // installed filters, all clients together (10000)

	// Operational limits (limits.go), applied to HTTP and WebSocket alike.
	//
	// MaxConcurrent bounds the requests executing at once (1024): a single
	// request holds one slot while it runs; a batch holds one per goroutine that
	// executes its items (at least one, at most GOMAXPROCS). A request that finds
	// no free slot waits up to QueueTimeout (2s), then gets CodeLimitExceeded.
	MaxConcurrent int
	QueueTimeout  time.Duration
	// RequestTimeout is the deadline of one request or one whole batch (30s);
	// past it the answer (or what of a batch is unanswered) is CodeTimeout,
	// "request timed out". Bodies holding eth_sendRawTransactionSync get at
	// least SyncSendMaxTimeout plus one second.
	RequestTimeout time.Duration
	// MaxResponseBytes bounds an answer (25 MB): a single answer over it, and the
	// batch items from the one that crosses it on, are CodeTooLarge errors.
	MaxResponseBytes int
	// Metrics records per-method counters and latencies; nil records nothing.
	// NewPromMetrics gives a Prometheus implementation.
	Metrics Metricer
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
	if c.WSMaxSubscriptions < 0 || c.WSMaxInflight < 0 || c.WSMaxConns < 0 || c.WSQueueBytes < 0 || c.WSPingInterval < 0 {
		return errors.New("rpc: negative WebSocket limit")
	}
	if c.FilterTimeout < 0 || c.MaxFilters < 0 {
		return errors.New("rpc: negative FilterTimeout or MaxFilters")
	}
	if c.FilterTimeout == 0 {
		c.FilterTimeout = DefaultFilterTimeout
	}
	if c.MaxFilters == 0 {
		c.MaxFilters = DefaultMaxFilters
	}
	if c.WSMaxSubscriptions == 0 {
		c.WSMaxSubscriptions = DefaultWSMaxSubscriptions
	}
	if c.WSMaxInflight == 0 {
		c.WSMaxInflight = DefaultWSMaxInflight
	}
	if c.WSMaxConns == 0 {
		c.WSMaxConns = DefaultWSMaxConns
	}
	if c.WSQueueBytes == 0 {
		c.WSQueueBytes = DefaultWSQueueBytes
	}
	if c.WSPingInterval == 0 {
		c.WSPingInterval = DefaultWSPingInterval
	}
	if c.MaxConcurrent < 0 || c.QueueTimeout < 0 || c.RequestTimeout < 0 || c.MaxResponseBytes < 0 {
		return errors.New("rpc: negative MaxConcurrent, QueueTimeout, RequestTimeout or MaxResponseBytes")
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.QueueTimeout == 0 {
		c.QueueTimeout = DefaultQueueTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.MaxResponseBytes < 1024 {
		return fmt.Errorf("rpc: MaxResponseBytes %d too small (at least 1024)", c.MaxResponseBytes)
	}
	for _, o := range c.CORSOrigins {
		if o == "" {
			return errors.New("rpc: empty CORS origin")
		}
	}
	return nil
}

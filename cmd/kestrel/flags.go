package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/kestrel-l2/kestrel/core/exec"
	"github.com/kestrel-l2/kestrel/mempool"
	"github.com/kestrel-l2/kestrel/rpc"
	"github.com/kestrel-l2/kestrel/sequencer"
)

func sequencerFlags(dataDir string) []cli.Flag {
	d := sequencer.DefaultConfig()
	mp := mempool.DefaultConfig
	dataUsage := "data directory for the chain database"
	if dataDir == "" {
		dataUsage += " (default: a temporary directory removed at exit)"
	}
	flags := []cli.Flag{
		&cli.StringFlag{Name: "datadir", Value: dataDir, Usage: dataUsage, Category: "CHAIN"},
		&cli.StringFlag{Name: "genesis", Usage: "genesis JSON file (default: the built-in dev chain, id 31337)", Category: "CHAIN"},
		&cli.StringFlag{Name: "sequencer.key", Usage: "file with the hex secp256k1 key that signs mini-blocks and headers (default: the public dev key)", Category: "SEQUENCER"},
		&cli.DurationFlag{Name: "sequencer.mini-block-interval", Value: d.MiniBlockInterval, Usage: "time between mini-blocks", Category: "SEQUENCER"},
		&cli.DurationFlag{Name: "sequencer.block-interval", Value: d.BlockInterval, Usage: "time between EVM blocks", Category: "SEQUENCER"},
		&cli.IntFlag{Name: "sequencer.max-mini-block-txs", Value: d.MaxMiniBlockTxs, Usage: "most transactions in one mini-block", Category: "SEQUENCER"},
		&cli.Uint64Flag{Name: "sequencer.snapshot-every", Value: d.SnapshotEvery, Usage: "write a state snapshot every N blocks (0: never)", Category: "SEQUENCER"},
		&cli.StringFlag{Name: "exec.mode", Value: string(exec.ModeAuto), Usage: "execution engine: auto (parallel Block-STM unless a mini-block is small, predicted to be one chain of conflicts, or of a size the sequential engine has measured faster for), parallel, or sequential", Category: "EXECUTION"},
		&cli.IntFlag{Name: "exec.workers", Value: 0, Usage: "parallel engine worker goroutines (0: one per core)", Category: "EXECUTION"},
		&cli.IntFlag{Name: "exec.min-parallel-txs", Value: exec.DefaultMinParallelTxs, Usage: "in auto mode, mini-blocks with fewer transactions run sequentially", Category: "EXECUTION"},
		&cli.BoolFlag{Name: "exec.inference", Value: true, Usage: "access-list inference: predict conflicts from access lists, senders and learned contract hot slots (--exec.inference=false to turn off)", Category: "EXECUTION"},
		&cli.Uint64Flag{Name: "mempool.max-tx-size", Value: mp.MaxTxSize, Usage: "largest accepted transaction in bytes", Category: "MEMPOOL"},
		&cli.IntFlag{Name: "mempool.account-slots", Value: mp.AccountSlots, Usage: "most pooled transactions per sender", Category: "MEMPOOL"},
		&cli.IntFlag{Name: "mempool.global-slots", Value: mp.GlobalSlots, Usage: "most pooled transactions in all", Category: "MEMPOOL"},
		&cli.Uint64Flag{Name: "mempool.price-bump", Value: mp.PriceBump, Usage: "percent by which a replacement must raise both fees", Category: "MEMPOOL"},
		&cli.Uint64Flag{Name: "mempool.max-nonce-gap", Value: mp.MaxNonceGap, Usage: "how far ahead of the account nonce a transaction may be", Category: "MEMPOOL"},
	}
	flags = append(flags, streamPublishFlags()...)
	flags = append(flags, nodeFlags()...)
	return append(withEnv(flags), gcFlags()...)
}

// nodeFlags are the settings every node serving the chain has: retained state,
// JSON-RPC, WebSocket, metrics and logging.
func nodeFlags() []cli.Flag {
	d := sequencer.DefaultConfig()
	return []cli.Flag{
		&cli.IntFlag{Name: "state.retain-roots", Value: d.RetainRoots, Usage: "recent block states kept for eth_getProof and historical reads", Category: "STATE"},
		&cli.StringFlag{Name: "http.addr", Value: rpc.DefaultAddr, Usage: "JSON-RPC listen address", Category: "RPC"},
		&cli.IntFlag{Name: "http.max-body", Value: rpc.DefaultMaxBodyBytes, Usage: "largest request body in bytes", Category: "RPC"},
		&cli.IntFlag{Name: "http.max-batch", Value: rpc.DefaultMaxBatch, Usage: "most requests in one batch", Category: "RPC"},
		&cli.StringSliceFlag{Name: "http.cors", Usage: "origins allowed to call from a browser (\"*\" for all)", Category: "RPC"},
		&cli.Uint64Flag{Name: "rpc.gascap", Value: d.CallGasCap, Usage: "gas cap of eth_call and eth_estimateGas", Category: "RPC"},
		&cli.DurationFlag{Name: "rpc.evm-timeout", Value: d.CallTimeout, Usage: "time limit of one eth_call or eth_estimateGas", Category: "RPC"},
		&cli.Uint64Flag{Name: "rpc.logs-range", Value: rpc.DefaultMaxLogsRange, Usage: "most blocks one eth_getLogs query may span", Category: "RPC"},
		&cli.IntFlag{Name: "rpc.logs-max", Value: rpc.DefaultMaxLogs, Usage: "most logs one eth_getLogs answer may hold", Category: "RPC"},
		&cli.DurationFlag{Name: "rpc.sync-timeout-max", Value: rpc.DefaultSyncSendMaxTimeout, Usage: "longest eth_sendRawTransactionSync wait", Category: "RPC"},
		&cli.Uint64Flag{Name: "rpc.tip", Value: d.SuggestedTip, Usage: "priority fee (wei) suggested by eth_maxPriorityFeePerGas", Category: "RPC"},
		&cli.IntFlag{Name: "rpc.max-concurrent", Value: rpc.DefaultMaxConcurrent, Usage: "most requests executing at once, HTTP and WebSocket together (a batch holds one per goroutine running its items)", Category: "RPC"},
		&cli.DurationFlag{Name: "rpc.queue-timeout", Value: rpc.DefaultQueueTimeout, Usage: "how long a request waits for a free slot before it is refused (-32005)", Category: "RPC"},
		&cli.DurationFlag{Name: "rpc.request-timeout", Value: rpc.DefaultRequestTimeout, Usage: "deadline of one request or batch (-32002 past it; eth_sendRawTransactionSync gets at least --rpc.sync-timeout-max + 1s)", Category: "RPC"},
		&cli.IntFlag{Name: "rpc.max-response", Value: rpc.DefaultMaxResponseBytes, Usage: "largest answer in bytes, a single one or a whole batch (-32003 past it)", Category: "RPC"},
		&cli.DurationFlag{Name: "rpc.filter-timeout", Value: rpc.DefaultFilterTimeout, Usage: "a filter (eth_newFilter and friends) not polled for this long is removed", Category: "RPC"},
		&cli.IntFlag{Name: "rpc.max-filters", Value: rpc.DefaultMaxFilters, Usage: "most installed filters, all clients together", Category: "RPC"},
		&cli.IntFlag{Name: "ws.max-subscriptions", Value: rpc.DefaultWSMaxSubscriptions, Usage: "most subscriptions one WebSocket connection may hold", Category: "WEBSOCKET"},
		&cli.IntFlag{Name: "ws.max-inflight", Value: rpc.DefaultWSMaxInflight, Usage: "most requests one WebSocket connection may have running at once", Category: "WEBSOCKET"},
		&cli.IntFlag{Name: "ws.max-conns", Value: rpc.DefaultWSMaxConns, Usage: "most open WebSocket connections", Category: "WEBSOCKET"},
		&cli.IntFlag{Name: "ws.max-queue", Value: rpc.DefaultWSQueueBytes, Usage: "bytes queued for a slow WebSocket connection before it is closed", Category: "WEBSOCKET"},
		&cli.DurationFlag{Name: "ws.ping-interval", Value: rpc.DefaultWSPingInterval, Usage: "WebSocket keep-alive ping period (a peer silent for two periods is closed)", Category: "WEBSOCKET"},
		&cli.StringFlag{Name: "metrics.addr", Usage: "serve Prometheus metrics at http://ADDR/metrics (default: off)", Category: "METRICS"},
		&cli.StringFlag{Name: "log.level", Value: "info", Usage: "debug, info, warn or error", Category: "LOGGING"},
		&cli.StringFlag{Name: "log.format", Value: "text", Usage: "text or json", Category: "LOGGING"},
	}
}

func sequencerConfig(c *cli.Context) (sequencer.Config, error) {
	cfg := sequencer.DefaultConfig()
	cfg.DataDir = c.String("datadir")
	cfg.GenesisFile = c.String("genesis")
	cfg.KeyFile = c.String("sequencer.key")
	cfg.MiniBlockInterval = c.Duration("sequencer.mini-block-interval")
	cfg.BlockInterval = c.Duration("sequencer.block-interval")
	cfg.MaxMiniBlockTxs = c.Int("sequencer.max-mini-block-txs")
	cfg.SnapshotEvery = c.Uint64("sequencer.snapshot-every")
	mode, err := exec.ParseMode(c.String("exec.mode"))
	if err != nil {
		return cfg, fmt.Errorf("--exec.mode: %w", err)
	}
	cfg.Exec = exec.ParallelConfig{Mode: mode, Workers: c.Int("exec.workers"), MinTxs: c.Int("exec.min-parallel-txs"), NoInference: !c.Bool("exec.inference")}
	applyNodeFlags(c, &cfg)
	st, err := streamPublishConfig(c)
	if err != nil {
		return cfg, err
	}
	cfg.Stream = st
	cfg.Mempool.MaxTxSize = c.Uint64("mempool.max-tx-size")
	cfg.Mempool.AccountSlots = c.Int("mempool.account-slots")
	cfg.Mempool.GlobalSlots = c.Int("mempool.global-slots")
	cfg.Mempool.PriceBump = c.Uint64("mempool.price-bump")
	cfg.Mempool.MaxNonceGap = c.Uint64("mempool.max-nonce-gap")
	if err := cfg.Check(); err != nil {
		return cfg, fmt.Errorf("invalid configuration: %w", err)
	}
	return cfg, nil
}

// applyNodeFlags sets what nodeFlags configure.
func applyNodeFlags(c *cli.Context, cfg *sequencer.Config) {
	cfg.RetainRoots = c.Int("state.retain-roots")
	cfg.CallGasCap = c.Uint64("rpc.gascap")
	cfg.CallTimeout = c.Duration("rpc.evm-timeout")
	cfg.SuggestedTip = c.Uint64("rpc.tip")
	cfg.MetricsAddr = c.String("metrics.addr")
	cfg.RPC = rpc.Config{
		Addr: c.String("http.addr"), MaxBodyBytes: c.Int("http.max-body"), MaxBatch: c.Int("http.max-batch"),
		CORSOrigins: c.StringSlice("http.cors"), MaxLogsRange: c.Uint64("rpc.logs-range"), MaxLogs: c.Int("rpc.logs-max"),
		SyncSendMaxTimeout: c.Duration("rpc.sync-timeout-max"), RequestTimeout: c.Duration("rpc.request-timeout"),
		MaxConcurrent: c.Int("rpc.max-concurrent"), QueueTimeout: c.Duration("rpc.queue-timeout"), MaxResponseBytes: c.Int("rpc.max-response"),
		FilterTimeout: c.Duration("rpc.filter-timeout"), MaxFilters: c.Int("rpc.max-filters"),
		WSMaxSubscriptions: c.Int("ws.max-subscriptions"), WSMaxInflight: c.Int("ws.max-inflight"),
		WSMaxConns: c.Int("ws.max-conns"), WSQueueBytes: c.Int("ws.max-queue"), WSPingInterval: c.Duration("ws.ping-interval"),
	}
}

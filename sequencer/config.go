package sequencer

import (
	"errors"
	"fmt"
	"time"

	"github.com/kestrel-l2/kestrel/core/chain"
	"github.com/kestrel-l2/kestrel/core/exec"
	"github.com/kestrel-l2/kestrel/mempool"
	"github.com/kestrel-l2/kestrel/rpc"
	"github.com/kestrel-l2/kestrel/stream"
)

// Config is everything a sequencer needs. The zero value is not valid; start from
// DefaultConfig.
type Config struct {
	// DataDir holds the pebble store. Empty: a temporary directory removed on Stop
	// (tests and throwaway dev chains only).
	DataDir string
	// GenesisFile is a genesis JSON; empty selects the built-in dev genesis.
	GenesisFile string
	// Genesis, when set, is used instead of GenesisFile (a replica takes the
	// genesis its bootstrap recorded).
	Genesis *chain.Genesis
	// KeyFile holds the sequencer's hex-encoded secp256k1 key; empty selects the
	// well-known dev key (account 0 of the dev mnemonic's path m/44'/60'/0'/0/0 is
	// NOT used; see DevSequencerKey).
	KeyFile string
	// MiniBlockInterval is the time between mini-blocks.
	MiniBlockInterval time.Duration
	// BlockInterval is the time between EVM blocks; block timestamps are seconds,
	// so values below one second make timestamps run ahead of the wall clock.
	BlockInterval time.Duration
	// MaxMiniBlockTxs caps the transactions in one mini-block.
	MaxMiniBlockTxs int
	// SnapshotEvery writes a state snapshot every this many blocks (0: never,
	// restarts replay the whole log).
	SnapshotEvery uint64
	// RetainRoots is how many recent block state roots stay readable for
	// eth_getProof and historical reads.
	RetainRoots int
	// RecentBlocks is how many recent sealed blocks keep their transactions and
	// receipts in memory (older ones are read from the store).
	RecentBlocks int
	// CallGasCap caps eth_call and eth_estimateGas gas.
	CallGasCap uint64
	// CallTimeout bounds one eth_call or eth_estimateGas.
	CallTimeout time.Duration
	// SuggestedTip is what eth_maxPriorityFeePerGas answers, in wei.
	SuggestedTip uint64
	// MetricsAddr serves Prometheus metrics at /metrics; empty disables them.
	MetricsAddr string
	// Exec configures the execution engine: the parallel (Block-STM) engine,
	// its worker count, its fallback to the sequential engine (Mode), and
	// access-list inference.
	Exec exec.ParallelConfig
	// Stream publishes every durable mini-block and sealed header to NATS
	// JetStream (nil: no stream). With an empty URL the node runs the
	// nats-server itself, its data under DataDir/nats.
	Stream *stream.Config
	// Follow makes the node a follower of another node's chain (a replica);
	// nil for the sequencer.
	Follow *FollowConfig
	// Mempool and RPC are the sub-component configs.
	Mempool mempool.Config
	RPC     rpc.Config
}

// DefaultConfig runs a working dev chain.
func DefaultConfig() Config {
	return Config{
		MiniBlockInterval: 10 * time.Millisecond,
		BlockInterval:     time.Second,
		MaxMiniBlockTxs:   20_000,
		SnapshotEvery:     300,
		RetainRoots:       128,
		RecentBlocks:      32,
		CallGasCap:        50_000_000,
		CallTimeout:       5 * time.Second,
		SuggestedTip:      1_000_000, // 0.001 gwei
		Exec:              exec.ParallelConfig{Mode: exec.ModeAuto},
		Mempool:           mempool.DefaultConfig,
		RPC:               rpc.Config{Addr: rpc.DefaultAddr},
	}
}

// Check reports the first invalid setting, including those of sub-configs.
func (c *Config) Check() error {
	switch {
	case c.MiniBlockInterval < time.Millisecond:
		return errors.New("mini-block interval must be at least 1ms")
	case c.BlockInterval < c.MiniBlockInterval:
		return errors.New("block interval must not be shorter than the mini-block interval")
	case c.MaxMiniBlockTxs < 1:
		return errors.New("max mini-block transactions must be positive")
	case c.RetainRoots < 1:
		return errors.New("retained roots must be positive")
	case c.RecentBlocks < 1:
		return errors.New("recent blocks must be positive")
	case c.CallGasCap < 21_000:
		return errors.New("call gas cap must be at least 21000")
	case c.CallTimeout <= 0:
		return errors.New("call timeout must be positive")
	case c.Exec.Workers < 0:
		return errors.New("execution workers must not be negative")
	}
	if c.Exec.Mode != "" {
		if _, err := exec.ParseMode(string(c.Exec.Mode)); err != nil {
			return err
		}
	}
	if err := c.Mempool.Check(); err != nil {
		return fmt.Errorf("mempool: %w", err)
	}
	if err := c.RPC.Check(); err != nil {
		return fmt.Errorf("rpc: %w", err)
	}
	if c.Stream != nil {
		if err := c.Stream.Check(); err != nil {
			return fmt.Errorf("stream: %w", err)
		}
	}
	return nil
}

package mempool

import (
	"errors"
	"fmt"
	"math/big"
	"runtime"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"
)

// State is the pending state the pool validates against: the state after the
// newest mini-block. Implementations must be safe for concurrent use; the pool
// calls them from many goroutines, while holding its per-sender locks.
type State interface {
	Nonce(common.Address) uint64
	Balance(common.Address) *uint256.Int
}

// Env is the environment of the open block. The sequencer replaces it with
// SetEnv when it opens a block.
type Env struct {
	ChainConfig *params.ChainConfig
	BlockNumber uint64
	Time        uint64
	BaseFee     *big.Int // nil means zero
	GasLimit    uint64   // block gas limit; 0 disables the check
}

// Config holds the pool's limits. The zero value of a field selects its
// default (see DefaultConfig); Check fills them in.
type Config struct {
	MaxTxSize      uint64   // largest accepted encoded transaction, bytes (131072)
	AccountSlots   int      // transactions (pending+queued) per sender (1024)
	GlobalSlots    int      // transactions in the whole pool (100000)
	PriceBump      uint64   // % by which fee cap and tip must rise to replace (10)
	MaxNonceGap    uint64   // largest accepted nonce - state nonce (64)
	MinTipCap      *big.Int // smallest accepted max priority fee (0)
	RecoverWorkers int      // goroutines for sender recovery per batch (runtime.NumCPU())
}

// DefaultConfig holds the defaults Check applies to zero fields.
var DefaultConfig = Config{
	MaxTxSize:    128 * 1024,
	AccountSlots: 1024,
	GlobalSlots:  100_000,
	PriceBump:    10,
	MaxNonceGap:  64,
}

// Check fills zero fields with their defaults and reports invalid settings.
func (c *Config) Check() error {
	if c.MaxTxSize == 0 {
		c.MaxTxSize = DefaultConfig.MaxTxSize
	}
	if c.AccountSlots == 0 {
		c.AccountSlots = DefaultConfig.AccountSlots
	}
	if c.GlobalSlots == 0 {
		c.GlobalSlots = DefaultConfig.GlobalSlots
	}
	if c.PriceBump == 0 {
		c.PriceBump = DefaultConfig.PriceBump
	}
	if c.MaxNonceGap == 0 {
		c.MaxNonceGap = DefaultConfig.MaxNonceGap
	}
	if c.MinTipCap == nil {
		c.MinTipCap = new(big.Int)
	}
	if c.RecoverWorkers <= 0 {
		c.RecoverWorkers = runtime.NumCPU()
	}
	switch {
	case c.AccountSlots < 0:
		return fmt.Errorf("mempool: negative AccountSlots %d", c.AccountSlots)
	case c.GlobalSlots < 0:
		return fmt.Errorf("mempool: negative GlobalSlots %d", c.GlobalSlots)
	case c.AccountSlots > c.GlobalSlots:
		return fmt.Errorf("mempool: AccountSlots %d exceeds GlobalSlots %d", c.AccountSlots, c.GlobalSlots)
	case c.MinTipCap.Sign() < 0:
		return errors.New("mempool: negative MinTipCap")
	case c.MinTipCap.BitLen() > 256:
		return errors.New("mempool: MinTipCap exceeds 256 bits")
	case c.PriceBump > 1_000_000:
		return fmt.Errorf("mempool: PriceBump %d%% is unreasonable", c.PriceBump)
	}
	return nil
}

// envState is an Env with what the pool derives from it.
type envState struct {
	Env
	rules   params.Rules
	baseFee uint256.Int
}

func newEnvState(env Env) (*envState, error) {
	if env.ChainConfig == nil {
		return nil, errors.New("mempool: nil chain config")
	}
	s := &envState{Env: env}
	s.rules = env.ChainConfig.Rules(new(big.Int).SetUint64(env.BlockNumber), true, env.Time)
	if env.BaseFee != nil {
		if env.BaseFee.Sign() < 0 || env.BaseFee.BitLen() > 256 {
			return nil, fmt.Errorf("mempool: invalid base fee %v", env.BaseFee)
		}
		s.baseFee.SetFromBig(env.BaseFee)
	}
	return s, nil
}

package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

// defaultGCPercent trades memory for latency: the mini-block loop allocates on
// every transaction, and each collection's mark assists land on it. Measured on
// the 2-core bench machine, GOGC=100 gave a 5,000 tx/s ERC-20 sync-send p99 of
// 33-58 ms after a 100k-transaction burst, GOGC=800 19 ms. 400 was measured
// against it (docs/bench/issue-6/NOTES.md): less memory and a faster ETH
// end-to-end loop, but slower ERC-20 and engine runs, so 800 stayed.
const defaultGCPercent = 800

func gcFlags() []cli.Flag {
	return withEnv([]cli.Flag{
		&cli.IntFlag{Name: "gc.percent", Value: defaultGCPercent, Category: "RUNTIME",
			Usage: "Go GC target percentage (as GOGC; a set GOGC environment variable wins); higher uses more memory and collects less often"},
		&cli.Uint64Flag{Name: "gc.memory-limit", Value: defaultMemoryLimitMiB(), Category: "RUNTIME",
			Usage: "soft memory limit in MiB (as GOMEMLIMIT; 0: none; default: 3/4 of this machine's memory): the GC works harder near it instead of growing past it, which --gc.percent's headroom would otherwise do"},
	})
}

// defaultMemoryLimitMiB is 3/4 of the machine's memory (0 when unknown): with
// the high GC percent, a large live heap would otherwise grow until the
// machine swaps.
func defaultMemoryLimitMiB() uint64 {
	return totalMemory() / 4 * 3 >> 20
}

// applyGC sets the process's GC policy from the flags.
func applyGC(c *cli.Context) error {
	if os.Getenv("GOGC") == "" {
		p := c.Int("gc.percent")
		if p < 10 {
			return fmt.Errorf("--gc.percent must be at least 10, not %d", p)
		}
		debug.SetGCPercent(p)
	}
	if mib := c.Uint64("gc.memory-limit"); mib > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(mib) << 20)
	}
	return nil
}

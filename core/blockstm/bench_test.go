package blockstm

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// spinFor busy-waits, simulating the CPU cost of executing a transaction.
func spinFor(d time.Duration) {
	start := time.Now()
	for time.Since(start) < d {
		spin(64)
	}
}

func BenchmarkRun(b *testing.B) {
	const n = 1000
	const cost = 20 * time.Microsecond
	loads := []workload{independentWorkload(n), allConflictWorkload(n)}
	for _, w := range loads {
		for _, workers := range []int{1, 2, 4} {
			b.Run(fmt.Sprintf("%s/workers=%d", w.name, workers), func(b *testing.B) {
				exec := ExecutorFunc(func(i, inc int, v *TxView) (ExecResult, error) {
					out, err := runTx(i, &w.txs[i], w.keys, v)
					if err == nil {
						spinFor(cost)
					}
					return ExecResult{Output: out}, err
				})
				var execs int
				b.ResetTimer()
				for it := 0; it < b.N; it++ {
					res, err := Run(context.Background(), n, exec, workers)
					if err != nil {
						b.Fatal(err)
					}
					execs += res.Stats.Executions
				}
				sec := b.Elapsed().Seconds()
				b.ReportMetric(float64(n*b.N)/sec, "tx/s")
				b.ReportMetric(float64(execs)/float64(n*b.N), "execs/tx")
			})
		}
	}
}

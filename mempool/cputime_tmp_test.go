package mempool

import (
	"math"
	"runtime"
	"syscall"
	"testing"
	"time"
)

func threadCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(1, &ru) // RUSAGE_THREAD
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestTmpReadyCPU(t *testing.T) {
	for _, shape := range []struct{ senders, per int }{{100_000, 1}} {
		b := &testing.B{}
		_ = b
		p, _ := newTestPool(t, Config{AccountSlots: 1 << 20, GlobalSlots: 1 << 24, MaxNonceGap: 1 << 20}, testConfig(false))
		fillPool((*testing.B)(nil), p, shape.senders, shape.per)
		runtime.GC()
		runtime.LockOSThread()
		const n = 2000
		start := threadCPU()
		for range n {
			p.Ready(5000, math.MaxUint64)
		}
		el := threadCPU() - start
		runtime.UnlockOSThread()
		t.Logf("senders %d per %d: %v CPU per Ready", shape.senders, shape.per, el/n)
	}
}

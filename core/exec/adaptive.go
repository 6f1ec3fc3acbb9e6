package exec

import (
	"math/bits"
	"sync"
	"time"
)

// costModel picks, in ModeAuto, the engine that has been faster for requests
// of about the same size: Block-STM pays a fixed cost per request and per
// transaction (multi-version memory, validation, the diff) that only enough
// independent transactions and cores repay, and where that happens depends on
// the machine and the workload. It keeps, per power-of-two size class, a
// moving average of each engine's time per transaction, and re-measures the
// engine it does not pick on one request in exploreEvery, so a change of
// workload is noticed.
type costModel struct {
	mu      sync.Mutex
	classes [32]costClass
}

type costClass struct {
	par, seq   float64 // moving averages, ns per transaction (0: not measured)
	requests   uint64
	lastChoice bool
}

const (
	exploreEvery = 32
	costAlpha    = 0.25 // weight of a new measurement
)

func sizeClass(n int) int { return bits.Len(uint(n)) }

// choose reports whether a request of n transactions should run on Block-STM.
func (c *costModel) choose(n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl := &c.classes[sizeClass(n)]
	cl.requests++
	switch {
	case cl.par == 0:
		return true // measure Block-STM first: it is the engine that can scale
	case cl.seq == 0:
		return false
	}
	faster := cl.par < cl.seq
	if cl.requests%exploreEvery == 0 {
		return !faster
	}
	return faster
}

// record adds a measurement of a request of n transactions.
func (c *costModel) record(n int, parallel bool, d time.Duration) {
	if n == 0 {
		return
	}
	per := float64(d.Nanoseconds()) / float64(n)
	c.mu.Lock()
	defer c.mu.Unlock()
	cl := &c.classes[sizeClass(n)]
	avg := &cl.seq
	if parallel {
		avg = &cl.par
	}
	if *avg == 0 {
		*avg = per
	} else {
		*avg += costAlpha * (per - *avg)
	}
}

// estimates returns the class's averages (for tests).
func (c *costModel) estimates(n int) (par, seq float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl := &c.classes[sizeClass(n)]
	return cl.par, cl.seq
}

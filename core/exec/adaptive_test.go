package exec

import (
	"testing"
	"time"
)

// TestCostModel: the model tries Block-STM first, then the sequential engine,
// then keeps to the faster one, re-measuring the other one request in
// exploreEvery; size classes are independent.
func TestCostModel(t *testing.T) {
	var c costModel
	if !c.choose(50) {
		t.Fatal("first request of a size must try Block-STM")
	}
	c.record(50, true, 500*time.Microsecond)
	if c.choose(50) {
		t.Fatal("second request must measure the sequential engine")
	}
	c.record(50, false, 250*time.Microsecond)
	par, seq := c.estimates(50)
	if par != 10_000 || seq != 5_000 {
		t.Fatalf("estimates %v %v ns/tx", par, seq)
	}
	parallel := 0
	for range 3 * exploreEvery {
		if c.choose(50) {
			parallel++
		}
	}
	if parallel != 3 {
		t.Fatalf("Block-STM chosen %d times in %d requests, want 3 explorations", parallel, 3*exploreEvery)
	}
	// A size class of its own.
	if !c.choose(5000) {
		t.Fatal("a new size class starts with Block-STM")
	}
	// The averages follow new measurements.
	for range 20 {
		c.record(50, true, 100*time.Microsecond)
	}
	if par, _ := c.estimates(50); par > 2_100 {
		t.Fatalf("parallel estimate %v did not follow", par)
	}
	if !c.choose(50) {
		t.Fatal("Block-STM is now faster and must be chosen")
	}
	c.record(0, true, time.Second) // ignored
}

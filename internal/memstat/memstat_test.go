package memstat

import "testing"

// TestLiveHeapCountsReachable: a held allocation shows in the live heap and is
// gone from it once dropped.
func TestLiveHeapCountsReachable(t *testing.T) {
	before := LiveHeap()
	held := make([]byte, 64<<20)
	held[len(held)-1] = 1
	during := LiveHeap()
	if during < before+60<<20 {
		t.Fatalf("live heap %d with 64 MiB held, %d before", during, before)
	}
	if held[len(held)-1] != 1 {
		t.Fatal("lost the write")
	}
	held = nil
	if after := LiveHeap(); after > during-60<<20 {
		t.Fatalf("live heap %d after dropping 64 MiB, %d while held", after, during)
	}
}

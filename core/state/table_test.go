package state

import (
	"math/rand"
	"testing"
)

// TestTableMatchesMap drives a table and a Go map with the same random puts
// and deletes over a small key space (long probe runs, wrap-around at the end
// of a shard, deletes in the middle of runs) and compares them after each step.
func TestTableMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	for _, keys := range []int{3, 40, 3000} {
		tb := newTable[uint32, uint64]()
		m := map[uint32]uint64{}
		for step := 0; step < 30000; step++ {
			k := uint32(rng.Intn(keys))
			switch rng.Intn(3) {
			case 0, 1:
				v := rng.Uint64()
				tb.Put(k, v)
				m[k] = v
			case 2:
				tb.Delete(k)
				delete(m, k)
			}
			if tb.Len() != len(m) {
				t.Fatalf("keys %d step %d: %d entries, want %d", keys, step, tb.Len(), len(m))
			}
			probe := uint32(rng.Intn(keys))
			got, ok := tb.Get(probe)
			want, wok := m[probe]
			if ok != wok || got != want {
				t.Fatalf("keys %d step %d: Get(%d) = %d,%v want %d,%v", keys, step, probe, got, ok, want, wok)
			}
		}
		seen := 0
		tb.Range(func(k uint32, v *uint64) bool {
			if m[k] != *v {
				t.Fatalf("Range: %d = %d, want %d", k, *v, m[k])
			}
			seen++
			return true
		})
		if seen != len(m) {
			t.Fatalf("Range saw %d of %d", seen, len(m))
		}
		for k, v := range m {
			if p := tb.Ptr(k); p == nil || *p != v {
				t.Fatalf("Ptr(%d)", k)
			}
		}
	}
}

// Package memstat reads the Go heap for memory figures in benchmarks.
package memstat

import (
	"runtime"
	"runtime/debug"
)

// LiveHeap is the heap in use after a full collection that also returns freed
// memory to the OS (two collections in all), so that only reachable objects
// count.
func LiveHeap() uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

//go:build !linux

package main

// totalMemory is unknown outside Linux: no default memory limit.
func totalMemory() uint64 { return 0 }

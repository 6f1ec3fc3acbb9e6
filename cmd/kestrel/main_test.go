package main

import (
	"os"
	"testing"
)

// TestMain lets tests run this package's main as a subprocess: the real binary's
// code path, started the way a user starts it, without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("KESTREL_TEST_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

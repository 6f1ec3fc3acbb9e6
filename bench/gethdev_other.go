//go:build !linux

package bench

import "os/exec"

// dieWithParent is Linux-only (Pdeathsig); elsewhere a killed bench may leave
// its geth running.
func dieWithParent(*exec.Cmd) {}

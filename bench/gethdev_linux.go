package bench

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill cmd when the bench process dies, so that
// a bench killed with SIGKILL leaves no geth behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

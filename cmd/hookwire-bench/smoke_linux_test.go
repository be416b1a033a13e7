package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent kills the server if the test process dies without its
// cleanups (an interrupted or crashed test run).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

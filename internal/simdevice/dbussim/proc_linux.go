package dbussim

import (
	"os/exec"
	"runtime"
	"syscall"
)

// dieWithParent starts cmd so that it gets SIGKILL when we die, however we
// die (PR_SET_PDEATHSIG). The kernel ties that to the thread that forked,
// so the fork runs on a thread locked for it, which then goes back to Go's
// pool and lives as long as the process.
func dieWithParent(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return cmd.Start()
}

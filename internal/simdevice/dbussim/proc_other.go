//go:build !linux

package dbussim

import "os/exec"

// dieWithParent starts cmd; only Linux can tie a child's life to ours, and
// elsewhere the pid file is what reaps a leftover daemon.
func dieWithParent(cmd *exec.Cmd) error { return cmd.Start() }

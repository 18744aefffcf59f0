package dbussim_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/airlockhq/airlock/internal/simdevice/dbussim"
	"github.com/airlockhq/airlock/internal/testenv"
)

// A daemon left running on the bus's directory by a host that was killed
// (on a kernel that did not kill it along) is reaped by the next start,
// found by its pid file; a process that is not our daemon is left alone.
func TestStartReapsLeftoverDaemon(t *testing.T) {
	testenv.NeedCommand(t, "dbus-daemon", "dbus")
	dir := t.TempDir()
	b, err := dbussim.StartBus(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	b.Stop()
	// The leftover: started as a killed host would have left it, not our
	// child's child, and not tied to our life.
	left := exec.Command("dbus-daemon", "--config-file="+b.Config(), "--nofork", "--nopidfile")
	if err := left.Start(); err != nil {
		t.Fatal(err)
	}
	pid := left.Process.Pid
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL); left.Wait() })
	go left.Wait() // reap it when it dies, as init would
	pidFile := filepath.Join(dir, "dbus-daemon.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(pid)), 0o600); err != nil {
		t.Fatal(err)
	}
	if !dbussim.OwnDaemon(pid, b.Config()) {
		t.Fatalf("OwnDaemon does not recognise the leftover %d", pid)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	if dbussim.OwnDaemon(pid, b.Config()) {
		t.Errorf("the leftover dbus-daemon %d survived the next start", pid)
	}
	// A pid file that names someone else (our own process) kills no one.
	b.Stop()
	os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())), 0o600)
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
}

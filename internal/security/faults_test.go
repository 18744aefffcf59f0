package security

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/internal/hostrun"
	"github.com/airlockhq/airlock/internal/plugin"
	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/timer"
)

// runPlain runs a host with no capabilities and the counter plugins given
// by name and manifest extra; prepare runs after the directories exist and
// before the host starts.
func runPlain(t *testing.T, restart string, prepare func(dir string), plugs map[string]string) (*host.Host, *testenv.Log, func()) {
	t.Helper()
	dir := t.TempDir()
	for name, extra := range plugs {
		testenv.PluginDir(t, filepath.Join(dir, "plugins"), name, fmt.Sprintf("name = %q\nversion = \"0.1.0\"\n%s\n", name, extra), counter)
	}
	rt := "plugins = [\"plugins\"]\nstate_dir = \"state\"\n[log]\naudit = \"off\"\n" + restart
	if err := os.WriteFile(filepath.Join(dir, "runtime.toml"), []byte(rt), 0o644); err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(dir)
	}
	log, logger := testenv.NewLog(t)
	r := hostrun.Start(t, filepath.Join(dir, "runtime.toml"), host.Options{Logger: logger})
	stop := func() {
		if err := r.Stop(); err != nil {
			t.Error(err)
		}
	}
	return r.Host, log, stop
}

// The disk under a plugin's /data fills up: the write fails with an error
// the plugin reads, and the plugin and host go on. wazero's errno set has no
// ENOSPC, so the guest sees EIO ("I/O error"); see host/RATIONALE.md.
func TestDiskFullInData(t *testing.T) {
	testenv.NeedRoot(t, "mount a small tmpfs as a plugin's /data")
	testenv.NeedCommand(t, "mount", "mount")
	var data string
	h, log, _ := runPlain(t, "", func(dir string) {
		data = filepath.Join(dir, "state", "data", "filler")
		if err := os.MkdirAll(data, 0o700); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "airlock-test-full", data).CombinedOutput(); err != nil {
			testenv.Missing(t, fmt.Sprintf("mount tmpfs: %v: %s", err, out))
		}
		t.Cleanup(func() { exec.Command("umount", "-l", data).Run() })
	}, map[string]string{"filler": "[storage]\ndata = true"})
	log.Wait(1, "INFO started", "plugin=filler")
	h.Deliver("filler", timer.Event("filler", "write:1024", time.Now()))
	log.Wait(1, "write 1024 KiB: ", "plugin=filler")
	if n := log.Count("write 1024 KiB: ", "I/O error", "plugin=filler"); n != 1 {
		t.Errorf("want the full disk reported to the plugin as an error:\n%v", log.Lines())
	}
	h.Deliver("filler", timer.Event("filler", "write:16", time.Now()))
	log.Wait(1, "write 16 KiB: <nil>", "plugin=filler")
	for _, s := range h.Status() {
		if s.Restarts != 0 || s.State != plugin.StateRunning {
			t.Errorf("a full disk crashed the plugin: %+v", s)
		}
	}
}

// A plugin that crashes at every start is marked crash-looping and retried
// at most every [restart] max: over a window, its restarts stay bounded
// instead of burning the CPU.
func TestCrashLoopIsBounded(t *testing.T) {
	restart := "[restart]\ninitial = \"10ms\"\nmax = \"200ms\"\ncrash_loop = 3\nwindow = \"1m\"\n"
	h, log, stop := runPlain(t, restart, nil, map[string]string{
		"crasher": "[config]\nwork = \"crash\"", "steady": ""})
	log.Wait(1, "plugin crashed", "plugin=crasher", "state=crash-looping")
	const window = 2 * time.Second
	first := status(t, h, "crasher").Restarts
	time.Sleep(window)
	s := status(t, h, "crasher")
	// Backoff capped at max: at most window/max restarts, plus one for the
	// one under way. A machine that is slow only lowers the count.
	if n, bound := s.Restarts-first, int(window/(200*time.Millisecond))+1; n > bound {
		t.Errorf("%d restarts in %s, want at most %d", n, window, bound)
	}
	if s.State != plugin.StateCrashLooping {
		t.Errorf("state = %s, want crash-looping", s.State)
	}
	if st := status(t, h, "steady"); st.Restarts != 0 || st.State != plugin.StateRunning {
		t.Errorf("the steady plugin: %+v", st)
	}
	stop()
}

func status(t *testing.T, h *host.Host, name string) plugin.Status {
	for _, s := range h.Status() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no plugin %s", name)
	return plugin.Status{}
}

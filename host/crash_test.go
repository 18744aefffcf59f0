package host_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/airlockhq/airlock/internal/admin"
	"github.com/airlockhq/airlock/internal/testenv"
)

// TestDataSurvivesKill9 has a plugin write and close a file in /data (and
// replace another with the SDK's WriteFileAtomic), kills
// the real host with SIGKILL (no shutdown, no stop event), starts it again
// on the same state directory and has the plugin read the file back. What
// is promised: a write that returned is in the kernel's page cache, so it
// survives the host's crash; surviving a power cut needs the plugin to call
// fsync (File.Sync), see host/RATIONALE.md, "Nothing lost".
func TestDataSurvivesKill9(t *testing.T) {
	testenv.NeedCommand(t, "dbus-daemon", "dbus")
	bin := testenv.Airlock(t)
	dir := t.TempDir()
	testenv.PluginDir(t, filepath.Join(dir, "plugins"), "keeper", `name = "keeper"
version = "0.1.0"
[storage]
data = true
[[trigger.timer]]
name = "write:kept"
every = "24h"
[[trigger.timer]]
name = "read:/data/kept"
every = "24h"
[[trigger.timer]]
name = "atomic:swapped"
every = "24h"
[[trigger.timer]]
name = "read:/data/swapped"
every = "24h"
`, "host/testdata/guest")
	sock := filepath.Join(dir, "admin.sock")
	conf := filepath.Join(dir, "runtime.toml")
	rt := fmt.Sprintf("plugins = [\"plugins\"]\nstate_dir = \"state\"\ndevice = \"sim\"\n[log]\naudit = \"off\"\n[admin]\nsocket = %q\n[scenario]\nplay = \"none\"\n", sock)
	if err := os.WriteFile(conf, []byte(rt), 0o644); err != nil {
		t.Fatal(err)
	}
	fire := func(name string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.NewClient(sock).Trigger(ctx, admin.TriggerRequest{Plugin: "keeper", Kind: "timer", Args: []string{"name=" + name}}); err != nil {
			t.Fatalf("trigger %s: %v", name, err)
		}
	}

	first := startAirlock(t, bin, conf)
	first.wait(t, "airlock running")
	fire("write:kept")
	first.wait(t, "write: ok", "plugin=keeper")
	// The SDK's temp-then-rename write (WriteFileAtomic).
	fire("atomic:swapped")
	first.wait(t, "atomic: ok", "plugin=keeper")
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.cmd.Wait()
	<-first.eof

	second := startAirlock(t, bin, conf)
	second.wait(t, "airlock running")
	fire("read:/data/kept")
	second.wait(t, "read /data/kept: ok secret of kept", "plugin=keeper")
	fire("read:/data/swapped")
	second.wait(t, "read /data/swapped: ok atomic swapped", "plugin=keeper")
	if left, _ := filepath.Glob(filepath.Join(dir, "state", "*", "*", ".swapped.tmp-*")); len(left) > 0 {
		t.Errorf("WriteFileAtomic left its temporary file: %v", left)
	}
	second.cmd.Process.Signal(syscall.SIGTERM)
	if err := second.cmd.Wait(); err != nil {
		t.Errorf("the restarted host exited with %v:\n%s", err, second.output())
	}
}

package host_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/builtin"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/admin"
	"github.com/airlockhq/airlock/internal/mount"
	"github.com/airlockhq/airlock/internal/testenv"
)

// TestFirstBootOnEmptyData starts a host whose state_dir and admin socket
// are on an empty volume, as a device's first boot is: every directory it
// writes is made, private, and status answers.
func TestFirstBootOnEmptyData(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil { // a fresh named volume
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "plugins"), 0o755)
	sock := filepath.Join(data, "run", "admin.sock")
	conf := filepath.Join(dir, "runtime.toml")
	// The audit file in state_dir, as docs/device/runtime.toml has it.
	rt := "plugins = [\"plugins\"]\nstate_dir = \"data/airlock\"\n[admin]\nsocket = \"data/run/admin.sock\"\n[log]\naudit = \"" + filepath.Join(data, "airlock", "audit.jsonl") + "\"\n[scenario]\nplay = \"none\"\n"
	if err := os.WriteFile(conf, []byte(rt), 0o644); err != nil {
		t.Fatal(err)
	}
	log, logger := testenv.NewLog(t)
	h, err := host.New(conf, host.Options{Logger: logger, Capabilities: builtin.Capabilities()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	log.Wait(1, "airlock running")
	for _, d := range []string{filepath.Join(data, "airlock"), filepath.Join(data, "run")} {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %04o, want 0700", d, st.Mode().Perm())
		}
	}
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	if _, err := admin.NewClient(sock).Status(sctx); err != nil {
		t.Errorf("status on the first boot: %v", err)
	}
}

// TestStateDirThatCannotBeMade: the host does not start, and says which
// path, why, and which setting to change.
func TestStateDirThatCannotBeMade(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "plugins"), 0o755)
	os.WriteFile(filepath.Join(dir, "data"), []byte("a file, not a volume"), 0o644)
	conf := filepath.Join(dir, "runtime.toml")
	if err := os.WriteFile(conf, []byte("plugins = [\"plugins\"]\nstate_dir = \"data/airlock\"\n[log]\naudit = \"off\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := host.New(conf, host.Options{})
	if err == nil {
		t.Fatal("New with state_dir under a file: nil error")
	}
	for _, w := range []string{"state_dir", filepath.Join(dir, "data", "airlock"), "not a directory", conf} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

// TestDeviceConfigIsValid: the runtime.toml the Dockerfile ships parses
// with every built-in capability's sections, and names its overlay.
func TestDeviceConfigIsValid(t *testing.T) {
	rt, err := manifest.LoadRuntime(filepath.Join(testenv.RepoRoot(t), "docs", "device", "runtime.toml"), host.RuntimeSections(builtin.Capabilities()))
	if err != nil {
		t.Fatal(err)
	}
	if rt.Device != "real" || rt.StateDir != "/data/airlock" || rt.Overlay != "/data/airlock/overlay.toml" {
		t.Errorf("device %q, state_dir %q, overlay %q", rt.Device, rt.StateDir, rt.Overlay)
	}
}

// TestOverlaySetsMountDisks: a device's overlay says which of its disks
// mounts may take; a capability section it may not set stays refused.
func TestOverlaySetsMountDisks(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "runtime.toml")
	overlay := filepath.Join(dir, "overlay.toml")
	if err := os.WriteFile(conf, []byte("device = \"real\"\noverlay = \"overlay.toml\"\n[mount]\ndisks = [\"removable\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sections := host.RuntimeSections(builtin.Capabilities())
	os.WriteFile(overlay, []byte("[mount]\ndisks = [\"removable\", \"mmcblk1\"]\n"), 0o600)
	rt, err := manifest.LoadRuntime(conf, sections)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := rt.Sections["mount"].(*mount.Config); !ok || strings.Join(c.Disks, ",") != "removable,mmcblk1" {
		t.Errorf("[mount] after the overlay: %#v", rt.Sections["mount"])
	}
	os.WriteFile(overlay, []byte("[udev]\nsource = \"replay\"\n"), 0o600)
	if _, err := manifest.LoadRuntime(conf, sections); err == nil || !strings.Contains(err.Error(), "overlay.toml:1: udev: may not be set in an overlay") {
		t.Errorf("[udev] in an overlay: %v", err)
	}
}

package dbus_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/internal/simdevice"
	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/timer"
)

// The four examples, built from source, on the embedded simulated device:
// the capability starts its own private bus with the Go services, and the
// simulated device's clock becomes NTP-synchronized once ntp-check listens.
func TestExamplesOnSimDevice(t *testing.T) {
	testenv.NeedCommand(t, "dbus-daemon", "dbus")
	dir := t.TempDir()
	for _, ex := range []string{"dbus-reboot", "dbus-reboot-systemd", "dbus-stop-bluetooth", "ntp-check"} {
		m, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples", ex, "plugin.toml"))
		if err != nil {
			t.Fatal(err)
		}
		testenv.PluginDir(t, filepath.Join(dir, "plugins"), ex, string(m), "examples/"+ex)
	}
	if err := os.WriteFile(filepath.Join(dir, "runtime.toml"), []byte("plugins = [\"plugins\"]\nstate_dir = \"state\"\ndevice = \"sim\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	log, logger := testenv.NewLog(t)
	audit, auditLogger := testenv.NewLog(t)
	sim := simdevice.New(simdevice.Options{})
	d := sim.NewDBus()
	h, err := host.New(filepath.Join(dir, "runtime.toml"), host.Options{Logger: logger, Audit: auditLogger, Capabilities: []capability.Capability{d, sim}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Error("host did not stop")
		}
	}()
	log.Wait(1, "bluetooth.service stop queued", "plugin=dbus-stop-bluetooth")
	log.Wait(1, "bluetooth.service active_state=inactive", "plugin=dbus-stop-bluetooth")
	log.Wait(1, "as intended, ssh.service is out of reach", `argument 0 is "ssh.service", not "bluetooth.service"`)
	log.Wait(1, "NTPSynchronized changed synced=true", "plugin=ntp-check")

	h.Deliver("dbus-reboot", timer.Event("dbus-reboot", "reboot", time.Now()))
	log.Wait(1, "reboot requested through logind", "plugin=dbus-reboot")
	if n := d.Sim().Device.Reboots(); n != 1 {
		t.Errorf("simulated logind saw %d reboots", n)
	}

	// The classic docs' call: systemd1's Manager.Reboot, granted with no arguments.
	h.Deliver("dbus-reboot-systemd", timer.Event("dbus-reboot-systemd", "reboot", time.Now()))
	log.Wait(1, "reboot requested through systemd1 Manager.Reboot", "plugin=dbus-reboot-systemd")
	if n := d.Sim().Device.Reboots(); n != 2 {
		t.Errorf("simulated device saw %d reboots, want 2 (logind then systemd1)", n)
	}
	if audit.Count("plugin=dbus-reboot-systemd", "decision=deny") != 0 {
		t.Error("systemd1 Manager.Reboot was denied")
	}
	if audit.Count("plugin=dbus-stop-bluetooth", "decision=deny", "ssh.service") != 1 {
		t.Error("the denied StopUnit was not audited")
	}
}

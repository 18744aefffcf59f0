// Package plugintest lets a plugin's author test it with `go test`: it
// builds the plugin from source, runs it in a real airlock host on the
// simulated device, fires events at it and lets the test read its logs, its
// audit records and the simulated device's state.
//
//	func TestGreets(t *testing.T) {
//		h := plugintest.New(t, ".")
//		h.Logs().Wait(1, "hello from a sandboxed plugin")
//	}
package plugintest

import (
	"testing"
	"time"

	"github.com/airlockhq/airlock/internal/simdevice/dbussim"

	"github.com/airlockhq/airlock/host/logtest"
	"github.com/airlockhq/airlock/internal/mount"
	"github.com/airlockhq/airlock/internal/plugin"
	"github.com/airlockhq/airlock/internal/simdevice/supsim"
	"github.com/airlockhq/airlock/internal/solo"
	"github.com/airlockhq/airlock/internal/timer"
)

// Options adjust the harness. The zero value is a plugin alone on the
// simulated device.
type Options struct {
	// Runtime is extra runtime.toml text, such as a [limits] table.
	Runtime string
	// Environ is the environment the plugin's env.allow selects from
	// (nil: none).
	Environ []string
	// Config overrides or adds keys of the manifest's [config].
	Config map[string]string
	// Data seeds the plugin's /data (path: content); the manifest must
	// grant [storage] data = true.
	Data map[string]string
	// Sticks are extra USB sticks of the simulated device (label, fstype,
	// uuid, files), absent until Plug.
	Sticks []Stick
	// Timeout bounds each wait (default 60 s). A wait also ends at once,
	// failing the test, when the plugin traps or logs an error.
	Timeout time.Duration
}

// Stick is a USB stick of the simulated device: its label, file system
// type, UUID and files.
type Stick = mount.Stick

// Harness is one plugin running in a host. Close stops it; New registers
// Close with t.Cleanup.
type Harness struct {
	t    testing.TB
	Name string // the plugin's name, from its manifest
	s    *solo.Session
}

// New builds the plugin in dir (a Go plugin is compiled from source when its
// module is missing or stale) and starts it in a host on the simulated
// device (package solo, as airlock test does). It fails the test, with the
// host's message, if the plugin does not load.
func New(t testing.TB, dir string, opts ...Options) *Harness {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	log, logger := logtest.New(t)
	audit, auditLogger := logtest.New(t)
	s, err := solo.Start(dir, solo.Options{Config: o.Config, Data: o.Data, Environ: o.Environ, Runtime: o.Runtime, Sticks: o.Sticks,
		Timeout: o.Timeout, Log: log, Logger: logger, Audit: audit, AuditLogger: auditLogger})
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	h := &Harness{t: t, Name: s.Name, s: s}
	t.Cleanup(h.Close)
	return h
}

// Logs is everything the host and the plugin logged. A plugin's own lines
// carry plugin=<name> and source=plugin (or source=stdout).
func (h *Harness) Logs() *logtest.Log { return h.s.Log }

// Audit is the gate's allow and deny records.
func (h *Harness) Audit() *logtest.Log { return h.s.Audit }

// Status is the plugin's state, restarts, queue and drops.
func (h *Harness) Status() plugin.Status {
	for _, s := range h.s.Host.Status() {
		if s.Name == h.Name {
			return s
		}
	}
	return plugin.Status{Name: h.Name}
}

// Timer fires the plugin's timer called name now, whether or not its
// manifest declares it.
func (h *Harness) Timer(name string) {
	h.t.Helper()
	if !h.s.Host.Deliver(h.Name, timer.Event(h.Name, name, time.Now())) {
		h.t.Fatalf("plugintest: timer %q not queued (queue full or plugin stopped)", name)
	}
}

// Trigger sends an event of kind (timer, udev, dbus, ...) with its
// arguments as `airlock trigger` takes them (airlock help trigger): through
// the source's own routing when it has one (udev: the plugin's
// [[trigger.udev]] rules), or else through the plugin's queue, marked
// AIRLOCK_SYNTH=trigger. A kind the manifest has no trigger for fails the
// test.
func (h *Harness) Trigger(kind string, args ...string) {
	h.t.Helper()
	if err := h.s.TriggerArgs(kind, args); err != nil {
		h.t.Fatalf("plugintest: %v", err)
	}
}

// Udev sends a device event through the host's udev router, as if the
// kernel had sent it: the plugin sees it only if its [[trigger.udev]] rules
// match. props holds udev properties; SUBSYSTEM, DEVTYPE and DEVNAME among
// them fill the event's own fields.
func (h *Harness) Udev(action, devpath string, props map[string]string) {
	h.t.Helper()
	args := []string{action, devpath}
	for k, v := range props {
		args = append(args, k+"="+v)
	}
	h.Trigger("udev", args...)
}

// Plug plugs in the stick labelled label (one of Options.Sticks): its udev
// add event goes to the plugin's [[trigger.udev]] rules.
func (h *Harness) Plug(label string) {
	h.t.Helper()
	if err := h.s.PlugStick(label); err != nil {
		h.t.Fatalf("plugintest: %v", err)
	}
}

// Pull pulls out the stick labelled label; the host unmounts it if the
// plugin had it mounted.
func (h *Harness) Pull(label string) {
	h.t.Helper()
	if err := h.s.PullStick(label); err != nil {
		h.t.Fatalf("plugintest: %v", err)
	}
}

// StickFile reads a file on the stick labelled label, such as one the
// plugin wrote there.
func (h *Harness) StickFile(label, path string) []byte {
	h.t.Helper()
	b, err := h.s.StickFile(label, path)
	if err != nil {
		h.t.Fatalf("plugintest: %v", err)
	}
	return b
}

// DataFile reads a file of the plugin's /data.
func (h *Harness) DataFile(path string) []byte {
	h.t.Helper()
	b, err := h.s.DataFile(path)
	if err != nil {
		h.t.Fatalf("plugintest: %v", err)
	}
	return b
}

// Supervisor is the simulated device supervisor: its State shows reboots,
// services and locks, and Lock takes an update lock.
func (h *Harness) Supervisor() *supsim.Server {
	if s := h.s.Supervisor(); s != nil {
		return s
	}
	h.t.Fatal("plugintest: no simulated supervisor")
	return nil
}

// DBus is the simulated system bus and its services (systemd1, login1,
// timedate1, hostname1), or nil if dbus-daemon is not installed.
func (h *Harness) DBus() *dbussim.Run { return h.s.DBus() }

// Close stops the host: the plugin's queue drains and it receives stop.
// It may be called more than once.
func (h *Harness) Close() {
	if err := h.s.Close(); err != nil {
		h.t.Errorf("plugintest: host: %v", err)
	}
}

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
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dbussim "github.com/airlockhq/airlock/host/dbus/sim"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/dbus"
	"github.com/airlockhq/airlock/host/internal/hostrun"
	"github.com/airlockhq/airlock/host/logtest"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/host/plugin"
	"github.com/airlockhq/airlock/host/scenario"
	"github.com/airlockhq/airlock/host/supervisor"
	"github.com/airlockhq/airlock/host/supervisor/sim"
	"github.com/airlockhq/airlock/host/timer"
	"github.com/airlockhq/airlock/host/udev"
)

// Options adjust the harness. The zero value is a plugin alone on the
// simulated device.
type Options struct {
	// Runtime is extra runtime.toml text, such as a [limits] table.
	Runtime string
	// Environ is the environment the plugin's env.allow selects from
	// (nil: none).
	Environ []string
}

// Harness is one plugin running in a host. Close stops it; New registers
// Close with t.Cleanup.
type Harness struct {
	t     testing.TB
	Name  string // the plugin's name, from its manifest
	host  *host.Host
	run   *hostrun.Run
	caps  []capability.Capability
	log   *logtest.Log
	audit *logtest.Log
}

// New builds the plugin in dir (a Go plugin is compiled from source when its
// module is missing or stale) and starts it in a host on the simulated
// device. It fails the test, with the host's message, if the plugin does
// not load.
func New(t testing.TB, dir string, opts ...Options) *Harness {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	def := manifest.DefaultRuntime()
	m, err := manifest.LoadManifest(filepath.Join(abs, "plugin.toml"), &def, host.Schema(host.Builtin()))
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	tmp := t.TempDir()
	rt := scenario.Solo(abs, filepath.Join(tmp, "state"), false, o.Runtime)
	conf := filepath.Join(tmp, "runtime.toml")
	if err := os.WriteFile(conf, []byte(rt), 0o644); err != nil {
		t.Fatal(err)
	}
	log, logger := logtest.New(t)
	audit, auditLogger := logtest.New(t)
	environ := o.Environ
	if environ == nil {
		environ = []string{}
	}
	caps := host.Builtin()
	run := hostrun.Start(t, conf, host.Options{Logger: logger, Audit: auditLogger, Capabilities: caps, Environ: environ})
	hst := run.Host
	h := &Harness{t: t, Name: m.Name, host: hst, run: run, caps: caps, log: log, audit: audit}
	log.Wait(1, "airlock running")
	for d, err := range hst.LoadErrors {
		t.Fatalf("plugintest: plugin in %s did not load: %v", d, err)
	}
	log.Wait(1, "plugin loaded", "plugin="+m.Name)
	return h
}

// Logs is everything the host and the plugin logged. A plugin's own lines
// carry plugin=<name> and source=plugin (or source=stdout).
func (h *Harness) Logs() *logtest.Log { return h.log }

// Audit is the gate's allow and deny records.
func (h *Harness) Audit() *logtest.Log { return h.audit }

// Status is the plugin's state, restarts, queue and drops.
func (h *Harness) Status() plugin.Status {
	for _, s := range h.host.Status() {
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
	if !h.host.Deliver(h.Name, timer.Event(h.Name, name, time.Now())) {
		h.t.Fatalf("plugintest: timer %q not queued (queue full or plugin stopped)", name)
	}
}

// Udev sends a device event through the host's udev router, as if the
// kernel had sent it: the plugin sees it only if its [[trigger.udev]] rules
// match. props holds udev properties; SUBSYSTEM, DEVTYPE and DEVNAME among
// them fill the event's own fields.
func (h *Harness) Udev(action, devpath string, props map[string]string) {
	h.t.Helper()
	var u interface{ Inject(udev.UEvent) }
	for _, c := range h.caps {
		if x, ok := c.(interface{ Inject(udev.UEvent) }); ok {
			u = x
		}
	}
	if u == nil {
		h.t.Fatal("plugintest: this host has no udev capability")
	}
	ev := udev.UEvent{Action: action, DevPath: devpath, Props: map[string]string{}}
	for k, v := range props {
		switch strings.ToUpper(k) {
		case "SUBSYSTEM":
			ev.Subsystem = v
		case "DEVTYPE":
			ev.DevType = v
		case "DEVNAME":
			ev.DevName = v
		default:
			ev.Props[k] = v
		}
	}
	u.Inject(ev)
}

// Supervisor is the simulated device supervisor: its State shows reboots,
// services and locks, and Lock takes an update lock.
func (h *Harness) Supervisor() *sim.Server {
	for _, c := range h.caps {
		if s, ok := c.(*supervisor.Capability); ok && s.Sim() != nil {
			return s.Sim()
		}
	}
	h.t.Fatal("plugintest: no simulated supervisor")
	return nil
}

// DBus is the simulated system bus and its services (systemd1, login1,
// timedate1, hostname1), or nil if dbus-daemon is not installed.
func (h *Harness) DBus() *dbussim.Run {
	for _, c := range h.caps {
		if d, ok := c.(*dbus.DBus); ok {
			return d.Sim()
		}
	}
	return nil
}

// Close stops the host: the plugin's queue drains and it receives stop.
func (h *Harness) Close() {
	if err := h.run.Stop(); err != nil {
		h.t.Errorf("plugintest: host: %v", err)
	}
}

// Package solo runs one plugin alone on the simulated device, in this
// process, and acts on it as a test does: it sends events, seeds /data,
// overrides config, and waits for log lines and audit records, failing
// fast when the plugin traps or logs an error. airlock test (with a
// scenario file, script.go) and plugintest are built on it; airlock dev
// runs the same runtime (scenario.Solo) in the foreground.
package solo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/airlockhq/airlock/internal/simdevice/dbussim"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/builtin"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/logtest"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/build"
	"github.com/airlockhq/airlock/internal/mount"
	"github.com/airlockhq/airlock/internal/simdevice"
	"github.com/airlockhq/airlock/internal/simdevice/supsim"
)

// Options adjust a session. The zero value is the plugin as its directory
// holds it, alone on the simulated device.
type Options struct {
	// Config overrides or adds keys of the manifest's [config].
	Config map[string]string
	// Data seeds the plugin's /data: a path under /data, and its content.
	// The manifest must grant [storage] data = true.
	Data map[string]string
	// Environ is the environment the plugin's env.allow selects from
	// (nil: none).
	Environ []string
	// Sticks are extra USB sticks of the simulated device, absent until
	// PlugStick.
	Sticks []mount.Stick
	// Runtime is extra runtime.toml text, such as a [limits] table.
	Runtime string
	// Timeout bounds each wait (default 60 s).
	Timeout time.Duration
	// Log and Audit receive the host's log and audit records; nil makes
	// recorders (logtest.NewRecorder).
	Log, Audit          *logtest.Log
	Logger, AuditLogger *slog.Logger
}

// Session is one plugin running in a host on the simulated device.
type Session struct {
	Name     string // the plugin's name, from its manifest
	Host     *host.Host
	Log      *logtest.Log // everything the host and the plugin logged
	Audit    *logtest.Log // the gate's allow and deny records
	StateDir string

	manifest *manifest.Manifest
	caps     []capability.Capability
	tmp      string
	cancel   context.CancelFunc
	done     chan error
	closed   sync.Once
	err      error
}

// Start builds the plugin in dir when it is Go source whose module is
// missing or stale, and starts it in a host on the simulated device. It
// returns once the plugin has loaded, or the host's reason why it did not.
func Start(dir string, o Options) (s *Session, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	caps := builtin.CapabilitiesWith(mount.Options{Sticks: o.Sticks})
	def := manifest.DefaultRuntime()
	m, err := manifest.LoadManifest(filepath.Join(abs, "plugin.toml"), &def, host.Schema(caps))
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "airlock-solo-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	pluginDir := abs
	if len(o.Config) > 0 {
		if pluginDir, err = withConfig(abs, m, filepath.Join(tmp, "plugin"), o.Config); err != nil {
			return nil, err
		}
	}
	state := filepath.Join(tmp, "state")
	if len(o.Data) > 0 {
		if !m.Data {
			return nil, fmt.Errorf("a /data seed needs [storage] data = true in %s", m.File)
		}
		if err := seed(filepath.Join(state, "data", m.Name), o.Data); err != nil {
			return nil, err
		}
	}
	// The configuration is a value; its name places relative paths in
	// o.Runtime, and names it in messages.
	rt, err := manifest.ParseRuntime(filepath.Join(tmp, "runtime.toml"), []byte(simdevice.Solo(pluginDir, state, false, o.Runtime)), host.RuntimeSections(caps))
	if err != nil {
		return nil, err
	}
	if o.Log == nil {
		o.Log, o.Logger = logtest.NewRecorder()
	}
	if o.Audit == nil {
		o.Audit, o.AuditLogger = logtest.NewRecorder()
	}
	if o.Environ == nil {
		o.Environ = []string{}
	}
	for _, l := range []*logtest.Log{o.Log, o.Audit} {
		l.Timeout = o.Timeout
	}
	// A trap, a handler that failed or any ERROR line of this plugin
	// means that what a test waits for may never come.
	o.Log.FailFast = func(line string) bool {
		return (strings.HasPrefix(line, "ERROR ") || strings.HasPrefix(line, "WARN handler reported an error ")) &&
			strings.Contains(line, "plugin="+m.Name)
	}
	h, err := host.NewFromConfig(rt, builtin.Options(host.Options{Logger: o.Logger, Audit: o.AuditLogger, Capabilities: caps, Environ: o.Environ}))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s = &Session{Name: m.Name, Host: h, Log: o.Log, Audit: o.Audit, StateDir: state, manifest: m, caps: caps,
		tmp: tmp, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- h.Run(ctx) }()
	if err := o.Log.Await(1, "airlock running"); err != nil {
		s.Close()
		return nil, err
	}
	for d, err := range h.Failures() {
		s.Close()
		return nil, fmt.Errorf("plugin in %s did not load: %w", d, err)
	}
	return s, nil
}

// withConfig writes into dir a copy of the manifest with config merged
// into its [config], and of the module, so that the plugin runs with config
// as its manifest.
func withConfig(src string, m *manifest.Manifest, dir string, config map[string]string) (string, error) {
	if build.HasGoSource(src) && build.Stale(src, m.Wasm) {
		if err := build.Go(context.Background(), src, m.Wasm); err != nil {
			return "", err
		}
	}
	var doc map[string]any
	if _, err := toml.DecodeFile(m.File, &doc); err != nil {
		return "", err
	}
	merged := map[string]any{}
	if c, ok := doc["config"].(map[string]any); ok {
		merged = c
	}
	for k, v := range config {
		merged[k] = v
	}
	doc["config"] = merged
	doc["wasm"] = filepath.Base(m.Wasm)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	wasm, err := os.ReadFile(m.Wasm)
	if err != nil {
		return "", fmt.Errorf("plugin %q: %w (build it first)", m.Name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(m.Wasm)), wasm, 0o644); err != nil {
		return "", err
	}
	f, err := os.Create(filepath.Join(dir, "plugin.toml"))
	if err != nil {
		return "", err
	}
	defer f.Close()
	return dir, toml.NewEncoder(f).Encode(doc)
}

// seed writes files into a plugin's /data directory.
func seed(dir string, files map[string]string) error {
	for p, content := range files {
		clean := filepath.Clean("/" + p)
		if clean == "/" {
			return fmt.Errorf("/data seed: %q is not a file name", p)
		}
		out := filepath.Join(dir, clean)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(out, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Close stops the host (the queue drains and the plugin receives stop)
// and removes the session's files. It returns the host's error, and may be
// called more than once.
func (s *Session) Close() error {
	s.closed.Do(func() {
		s.cancel()
		select {
		case s.err = <-s.done:
		case <-time.After(time.Minute):
			s.err = errors.New("the host did not stop within a minute")
		}
		os.RemoveAll(s.tmp)
	})
	return s.err
}

// Trigger sends an event of kind (a trigger kind: timer, udev, dbus, ...)
// made from args (KEY=VALUE, as the kind's capability.SynthHelp names the
// keys) by its capability.Synthesizer. It goes through the source's own
// routing if it has one (udev: every plugin's rules), or else through the
// plugin's queue, marked as synthetic, as airlock trigger does. It is
// refused for a kind the manifest has no trigger for.
func (s *Session) Trigger(kind string, args ...string) error {
	return s.trigger(s.manifest, kind, args)
}

// trigger is Trigger for the plugin whose manifest is m, or for nil, an
// event of the simulated device itself, for whichever plugin listens.
func (s *Session) trigger(m *manifest.Manifest, kind string, args []string) error {
	sy, err := capability.FindSynth(s.Host.Synthesizers(), kind)
	if err != nil {
		return err
	}
	syn, err := sy.Synthesize(m, args)
	if err != nil {
		return err
	}
	if syn.Inject != nil {
		syn.Inject()
		return nil
	}
	if !s.Host.Deliver(s.Name, syn.Event) {
		return fmt.Errorf("%s not queued (queue full or plugin stopped)", syn.Desc)
	}
	return nil
}

// Supervisor is the simulated device supervisor: its State shows reboots,
// services and locks, its Events the requests it handled.
func (s *Session) Supervisor() *supsim.Server { return s.device().Supervisor() }

// DBus is the simulated system bus and its services, or nil if
// dbus-daemon is not installed.
func (s *Session) DBus() *dbussim.Run { return s.device().DBus() }

// device is the simulated device's module among the session's
// capabilities (nil if none: its accessors then return nil).
func (s *Session) device() *simdevice.Player {
	for _, c := range s.caps {
		if d, ok := c.(*simdevice.Player); ok {
			return d
		}
	}
	return nil
}

// DataFile reads a file of the plugin's /data.
func (s *Session) DataFile(path string) ([]byte, error) {
	return os.ReadFile(filepath.Join(s.StateDir, "data", s.Name, filepath.Clean("/"+path)))
}

func (s *Session) mount() (*mount.Mount, error) {
	for _, c := range s.caps {
		if m, ok := c.(*mount.Mount); ok {
			return m, nil
		}
	}
	return nil, errors.New("this host has no mount capability")
}

// PlugStick plugs in the stick labelled label (one of Options.Sticks) and
// sends its udev add event, as the kernel and udevd would.
func (s *Session) PlugStick(label string) error { return s.stick(label, true) }

// PullStick pulls out the stick labelled label and sends its udev remove
// event; the host unmounts it if a plugin had it mounted.
func (s *Session) PullStick(label string) error { return s.stick(label, false) }

func (s *Session) stick(label string, in bool) error {
	m, err := s.mount()
	if err != nil {
		return err
	}
	d, err := m.SimStick(label, in)
	if err != nil {
		return err
	}
	action := "remove"
	if in {
		action = "add"
	}
	maj, min, _ := strings.Cut(d.MajMin, ":")
	return s.trigger(nil, "udev", []string{"ACTION=" + action, "DEVPATH=" + d.DevPath,
		"SUBSYSTEM=block", "DEVTYPE=partition", "DEVNAME=" + d.Node, "MAJOR=" + maj, "MINOR=" + min,
		"ID_BUS=usb", "ID_FS_USAGE=filesystem", "ID_FS_TYPE=" + d.FSType, "ID_FS_LABEL=" + d.Label, "ID_FS_UUID=" + d.UUID,
		"ID_PART_ENTRY_NUMBER=1"})
}

// StickFile reads a file on the stick labelled label: what the plugin
// wrote there, mounted or not.
func (s *Session) StickFile(label, path string) ([]byte, error) {
	m, err := s.mount()
	if err != nil {
		return nil, err
	}
	return m.SimStickFile(label, path)
}

// TriggerArgs is Trigger with the arguments as `airlock trigger` takes
// them: positional, then KEY=VALUE.
func (s *Session) TriggerArgs(kind string, cli []string) error {
	sy, err := capability.FindSynth(s.Host.Synthesizers(), kind)
	if err != nil {
		return err
	}
	args, err := capability.SynthArgs(kind, sy.SynthHelp(), cli)
	if err != nil {
		return err
	}
	return s.Trigger(kind, args...)
}

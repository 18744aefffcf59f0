package manifest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

type primitive = toml.Primitive

// DefaultEventsPerSecond is [limits] events_per_second when runtime.toml
// does not set it: far above what a device's own sources produce for one
// plugin on average (a USB stick is a dozen uevents, a service's restart a
// few D-Bus signals), with bursts of ten seconds' worth (coldplug, a hub),
// and far below what a plugin feeding its own triggers reaches (thousands
// a second).
const DefaultEventsPerSecond = 100

// minTimerEvery is the shortest timer interval, so that a typo such as
// every = "1ns" cannot turn a plugin into a busy loop.
const minTimerEvery = 100 * time.Millisecond

// Restart is the backoff policy after a trap, a timeout or an exit.
type Restart struct {
	Initial Duration `toml:"initial"` // first delay
	Max     Duration `toml:"max"`     // the delay doubles up to this
	// CrashLoop is the number of crashes within Window after which the
	// plugin is reported as crash-looping and waits Max between tries.
	CrashLoop int      `toml:"crash_loop"`
	Window    Duration `toml:"window"`
}

// Log configures the host's own logs and its audit stream.
type Log struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // text or json
	// Audit is where allow/deny records go: "stderr", "stdout", "off" or a
	// file path (appended to), relative to runtime.toml's directory like
	// state_dir; Runtime.Log.Audit holds it absolute.
	Audit string `toml:"audit"`
	// AuditMaxSize is the audit file's size at which it is rotated (0:
	// never), and AuditKeep how many rotated files are kept beside it.
	AuditMaxSize Size `toml:"audit_max_size"`
	AuditKeep    int  `toml:"audit_keep"`
	// PluginRate bounds each plugin's log lines (log calls and stdout and
	// stderr lines) per second, with bursts of five seconds' worth; the
	// lines above it are counted and reported once a second. 0 means no
	// limit.
	PluginRate int `toml:"plugin_rate"`
}

// Storage bounds each plugin's /data ([storage] in runtime.toml).
type Storage struct {
	// Quota is the default bytes of a plugin's /data, and QuotaCeiling
	// the most a manifest's [storage] quota may ask for.
	Quota        Size `toml:"quota"`
	QuotaCeiling Size `toml:"quota_ceiling"`
	// Files bounds the files and directories in a plugin's /data.
	Files int `toml:"files"`
}

// Admin configures the local admin socket that `airlock status` and
// `airlock trigger` use.
type Admin struct {
	// Socket is the Unix socket's path (relative to runtime.toml's
	// directory), or "off". Default: admin.sock in state_dir.
	Socket string `toml:"socket"`
}

// Metrics configures the optional Prometheus endpoint.
type Metrics struct {
	// Listen is the TCP address of the /metrics endpoint, such as
	// "127.0.0.1:9464", or "" / "off" for none (the default).
	Listen string `toml:"listen"`
}

// Runtime is a validated runtime.toml.
type Runtime struct {
	File     string
	Dir      string
	Plugins  []string // absolute plugin directories, searched one level deep
	StateDir string   // absolute; holds /data dirs and the compilation cache
	Device   string   // "sim" (the embedded simulated device) or "real"
	// Build is "auto" to compile a Go plugin whose module is missing or
	// older than its source (development), or "never" (devices).
	Build   string
	Limits  Limits // defaults for every plugin
	Ceiling Limits // the most a manifest may ask for
	Restart Restart
	Log     Log
	Storage Storage
	// Reload makes the host watch its plugin directories and reload a
	// plugin whose manifest or module changes.
	Reload  bool
	Admin   Admin   // Admin.Socket is absolute, or "off"
	Metrics Metrics // Metrics.Listen is "" when off
	// Env is [env]: more host secrets, and the secret-looking names
	// plugins may read.
	Env Env
	// Sections holds capability sections' decoded values by name.
	Sections map[string]any
	// Trust is [trust]: vendor keys, their ceilings, developer mode.
	Trust Trust
	// Bundles are the [[bundle]] entries: signed bundles pulled from an
	// OCI registry into StateDir.
	Bundles []BundleRef
	// Registry is [registry]: credentials, plain HTTP, pull retries.
	Registry Registry
	// Overlay is the absolute path of the device's own additions to this
	// file (overlay.go), or "" for none; OverlayApplied says one was read.
	Overlay        string
	OverlayApplied bool
	// Timezone is the IANA zone cron timers' wall-clock times are in
	// ("Europe/Berlin", "UTC"), or "" for the host's local zone (TZ, else
	// /etc/localtime, else UTC). Location is it, loaded.
	Timezone string
	Location *time.Location `json:"-"`
}

type runtimeTop struct {
	Plugins  []string `toml:"plugins"`
	StateDir string   `toml:"state_dir"`
	Device   string   `toml:"device"`
	Build    string   `toml:"build"`
	Limits   Limits   `toml:"limits"`
	Ceiling  Limits   `toml:"ceiling"`
	Restart  Restart  `toml:"restart"`
	Log      Log      `toml:"log"`
	Storage  Storage  `toml:"storage"`
	Reload   bool     `toml:"reload"`
	Admin    Admin    `toml:"admin"`
	Metrics  Metrics  `toml:"metrics"`
	Env      Env      `toml:"env"`
	// Decoded by decodeTrust; listed here for the known keys.
	Trust    trustTOML   `toml:"trust"`
	Bundle   []BundleRef `toml:"bundle"`
	Registry Registry    `toml:"registry"`
	Overlay  string      `toml:"overlay"`
	Timezone string      `toml:"timezone"`
}

// DefaultAdminSocket is the admin socket's file name in state_dir.
const DefaultAdminSocket = "admin.sock"

// DefaultRuntime is what runtime.toml's absent keys mean.
func DefaultRuntime() Runtime {
	return Runtime{
		Plugins:  []string{"plugins"},
		StateDir: ".airlock",
		Device:   "sim",
		Build:    "never",
		Limits:   Limits{Memory: 64 << 20, HandlerTimeout: Duration(5 * time.Second), Queue: 64, Overflow: DropNewest, EventsPerSecond: DefaultEventsPerSecond},
		Ceiling:  Limits{Memory: 512 << 20, HandlerTimeout: Duration(60 * time.Second), Queue: 4096, EventsPerSecond: 10000},
		Restart:  Restart{Initial: Duration(100 * time.Millisecond), Max: Duration(30 * time.Second), CrashLoop: 5, Window: Duration(time.Minute)},
		Log:      Log{Level: "info", Format: "text", Audit: "stderr", PluginRate: 200, AuditMaxSize: 8 << 20, AuditKeep: 4},
		Storage:  Storage{Quota: 64 << 20, QuotaCeiling: 1 << 30, Files: 10000},
		Admin:    Admin{Socket: DefaultAdminSocket},
		Registry: defaultRegistry(),
	}
}

// LoadRuntime reads and validates a runtime.toml. sections are the
// capability-owned tables it may hold ([supervisor], [dbus], ...).
func LoadRuntime(path string, sections map[string]SectionFunc) (*Runtime, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read runtime config: %w (pass another with --config)", err)
	}
	rt, err := ParseRuntime(path, data, sections)
	if err != nil {
		return nil, err
	}
	if err := applyOverlay(rt, sections); err != nil {
		return nil, err
	}
	return rt, nil
}

// ParseRuntime validates data as the runtime.toml at path.
func ParseRuntime(path string, data []byte, sections map[string]SectionFunc) (*Runtime, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	d, err := parseDoc(path, data)
	if err != nil {
		return nil, err
	}
	def := DefaultRuntime()
	top := runtimeTop{Plugins: def.Plugins, StateDir: def.StateDir, Device: def.Device, Build: def.Build, Limits: def.Limits, Ceiling: def.Ceiling, Restart: def.Restart, Log: def.Log, Storage: def.Storage, Admin: Admin{}, Metrics: def.Metrics}
	known := map[string][]string{}
	collectKeys("", reflect.TypeOf(top), known)
	for _, k := range []string{"plugins", "state_dir", "device", "build", "limits", "ceiling", "restart", "log", "storage", "reload", "admin", "metrics", "overlay", "timezone", "env"} {
		d.decode(k, fieldOf(&top, k))
	}
	rt := &Runtime{File: path, Dir: filepath.Dir(abs), Sections: map[string]any{}}
	for k, p := range d.top {
		if fn, ok := sections[k]; ok && !strings.HasPrefix(k, "ceiling:") {
			if v, err := fn(Section{d: d, key: k, prim: p, known: known}); err == nil && v != nil {
				rt.Sections[k] = v
			}
		}
	}
	for _, k := range keysOf(sections) {
		if !strings.HasPrefix(k, "ceiling:") {
			known[""] = append(known[""], k)
		}
	}
	if !d.has("plugins") && d.has("bundle") {
		top.Plugins = nil // a device that runs only [[bundle]]s needs no plugin directory
	}
	for _, p := range top.Plugins {
		rt.Plugins = append(rt.Plugins, rt.resolve(p))
	}
	decodeTrust(d, rt, sections, known)
	decodeRegistry(d, rt)
	d.unknown(known)

	rt.StateDir = rt.resolve(top.StateDir)
	rt.Device, rt.Build, rt.Limits, rt.Ceiling, rt.Restart, rt.Log = top.Device, top.Build, top.Limits, top.Ceiling, top.Restart, top.Log
	rt.Reload, rt.Metrics, rt.Storage = top.Reload, top.Metrics, top.Storage
	if top.Overlay != "" {
		rt.Overlay = rt.resolve(top.Overlay)
	}
	rt.Timezone, rt.Location = top.Timezone, loadZone(d, top.Timezone)
	rt.Env = top.Env
	for key, names := range map[string][]string{"env.secrets": rt.Env.Secrets, "env.pass": rt.Env.Pass} {
		for i, e := range names {
			if !envNameRe.MatchString(e) || strings.HasSuffix(e, "*") {
				d.errorf(key, "write whole variable names such as DB_PASS, not patterns", "entry %d: bad variable name %q", i, e)
			}
		}
	}
	switch rt.Log.Audit {
	case "stderr", "stdout", "off":
	case "":
		rt.Log.Audit = "stderr"
	default:
		rt.Log.Audit = rt.resolve(rt.Log.Audit)
	}
	switch top.Admin.Socket {
	case "":
		rt.Admin.Socket = filepath.Join(rt.StateDir, DefaultAdminSocket)
	case "off":
		rt.Admin.Socket = "off"
	default:
		rt.Admin.Socket = rt.resolve(top.Admin.Socket)
		// A Unix socket's path is at most 107 bytes (sun_path). The
		// default one is checked when it is opened, so that a deep
		// state_dir costs only the admin socket, with a logged error.
		if len(rt.Admin.Socket) > 107 {
			d.errorf("admin.socket", `use a shorter path, or "off"`, "path %s is %d bytes, above the 107 a Unix socket allows", rt.Admin.Socket, len(rt.Admin.Socket))
		}
	}
	if rt.Metrics.Listen == "off" {
		rt.Metrics.Listen = ""
	}
	validateRuntime(d, rt)
	if err := d.errs.err(); err != nil {
		return nil, err
	}
	return rt, nil
}

func validateRuntime(d *doc, rt *Runtime) {
	if len(rt.Plugins) == 0 && len(rt.Bundles) == 0 {
		d.errorf("plugins", `name at least one directory, such as plugins = ["plugins"], or a [[bundle]]`, "no plugin directories")
	}
	if rt.Device != "sim" && rt.Device != "real" {
		d.errorf("device", `use "sim" for the embedded simulated device or "real" on a device`, "unknown device %q", rt.Device)
	}
	if rt.Build != "auto" && rt.Build != "never" {
		d.errorf("build", `use "auto" to build Go plugins from source when needed, or "never"`, "unknown build mode %q", rt.Build)
	}
	l, c := rt.Limits, rt.Ceiling
	if l.Memory > c.Memory {
		d.errorf("limits.memory", "lower the default or raise [ceiling] memory", "default %s is above the ceiling %s", l.Memory, c.Memory)
	}
	if l.HandlerTimeout > c.HandlerTimeout {
		d.errorf("limits.handler_timeout", "lower the default or raise [ceiling] handler_timeout", "default %s is above the ceiling %s", l.HandlerTimeout, c.HandlerTimeout)
	}
	if l.Queue < 1 || l.Queue > c.Queue {
		d.errorf("limits.queue", "use a number from 1 up to [ceiling] queue", "default %d is out of range", l.Queue)
	}
	if l.Overflow != DropNewest && l.Overflow != DropOldest {
		d.errorf("limits.overflow", `use "drop_newest" or "drop_oldest"`, "unknown overflow policy %q", l.Overflow)
	}
	if l.EventsPerSecond < 1 || l.EventsPerSecond > c.EventsPerSecond {
		d.errorf("limits.events_per_second", "use a number from 1 up to [ceiling] events_per_second", "default %d is out of range", l.EventsPerSecond)
	}
	if c.Overflow != "" {
		d.errorf("ceiling.overflow", "overflow is a policy, not a limit; set it in [limits]", "has no ceiling")
	}
	if rt.Restart.Initial > rt.Restart.Max {
		d.errorf("restart.initial", "make it at most restart.max", "initial delay %s is above max %s", rt.Restart.Initial, rt.Restart.Max)
	}
	if rt.Restart.CrashLoop < 1 {
		d.errorf("restart.crash_loop", "use a number from 1 up", "crash_loop = %d", rt.Restart.CrashLoop)
	}
	switch rt.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		d.errorf("log.level", `use "debug", "info", "warn" or "error"`, "unknown level %q", rt.Log.Level)
	}
	if rt.Log.Format != "text" && rt.Log.Format != "json" {
		d.errorf("log.format", `use "text" or "json"`, "unknown format %q", rt.Log.Format)
	}
	if rt.Log.PluginRate < 0 {
		d.errorf("log.plugin_rate", "use lines per second, or 0 for no limit", "plugin_rate = %d", rt.Log.PluginRate)
	}
	if rt.Log.AuditKeep < 1 {
		d.errorf("log.audit_keep", "keep at least 1 rotated file", "audit_keep = %d", rt.Log.AuditKeep)
	}
	if n := rt.Log.AuditMaxSize; n != 0 && n < MinAuditSize {
		d.errorf("log.audit_max_size", "use "+MinAuditSize.String()+" or more, or 0 to never rotate", "%s is too small", n)
	}
	if st := rt.Storage; st.Quota > st.QuotaCeiling {
		d.errorf("storage.quota", "lower the default or raise storage.quota_ceiling", "default %s is above the ceiling %s", st.Quota, st.QuotaCeiling)
	}
	if rt.Storage.Quota < MinQuota {
		d.errorf("storage.quota", "use "+MinQuota.String()+" or more", "%s is too small", rt.Storage.Quota)
	}
	if rt.Storage.Files < 1 {
		d.errorf("storage.files", "use a number from 1 up", "files = %d", rt.Storage.Files)
	}
	if l := rt.Metrics.Listen; l != "" {
		host, port, err := net.SplitHostPort(l)
		n, perr := strconv.Atoi(port)
		switch {
		case err != nil:
			d.errorf("metrics.listen", `write host:port, such as "127.0.0.1:9464", or "off"`, "bad address %q: %v", l, err)
		case perr != nil || n < 0 || n > 65535:
			d.errorf("metrics.listen", `write host:port, such as "127.0.0.1:9464", or "off"`, "bad port %q", port)
		case host != "" && net.ParseIP(host) == nil && host != "localhost":
			d.errorf("metrics.listen", `use an IP address (such as 127.0.0.1) or localhost`, "host %q is not an IP address", host)
		}
	}
}

// loadZone loads timezone's zone, "" meaning the host's local one.
func loadZone(d *doc, name string) *time.Location {
	if name == "" {
		return time.Local
	}
	loc, err := time.LoadLocation(name)
	if err != nil || name == "Local" {
		d.errorf("timezone", `use an IANA zone name such as "Europe/Berlin" or "UTC", or leave it out for the host's local zone`, "unknown time zone %q", name)
		return time.Local
	}
	return loc
}

// MinAuditSize is the smallest rotation size: a few records' worth would
// rotate on every write.
const MinAuditSize Size = 64 << 10

// resolve makes p absolute relative to the runtime.toml's directory.
func (rt *Runtime) resolve(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(rt.Dir, p)
}

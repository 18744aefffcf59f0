// Package manifest reads plugin.toml and runtime.toml into typed, validated
// Go values. Decoding is strict: an unknown key, a wrong type, a bad size or
// duration is an Error that names the file, line and key and says how to fix
// it. Capabilities decode their own sections through Section.
package manifest

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/airlockhq/airlock/internal/cron"
)

// Limits bound one plugin instance. The runtime gives defaults and ceilings;
// a manifest may lower a limit, and raise it only up to the ceiling.
type Limits struct {
	Memory         Size     `toml:"memory"`          // linear memory, rounded up to 64 KiB pages
	HandlerTimeout Duration `toml:"handler_timeout"` // per event, including time in host calls
	Queue          int      `toml:"queue"`           // pending events before overflow
	// Overflow says which event is lost when the queue is full:
	// "drop_newest" (the default) or "drop_oldest". Either way the plugin
	// receives a "dropped" event with the count.
	Overflow string `toml:"overflow"`
	// EventsPerSecond bounds the events queued for the plugin, on
	// average, with bursts of ten seconds' worth: a plugin that keeps
	// itself busy (it changes a property on every change signal) or a
	// storm it subscribed to cannot take more. Events over it are counted
	// as dropped, reason "rate limit".
	EventsPerSecond int `toml:"events_per_second"`
}

// Overflow policies.
const (
	DropNewest = "drop_newest"
	DropOldest = "drop_oldest"
)

// Timer is a [[trigger.timer]] entry: either every (an interval) or cron.
type Timer struct {
	Name  string   `toml:"name"`
	Every Duration `toml:"every"`
	Cron  string   `toml:"cron"`
	// Location is the zone of cron's wall-clock times: runtime.toml's
	// timezone, not the plugin's to choose.
	Location *time.Location `toml:"-" json:"-"`
}

// Manifest is a validated plugin.toml.
type Manifest struct {
	File string // path of plugin.toml
	Dir  string // directory of plugin.toml; relative paths resolve here
	// Name is the plugin's identity: in status, metrics, logs, the audit
	// and admin requests. It is plugin.toml's name for a local plugin and
	// "vendor/name" for a signed bundle's (see Namespace), so that no
	// bundle can take a local plugin's name, or another vendor's.
	Name string
	// Vendor is the trusted vendor whose key signed the bundle, as
	// runtime.toml's [[trust.vendor]] names it, or "" for a local plugin.
	Vendor      string `json:",omitempty"`
	Version     string
	Description string
	Wasm        string // absolute path of the module
	Limits      Limits // resolved: defaults applied, ceilings checked
	EnvAllow    []string
	Config      map[string]string
	Data        bool // a private persistent /data directory
	// Tmp is the size of a private scratch /tmp (a tmpfs where the host
	// may mount one; see internal/mount), or 0 for none. Omitted from JSON
	// when 0, so that manifests without it read as before.
	Tmp Size `json:",omitempty"`
	// Quota is the size bound of /data (resolved against the runtime's
	// [storage] default and ceiling), 0 when Data is false.
	Quota  Size `json:",omitempty"`
	Timers []Timer
	// Grants holds each capability's decoded grant, by capability name.
	// A capability that the manifest does not mention has no entry: denied.
	Grants map[string]any
	// Triggers holds each capability trigger's decoded rules, by kind
	// ("udev", "dbus"). Timers are built in and live in Timers.
	Triggers map[string]any
}

// Namespace makes m a vendor's plugin: its identity becomes "vendor/name".
// vendor is the operator's name for the key that signed it, never what the
// bundle says of itself.
func (m *Manifest) Namespace(vendor string) {
	m.Vendor, m.Name = vendor, vendor+"/"+m.Name
}

// StateName is the one path component that holds the plugin's state under
// state_dir (its /data, media root and /tmp): the name for a local plugin,
// "vendor@name" for a vendor's. Neither a plugin name nor a vendor name
// can hold '@' or '/', so no two plugins share one, and none is "." or "..".
func (m *Manifest) StateName() string { return StateName(m.Name) }

// StateName is Manifest.StateName for the plugin known as id.
func StateName(id string) string { return strings.Replace(id, "/", "@", 1) }

// SectionFunc decodes one capability-owned section and returns its value.
type SectionFunc func(Section) (any, error)

// Schema tells the parser which sections capabilities own, besides the
// built-in ones.
type Schema struct {
	Grants   map[string]SectionFunc // top-level tables: "supervisor", "dbus", ...
	Triggers map[string]SectionFunc // [[trigger.X]] tables other than timer
}

var (
	nameRe    = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*\*?$`)
)

type manifestTop struct {
	Name        string `toml:"name"`
	Version     string `toml:"version"`
	Description string `toml:"description"`
	Wasm        string `toml:"wasm"`
	Limits      Limits `toml:"limits"`
	Env         struct {
		Allow []string `toml:"allow"`
	} `toml:"env"`
	Config  map[string]string `toml:"config"`
	Storage struct {
		Data  bool `toml:"data"`
		Tmp   Size `toml:"tmp"`
		Quota Size `toml:"quota"`
	} `toml:"storage"`
	Trigger struct {
		Timer []Timer `toml:"timer"`
	} `toml:"trigger"`
}

// LoadManifest reads and validates the plugin.toml at path against the
// runtime's limits.
func LoadManifest(path string, rt *Runtime, schema Schema) (*Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	return ParseManifest(path, data, rt, schema)
}

// ParseManifest validates data as the plugin.toml at path. All problems are
// reported together, as Errors, in line order.
func ParseManifest(path string, data []byte, rt *Runtime, schema Schema) (*Manifest, error) {
	d, err := parseDoc(path, data)
	if err != nil {
		return nil, err
	}
	known := map[string][]string{}
	var top manifestTop
	collectKeys("", reflect.TypeOf(top), known)
	m := &Manifest{File: path, Dir: filepath.Dir(path), Grants: map[string]any{}, Triggers: map[string]any{}}
	for _, k := range []string{"name", "version", "description", "wasm", "limits", "env", "config", "storage"} {
		d.decode(k, fieldOf(&top, k))
	}
	// [trigger] mixes built-in timers with capability triggers.
	if p, ok := d.top["trigger"]; ok {
		var trig map[string]primitive
		if d.decodePrim("trigger", p, &trig) {
			for kind, tp := range trig {
				key := "trigger." + kind
				switch fn, ok := schema.Triggers[kind]; {
				case kind == "timer":
					d.decodePrim(key, tp, &top.Trigger.Timer)
				case ok:
					if v, err := fn(Section{d: d, key: key, prim: tp, known: known}); err == nil && v != nil {
						m.Triggers[kind] = v
					}
				default:
					d.errorf(key, hintFor(kind, append(keysOf(schema.Triggers), "timer")), "unknown trigger kind %q", kind)
				}
			}
		}
	}
	for k, p := range d.top {
		fn, ok := schema.Grants[k]
		if !ok || k == "trigger" {
			continue
		}
		if v, err := fn(Section{d: d, key: k, prim: p, known: known}); err == nil && v != nil {
			m.Grants[k] = v
		}
	}
	known[""] = append(known[""], keysOf(schema.Grants)...)
	known["trigger"] = append(known["trigger"], keysOf(schema.Triggers)...)
	d.unknown(known)

	m.Name, m.Version, m.Description = top.Name, top.Version, top.Description
	m.EnvAllow, m.Config, m.Data, m.Timers = top.Env.Allow, top.Config, top.Storage.Data, top.Trigger.Timer
	for i := range m.Timers {
		m.Timers[i].Location = rt.Location
	}
	m.Tmp = top.Storage.Tmp
	validateManifest(d, m, &top, rt)
	if err := d.errs.err(); err != nil {
		return nil, err
	}
	return m, nil
}

func validateManifest(d *doc, m *Manifest, top *manifestTop, rt *Runtime) {
	switch {
	case !d.has("name"):
		d.errorf("name", `add a line such as name = "my-plugin"`, "missing")
	case !nameRe.MatchString(m.Name):
		d.errorf("name", "use lower-case letters, digits and '-', starting with a letter, at most 63 characters", "bad plugin name %q", m.Name)
	}
	if top.Wasm == "" {
		top.Wasm = m.Name + ".wasm"
	}
	if filepath.IsAbs(top.Wasm) || strings.Contains(top.Wasm, "..") {
		d.errorf("wasm", "name a file inside the plugin's directory", "wasm path %q leaves the plugin directory", top.Wasm)
	}
	m.Wasm = filepath.Join(m.Dir, top.Wasm)
	for i, e := range m.EnvAllow {
		switch {
		case !envNameRe.MatchString(e):
			d.errorf("env.allow", "write a variable name such as BALENA_DEVICE_UUID, or a prefix ending in *", "entry %d: bad variable name %q", i, e)
		default:
			checkEnvAllow(d, i, e, rt)
		}
	}
	if len(m.Timers) > MaxTimers {
		d.errorf("trigger.timer", fmt.Sprintf("use at most %d timers; one timer can serve several jobs (check the time in its handler)", MaxTimers), "%d timers", len(m.Timers))
	}
	names := map[string]bool{}
	for i, t := range m.Timers {
		key := fmt.Sprintf("trigger.timer[%d]", i)
		if t.Name == "" {
			t.Name = fmt.Sprintf("timer%d", i+1)
			m.Timers[i].Name = t.Name
		}
		if names[t.Name] {
			d.errorf(key+".name", "give each timer its own name", "duplicate timer name %q", t.Name)
		}
		names[t.Name] = true
		switch {
		case t.Every == 0 && t.Cron == "":
			d.errorf(key, `add every = "5m" or cron = "*/5 * * * *"`, "neither every nor cron is set")
		case t.Every != 0 && t.Cron != "":
			d.errorf(key, "keep one of them", "both every and cron are set")
		case t.Cron != "":
			if _, err := cron.Parse(t.Cron); err != nil {
				d.errorf(key+".cron", "write five fields: minute hour day-of-month month day-of-week", "%v", err)
			}
		case t.Every.D() < minTimerEvery:
			d.errorf(key+".every", "use an interval of "+minTimerEvery.String()+" or more", "%s is too short", t.Every)
		}
	}
	if m.Tmp != 0 && (m.Tmp < MinTmp || m.Tmp > MaxTmp) {
		d.errorf("storage.tmp", fmt.Sprintf("ask for %s to %s: a tmpfs is RAM; keep larger files in /data", MinTmp, MaxTmp), "%s is out of range", m.Tmp)
	}
	m.Limits = resolveLimits(d, top.Limits, rt)
	m.Quota = resolveQuota(d, m.Data, top.Storage.Quota, rt)
}

// MinQuota is the smallest /data quota: below it a plugin could not keep
// even a small state file (files and directories are charged in 4 KiB
// blocks).
const MinQuota Size = 64 << 10

// resolveQuota applies the runtime's [storage] quota default and ceiling.
func resolveQuota(d *doc, data bool, want Size, rt *Runtime) Size {
	switch {
	case want != 0 && !data:
		d.errorf("storage.quota", "add data = true to [storage], or remove quota", "a quota without /data")
		return 0
	case !data:
		return 0
	case want == 0:
		return rt.Storage.Quota
	case want > rt.Storage.QuotaCeiling:
		d.errorf("storage.quota", "ask for at most "+rt.Storage.QuotaCeiling.String()+", or raise [storage] quota_ceiling in "+filepath.Base(rt.File), "%s is above the runtime's ceiling of %s", want, rt.Storage.QuotaCeiling)
	case want < MinQuota:
		d.errorf("storage.quota", "ask for "+MinQuota.String()+" or more", "%s is too small", want)
	}
	return want
}

// MaxTimers bounds a plugin's [[trigger.timer]] entries: each is a
// goroutine and a kernel timer in the host, and events_per_second bounds
// only what reaches the queue, not the wake-ups that produce it.
const MaxTimers = 64

// Bounds of [storage] tmp. Below a few pages a tmpfs is useless; above
// 1 GiB it could take most of a device's RAM (tmpfs pages are memory).
const (
	MinTmp Size = 64 << 10
	MaxTmp Size = 1 << 30
)

// resolveLimits applies the runtime's defaults to what the manifest leaves
// out, and refuses values above the runtime's ceiling.
func resolveLimits(d *doc, want Limits, rt *Runtime) Limits {
	l := rt.Limits
	ceil := rt.Ceiling
	if want.Memory != 0 {
		if want.Memory > ceil.Memory {
			d.errorf("limits.memory", "ask for at most "+ceil.Memory.String()+", or raise [ceiling] memory in "+filepath.Base(rt.File), "%s is above the runtime's ceiling of %s", want.Memory, ceil.Memory)
		}
		l.Memory = want.Memory
	}
	if want.HandlerTimeout != 0 {
		if want.HandlerTimeout > ceil.HandlerTimeout {
			d.errorf("limits.handler_timeout", "ask for at most "+ceil.HandlerTimeout.String()+", or raise [ceiling] handler_timeout in "+filepath.Base(rt.File), "%s is above the runtime's ceiling of %s", want.HandlerTimeout, ceil.HandlerTimeout)
		}
		l.HandlerTimeout = want.HandlerTimeout
	}
	countLimit(d, rt, "queue", want.Queue, ceil.Queue, &l.Queue)
	countLimit(d, rt, "events_per_second", want.EventsPerSecond, ceil.EventsPerSecond, &l.EventsPerSecond)
	if want.Overflow != "" {
		if want.Overflow != DropNewest && want.Overflow != DropOldest {
			d.errorf("limits.overflow", `use "drop_newest" or "drop_oldest"`, "unknown overflow policy %q", want.Overflow)
		}
		l.Overflow = want.Overflow
	}
	return l
}

// countLimit sets *l to the manifest's [limits] key, if it sets one: a
// count from 1 up to the runtime's ceiling.
func countLimit(d *doc, rt *Runtime, key string, want, ceil int, l *int) {
	if !d.md.IsDefined("limits", key) || d.reported["limits."+key] {
		return
	}
	switch {
	case want < 1:
		d.errorf("limits."+key, "use a number from 1 up", "%s = %d is too small", key, want)
	case want > ceil:
		d.errorf("limits."+key, fmt.Sprintf("ask for at most %d, or raise [ceiling] %s in %s", ceil, key, filepath.Base(rt.File)), "%d is above the runtime's ceiling of %d", want, ceil)
	}
	*l = want
}

// fieldOf returns a pointer to the field of top tagged key.
func fieldOf(top any, key string) any {
	v := reflect.ValueOf(top).Elem()
	for i := 0; i < v.NumField(); i++ {
		if name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("toml"), ","); name == key {
			return v.Field(i).Addr().Interface()
		}
	}
	panic("manifest: no field for " + key)
}

func keysOf[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// hintFor suggests the known name closest to a misspelt k, or lists them.
func hintFor(k string, known []string) string {
	if s := Suggest(k, known); s != "" {
		return fmt.Sprintf("did you mean %q?", s)
	}
	return "expected one of: " + strings.Join(known, ", ")
}

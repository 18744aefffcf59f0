package solo

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/builtin"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/internal/mount"
)

// Script is a scenario file: what airlock test plays against a plugin.
//
//	description = "counts ticks from a seeded count"
//	timeout = "30s"                 # each step's bound (default 60s)
//	[config]                        # overrides plugin.toml's [config]
//	greeting = "howdy"
//	[data]                          # /data seed: path = content
//	"count.txt" = "41"
//	[env]                           # what env.allow selects from
//	BALENA_DEVICE_TYPE = "rpi4"
//	[[stick]]                       # a USB stick, absent until plugged
//	label = "LOGS"                  # fstype (vfat), uuid: optional
//	files = { "hello.txt" = "hi" }
//
//	[[step]]
//	log = "howdy from my-plugin"    # wait for a log line with all of these
//	[[step]]
//	timer = "tick"                  # send an event: timer, udev, dbus, ...
//	[[step]]
//	data = { path = "count.txt", contains = "42" }
//	[[step]]
//	plug = "LOGS"                   # udev add; pull = "LOGS" removes it
//	[[step]]
//	stick = { label = "LOGS", path = "out.txt", contains = "42" }
//
// Steps run in order; a step that waits fails at the timeout, or at once
// when the plugin traps or logs an error it was not waiting for.
type Script struct {
	File        string            `toml:"-"`
	Description string            `toml:"description"`
	Timeout     string            `toml:"timeout"`
	Config      map[string]string `toml:"config"`
	Data        map[string]string `toml:"data"`
	Env         map[string]string `toml:"env"`
	Sticks      []Stick           `toml:"stick"`
	Steps       []Step            `toml:"-"` // read by decodeStep
}

// Stick is a USB stick of the simulated device (mount.Stick).
type Stick struct {
	Label  string            `toml:"label"`
	FSType string            `toml:"fstype"`
	UUID   string            `toml:"uuid"`
	Files  map[string]string `toml:"files"`
}

// Step is one thing to do or to wait for: exactly one field is set.
type Step struct {
	// An event to send: Kind is a trigger kind (timer, udev, dbus, ...),
	// Args its KEY=VALUE arguments. In the file, the kind is the key:
	// timer = "tick", udev = {action, devpath, props}, dbus = {path,
	// interface, member}; its capability's synthesizer reads the value.
	Kind string
	Args []string
	Plug string // plug in the [[stick]] with this label
	Pull string // pull it out
	// Outcomes to wait for.
	Log        Parts     // a log line (host or plugin) with all of these
	Audit      Parts     // an audit record with all of these
	Supervisor string    // a request the simulated supervisor handled: "POST /v1/reboot"
	DataFile   *DataFile // data: a file in /data that holds a text
	StickFile  *DataFile // stick: a file on a stick that holds a text
}

// fields are the step's keys other than events, and where each goes.
func (st *Step) fields() map[string]any {
	return map[string]any{"plug": &st.Plug, "pull": &st.Pull, "log": &st.Log, "audit": &st.Audit,
		"supervisor": &st.Supervisor, "data": &st.DataFile, "stick": &st.StickFile}
}

// DataFile is a file the plugin writes in /data.
type DataFile struct {
	Label    string `toml:"label"` // the stick's, for a stick file
	Path     string `toml:"path"`
	Contains string `toml:"contains"`
}

// Parts are the texts a line must hold: one string or a list.
type Parts []string

// UnmarshalTOML takes a string or an array of strings.
func (p *Parts) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		*p = Parts{v}
	case []any:
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				return fmt.Errorf("want strings, have %v", x)
			}
			*p = append(*p, s)
		}
	default:
		return fmt.Errorf("want a string or a list of strings, have %v", v)
	}
	return nil
}

// LoadScript reads and checks a scenario file.
func LoadScript(path string) (*Script, error) {
	var file struct {
		Script
		Steps []map[string]toml.Primitive `toml:"step"`
	}
	md, err := toml.DecodeFile(path, &file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s := file.Script
	s.File = path
	synths := host.Synthesizers(builtin.Capabilities())
	for i, raw := range file.Steps {
		st, err := decodeStep(md, raw, synths, i+1)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if n := len(raw); n != 1 {
			return nil, fmt.Errorf("%s: step %d has %d actions; give each [[step]] exactly one of %s, plug, pull, log, audit, supervisor, data, stick", path, i+1, n, strings.Join(capability.SynthKinds(synths), ", "))
		}
		s.Steps = append(s.Steps, st)
	}
	for _, k := range md.Undecoded() {
		// An event's value is its synthesizer's to read (SynthTable).
		if len(k) > 2 && k[0] == "step" && slices.Contains(capability.SynthKinds(synths), k[1]) {
			continue
		}
		return nil, fmt.Errorf("%s: unknown key %s (a scenario has description, timeout, [config], [data], [env], [[stick]] and [[step]])", path, k)
	}
	if _, err := s.timeout(); err != nil {
		return nil, err
	}
	labels := map[string]bool{}
	for i, st := range s.Sticks {
		if st.Label == "" || labels[st.Label] {
			return nil, fmt.Errorf("%s: [[stick]] %d needs a label of its own (label = \"LOGS\"): steps name sticks by label", path, i+1)
		}
		labels[st.Label] = true
	}
	for i, st := range s.Steps {
		for _, l := range []string{st.Plug, st.Pull, st.stickLabel()} {
			if l != "" && !labels[l] {
				return nil, fmt.Errorf("%s: step %d names stick %q, which no [[stick]] table describes", path, i+1, l)
			}
		}
	}
	if len(s.Steps) == 0 {
		return nil, fmt.Errorf("%s: no [[step]]: add the events to send and the outcomes to wait for", path)
	}
	return &s, nil
}

func (s *Script) timeout() (time.Duration, error) {
	if s.Timeout == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s.Timeout)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s: timeout = %q: write a duration such as \"30s\"", s.File, s.Timeout)
	}
	return d, nil
}

// decodeStep reads one [[step]]: a key of fields, or an event kind of one
// of synths, whose arguments it turns into KEY=VALUE.
func decodeStep(md toml.MetaData, raw map[string]toml.Primitive, synths []capability.Synthesizer, n int) (Step, error) {
	var st Step
	fields := st.fields()
	for k, p := range raw {
		if f, ok := fields[k]; ok {
			if err := md.PrimitiveDecode(p, f); err != nil {
				return st, fmt.Errorf("step %d: %s: %w", n, k, err)
			}
			continue
		}
		sy, err := capability.FindSynth(synths, k)
		if err != nil {
			return st, fmt.Errorf("unknown key step.%s in step %d (a step is an event, one of %s, or plug, pull, log, audit, supervisor, data, stick)", k, n, strings.Join(capability.SynthKinds(synths), ", "))
		}
		var v any
		if err := md.PrimitiveDecode(p, &v); err != nil {
			return st, fmt.Errorf("%s: %w", k, err)
		}
		if st.Args, err = capability.SynthTable(k, sy.SynthHelp(), v); err != nil {
			return st, fmt.Errorf("step %d: %w", n, err)
		}
		st.Kind = k
	}
	return st, nil
}

func (st Step) stickLabel() string {
	if st.StickFile == nil {
		return ""
	}
	return st.StickFile.Label
}

func (st Step) String() string {
	switch {
	case st.Plug != "":
		return "plug " + st.Plug
	case st.Pull != "":
		return "pull " + st.Pull
	case st.StickFile != nil:
		return fmt.Sprintf("stick %s file %s contains %q", st.StickFile.Label, st.StickFile.Path, st.StickFile.Contains)
	case st.Kind != "":
		return strings.Join(append([]string{st.Kind}, st.Args...), " ")
	case len(st.Log) > 0:
		return fmt.Sprintf("log %q", []string(st.Log))
	case len(st.Audit) > 0:
		return fmt.Sprintf("audit %q", []string(st.Audit))
	case st.Supervisor != "":
		return "supervisor " + st.Supervisor
	}
	return fmt.Sprintf("data %s contains %q", st.DataFile.Path, st.DataFile.Contains)
}

// Scripts returns the scenario files of the plugin in dir: test/*.toml.
func Scripts(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "test", "*.toml"))
	if err == nil && len(files) == 0 {
		err = fmt.Errorf("no scenario files in %s (write one, such as test/smoke.toml; airlock new makes one)", filepath.Join(dir, "test"))
	}
	sort.Strings(files)
	return files, err
}

// Run plays the script against the plugin in dir, in a host of its own,
// and returns the first step that failed, with the log.
func (s *Script) Run(dir string, timeout time.Duration) error {
	if d, _ := s.timeout(); d > 0 {
		timeout = d
	}
	o := Options{Config: s.Config, Data: s.Data, Timeout: timeout, Environ: []string{}}
	for _, st := range s.Sticks {
		o.Sticks = append(o.Sticks, mount.Stick{Label: st.Label, FSType: st.FSType, UUID: st.UUID, Files: st.Files})
	}
	for k, v := range s.Env {
		o.Environ = append(o.Environ, k+"="+v)
	}
	sess, err := Start(dir, o)
	if err != nil {
		return err
	}
	for i, st := range s.Steps {
		if err := sess.step(st, timeout); err != nil {
			sess.Close()
			return fmt.Errorf("step %d (%s): %w", i+1, st, err)
		}
	}
	return sess.Close()
}

func (s *Session) step(st Step, timeout time.Duration) error {
	switch {
	case st.Plug != "":
		return s.PlugStick(st.Plug)
	case st.Pull != "":
		return s.PullStick(st.Pull)
	case st.StickFile != nil:
		f := st.StickFile
		return s.poll(timeout, func() (bool, string) {
			b, err := s.StickFile(f.Label, f.Path)
			if err != nil {
				return false, err.Error()
			}
			return strings.Contains(string(b), f.Contains), fmt.Sprintf("%s on stick %s holds %q", f.Path, f.Label, b)
		})
	case st.Kind != "":
		return s.Trigger(st.Kind, st.Args...)
	case len(st.Log) > 0:
		return s.Log.Await(1, st.Log...)
	case len(st.Audit) > 0:
		return s.Audit.Await(1, st.Audit...)
	case st.Supervisor != "":
		return s.poll(timeout, func() (bool, string) {
			sup := s.Supervisor()
			if sup == nil {
				return false, "no simulated supervisor"
			}
			var seen []string
			for _, e := range sup.Events() {
				req := e.Method + " " + e.Path
				if strings.Contains(req, st.Supervisor) {
					return true, ""
				}
				seen = append(seen, fmt.Sprintf("%s (%d)", req, e.Status))
			}
			return false, "the supervisor handled: " + strings.Join(seen, ", ")
		})
	}
	return s.poll(timeout, func() (bool, string) {
		b, err := s.DataFile(st.DataFile.Path)
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(string(b), st.DataFile.Contains), fmt.Sprintf("/data/%s holds %q", st.DataFile.Path, b)
	})
}

// poll waits for done, failing at the timeout with its last word, or at
// once if the plugin trapped or logged an error.
func (s *Session) poll(timeout time.Duration, done func() (bool, string)) error {
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		ok, why := done()
		if ok {
			return nil
		}
		for _, l := range s.Log.Lines() {
			if s.Log.FailFast(l) {
				return fmt.Errorf("%s, and the plugin failed:\n  %s", why, l)
			}
		}
		if time.Now().After(deadline) {
			return errors.New(why + " after " + timeout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

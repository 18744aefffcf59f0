// Package shared is the capability that lets a plugin see a directory of
// the application's: the operator declares it in runtime.toml
//
//	[[shared]]
//	name = "app-logs"
//	path = "/mnt/app/logs"
//	mode = "ro"            # or "rw"; default "ro"
//
// and a plugin's manifest asks for it by name, read-only or read-write:
//
//	[shared]
//	ro = ["app-logs"]
//	rw = []
//
// The plugin sees it at /shared/<name>, through a WASI preopen that goes
// through the same symlink-proof sandbox as /data (internal/sandboxfs). It has
// no host functions: a directory is all it gives. Every grant and refusal
// is decided when the plugin loads, and audited as capability "shared".
package shared

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/host/manifest"
)

// Name is the capability's manifest and runtime.toml section.
const Name = "shared"

// GuestRoot is where a plugin sees its shared directories: /shared/<name>.
const GuestRoot = "/shared"

// Mode is how a directory may be used: ReadOnly or ReadWrite.
type Mode string

const (
	ReadOnly  Mode = "ro"
	ReadWrite Mode = "rw"
)

// Dir is one directory the operator shares ([[shared]] in runtime.toml).
type Dir struct {
	Name string
	Path string // absolute, as declared
	Mode Mode
}

// Config is runtime.toml's [[shared]] tables, by name.
type Config struct {
	File string // the runtime.toml they came from, for messages
	Dirs map[string]Dir
}

// Grant is plugin.toml's [shared]: the names it asks for, and how.
type Grant struct {
	RO []string // read-only
	RW []string // read-write; the operator must declare them "rw"
}

// Shared is the capability.
type Shared struct {
	cfg  *Config
	file string // runtime.toml, for messages when it declares nothing
	gate *gate.Gate
}

// New returns the capability, unprovisioned.
func New() *Shared { return &Shared{} }

var (
	_ capability.Capability  = (*Shared)(nil)
	_ capability.Configurer  = (*Shared)(nil)
	_ capability.Provisioner = (*Shared)(nil)
	_ capability.Preopener   = (*Shared)(nil)
)

func (*Shared) Name() string                 { return Name }
func (*Shared) Module() string               { return "" }
func (*Shared) Functions() []capability.Func { return nil }

// validName is a directory name: it becomes one guest path component.
var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

const nameHint = `lower-case letters, digits, '.', '_' and '-', starting with a letter or digit, such as "app-logs"`

type dirTOML struct {
	Name string `toml:"name"`
	Path string `toml:"path"`
	Mode string `toml:"mode"`
}

// DecodeConfig decodes runtime.toml's [[shared]] tables into a *Config.
// Whether each path exists is checked when a plugin that asks for it
// loads, since the application may make it after the host starts.
func (*Shared) DecodeConfig(s manifest.Section) (any, error) {
	var raw []dirTOML
	if !s.Decode(&raw) {
		return nil, errBad
	}
	c := &Config{File: s.File(), Dirs: map[string]Dir{}}
	ok := true
	bad := func(i int, key, hint, format string, args ...any) {
		ok = false
		s.Errorf(fmt.Sprintf("[%d].%s", i+1, key), hint, format, args...)
	}
	for i, r := range raw {
		d := Dir{Name: r.Name, Path: r.Path, Mode: Mode(r.Mode)}
		if d.Mode == "" {
			d.Mode = ReadOnly
		}
		switch {
		case !validName.MatchString(r.Name):
			bad(i, "name", nameHint, "shared directory name %q is not a plain name", r.Name)
		case c.Dirs[r.Name].Name != "":
			bad(i, "name", "give each [[shared]] table its own name", "shared directory %q is declared twice", r.Name)
		}
		if !filepath.IsAbs(r.Path) || filepath.Clean(r.Path) != r.Path || r.Path == "/" {
			bad(i, "path", `write the directory's absolute, clean path, such as "/mnt/app/logs"`, "shared directory path %q is not an absolute clean path below /", r.Path)
		}
		if d.Mode != ReadOnly && d.Mode != ReadWrite {
			bad(i, "mode", `"ro" (the default) or "rw"`, "unknown mode %q", r.Mode)
		}
		c.Dirs[r.Name] = d
	}
	if !ok {
		return nil, errBad
	}
	return c, nil
}

type grantTOML struct {
	RO []string `toml:"ro"`
	RW []string `toml:"rw"`
}

// DecodeGrant decodes plugin.toml's [shared] (and a vendor's
// [trust.vendor.ceiling.shared], which has the same shape) into a *Grant.
// Whether runtime.toml declares the names is checked at load (Preopens).
func (*Shared) DecodeGrant(s manifest.Section) (any, error) {
	var raw grantTOML
	if !s.Decode(&raw) {
		return nil, errBad
	}
	ok := true
	seen := map[string]string{}
	for _, l := range []struct {
		key   string
		names []string
	}{{"ro", raw.RO}, {"rw", raw.RW}} {
		for _, n := range l.names {
			switch {
			case !validName.MatchString(n):
				ok = false
				s.Errorf(l.key, nameHint+", as runtime.toml's [[shared]] name", "shared directory name %q is not a plain name", n)
			case seen[n] != "":
				ok = false
				s.Errorf(l.key, "list each name once, in ro or in rw", "shared directory %q is listed in %s already", n, seen[n])
			}
			seen[n] = l.key
		}
	}
	if ok && len(seen) == 0 {
		ok = false
		s.Errorf("", `name the directories, such as ro = ["app-logs"], or remove [shared]`, "[shared] asks for no directory")
	}
	if !ok {
		return nil, errBad
	}
	return &Grant{RO: raw.RO, RW: raw.RW}, nil
}

// errBad is returned after the problems were recorded through the Section.
var errBad = fmt.Errorf("invalid [%s] section", Name)

// Provision takes the decoded [[shared]] tables and the gate that audits
// each load's decisions.
func (s *Shared) Provision(_ context.Context, env capability.Env) error {
	s.cfg, _ = env.Config.(*Config)
	s.gate = env.Gate
	if env.Runtime != nil {
		s.file = env.Runtime.File
	}
	return nil
}

// Preopens decides, when the plugin loads, each directory its [shared]
// asks for: declared in runtime.toml, at a mode no wider than declared, a
// real directory at a path with no symbolic link in it. Each is audited;
// any refusal refuses the plugin, with what to fix.
func (s *Shared) Preopens(m *manifest.Manifest) ([]capability.Preopen, error) {
	g, _ := m.Grants[Name].(*Grant)
	if g == nil {
		return nil, nil
	}
	var out []capability.Preopen
	var problems []string
	for _, want := range g.modes() {
		p, reason, allowed := s.decide(m, want.name, want.mode)
		op := fmt.Sprintf("open %s/%s %s", GuestRoot, want.name, want.mode)
		d := gate.Deny(reason)
		if allowed {
			d = gate.Allow(reason)
		}
		if err := s.audit().Check(context.Background(), m.Name, Name, op, d); err != nil {
			problems = append(problems, err.Error())
			continue
		}
		out = append(out, p)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("refused at load:\n  %s", strings.Join(problems, "\n  "))
	}
	return out, nil
}

// audit is the host's gate; the zero gate (no records) before Provision.
func (s *Shared) audit() *gate.Gate {
	if s.gate == nil {
		return &gate.Gate{}
	}
	return s.gate
}

type nameMode struct {
	name string
	mode Mode
}

// modes lists the grant's names with their modes, ro first, in the
// manifest's order.
func (g *Grant) modes() []nameMode {
	var out []nameMode
	for _, n := range g.RO {
		out = append(out, nameMode{n, ReadOnly})
	}
	for _, n := range g.RW {
		out = append(out, nameMode{n, ReadWrite})
	}
	return out
}

// decide is the verdict on one directory: the preopen, or why not (with
// how to fix it).
func (s *Shared) decide(m *manifest.Manifest, name string, mode Mode) (capability.Preopen, string, bool) {
	var d Dir
	if s.cfg != nil {
		d = s.cfg.Dirs[name]
	}
	rt := s.file
	if rt == "" {
		rt = "runtime.toml"
	}
	switch {
	case d.Name == "":
		return capability.Preopen{}, fmt.Sprintf("%s asks for shared directory %q, which %s does not declare (declared: %s); the operator declares it with [[shared]] name = %q path = \"...\", or the plugin must not ask for it",
			m.File, name, rt, s.declared(), name), false
	case mode == ReadWrite && d.Mode != ReadWrite:
		return capability.Preopen{}, fmt.Sprintf("%s asks to write shared directory %q, which %s declares read-only; move it to ro = [...] in the manifest, or the operator declares it mode = \"rw\"",
			m.File, name, rt), false
	}
	if err := checkPath(d.Path); err != nil {
		return capability.Preopen{}, fmt.Sprintf("shared directory %q (%s in %s): %v", name, d.Path, rt, err), false
	}
	return capability.Preopen{GuestPath: GuestRoot + "/" + name, Dir: d.Path, ReadOnly: mode == ReadOnly},
		fmt.Sprintf("%s declares %q (%s) %s", rt, name, d.Path, d.Mode), true
}

// checkPath refuses a declared path that is missing, not a directory, or
// reached through a symbolic link: the application that owns the volume
// could otherwise swap a link in to hand plugins another directory (/etc).
func checkPath(p string) error {
	fi, err := os.Lstat(p)
	switch {
	case os.IsNotExist(err):
		return fmt.Errorf("it does not exist; create it (the application may not have made it yet) or fix the path, then load the plugin again")
	case err != nil:
		return err
	case fi.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("it is a symbolic link; declare the directory it leads to instead")
	case !fi.IsDir():
		return fmt.Errorf("it is not a directory")
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return err
	}
	if real != p {
		return fmt.Errorf("a directory above it is a symbolic link: declare the real path %q instead", real)
	}
	return nil
}

// declared lists runtime.toml's shared directories for a message.
func (s *Shared) declared() string {
	if s.cfg == nil || len(s.cfg.Dirs) == 0 {
		return "none"
	}
	var names []string
	for n, d := range s.cfg.Dirs {
		names = append(names, fmt.Sprintf("%s (%s)", n, d.Mode))
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// Within reports whether g asks for no more than ceiling, a *Grant decoded
// from [trust.vendor.ceiling.shared]: each ro name in the ceiling's ro or
// rw, each rw name in its rw.
func (g *Grant) Within(ceiling any) (bool, []string) {
	c, ok := ceiling.(*Grant)
	if !ok {
		return false, []string{fmt.Sprintf("the ceiling is a %T, not a shared grant", ceiling)}
	}
	var excess []string
	for _, n := range g.RO {
		if !slices.Contains(c.RO, n) && !slices.Contains(c.RW, n) {
			excess = append(excess, fmt.Sprintf("directory %q is outside the ceiling", n))
		}
	}
	for _, n := range g.RW {
		switch {
		case slices.Contains(c.RW, n):
		case slices.Contains(c.RO, n):
			excess = append(excess, fmt.Sprintf("directory %q read-write is outside the ceiling (read-only only)", n))
		default:
			excess = append(excess, fmt.Sprintf("directory %q is outside the ceiling", n))
		}
	}
	return len(excess) == 0, excess
}

// Describe says in plain words what g grants (airlock describe).
func (g *Grant) Describe() []string {
	var out []string
	for _, nm := range g.modes() {
		how := "read"
		if nm.mode == ReadWrite {
			how = "read and write"
		}
		out = append(out, fmt.Sprintf("may %s the application's shared directory %q at %s/%s", how, nm.name, GuestRoot, nm.name))
	}
	return out
}

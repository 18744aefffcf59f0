package manifest

import (
	"reflect"
	"strings"

	"github.com/BurntSushi/toml"
)

// Section is one table of a TOML file that a capability owns, such as
// [supervisor] or [[trigger.udev]]. The capability decodes it strictly and
// reports problems through it, so that every message names file, line and key.
type Section struct {
	d     *doc
	key   string
	prim  toml.Primitive
	known map[string][]string
}

// Key is the section's dotted path, such as "supervisor" or "trigger.udev".
func (s Section) Key() string { return s.key }

// File is the path of the TOML file the section came from.
func (s Section) File() string { return s.d.file }

// Decode fills v (a pointer to a struct with toml tags, or a slice of them
// for an array of tables). Keys that v has no field for are reported as
// unknown, with a suggestion taken from v's tags. It returns false if any
// problem was recorded.
func (s Section) Decode(v any) bool {
	collectKeys(s.key, reflect.TypeOf(v), s.known)
	return s.d.decodePrim(s.key, s.prim, v)
}

// Errorf records a problem at key, relative to the section: "" for the
// section itself, "allow", or "[2].subsystem" for an entry of an array of
// tables. hint says how to fix it.
func (s Section) Errorf(key, hint, format string, args ...any) {
	full := s.key
	switch {
	case strings.HasPrefix(key, "["):
		full += key
	case key != "":
		full += "." + key
	}
	s.d.errorf(full, hint, format, args...)
}

// collectKeys records the toml field names of t under prefix, for "did you
// mean" suggestions on unknown keys.
func collectKeys(prefix string, t reflect.Type, out map[string][]string) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[prefix] = append(out[prefix], name)
		sub := name
		if prefix != "" {
			sub = prefix + "." + name
		}
		collectKeys(sub, f.Type, out)
	}
}

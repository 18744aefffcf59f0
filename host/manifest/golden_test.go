package manifest

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the .golden files")

// Each testdata/manifest/NAME.toml is parsed against testdata/runtime.toml's
// limits; NAME.golden holds the resolved manifest as JSON, or the errors.
// A new case is a new pair of files.
func TestManifestGolden(t *testing.T) {
	rt := DefaultRuntime()
	rt.File = "runtime.toml"
	rt.Limits.Memory, rt.Ceiling.Memory = 32<<20, 128<<20
	schema := Schema{Grants: map[string]SectionFunc{"supervisor": decodeAllow}, Triggers: map[string]SectionFunc{"udev": decodeRules}}
	golden(t, "testdata/manifest", func(name string, data []byte) (any, error) {
		m, err := ParseManifest(name, data, &rt, schema)
		if m != nil {
			m.Dir, m.Wasm = "", filepath.Base(m.Wasm)
		}
		return m, err
	})
}

func TestRuntimeGolden(t *testing.T) {
	golden(t, "testdata/runtime", func(name string, data []byte) (any, error) {
		rt, err := ParseRuntime(name, data, map[string]SectionFunc{"supervisor": decodeAllow})
		if rt != nil {
			rt.Dir = ""
			for i, p := range rt.Plugins {
				rt.Plugins[i] = filepath.Base(p)
			}
			rt.StateDir = filepath.Base(rt.StateDir)
			rt.Admin.Socket = filepath.Base(rt.Admin.Socket)
			for i, p := range rt.Trust.AllowUnsigned {
				rt.Trust.AllowUnsigned[i] = filepath.Base(p)
			}
		}
		return rt, err
	})
}

// decodeAllow stands in for a capability's section: a table with one
// "allow" list.
func decodeAllow(s Section) (any, error) {
	var v struct {
		Allow []string `toml:"allow"`
	}
	if !s.Decode(&v) {
		return nil, os.ErrInvalid
	}
	return v.Allow, nil
}

// decodeRules stands in for a trigger: an array of tables with "subsystem".
func decodeRules(s Section) (any, error) {
	var v []struct {
		Subsystem string `toml:"subsystem"`
	}
	if !s.Decode(&v) {
		return nil, os.ErrInvalid
	}
	return v, nil
}

func golden(t *testing.T, dir string, parse func(string, []byte) (any, error)) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.toml"))
	if len(files) == 0 {
		t.Fatal("no cases")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".toml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			v, err := parse(filepath.Base(f), data)
			var got string
			if err != nil {
				got = "error:\n" + err.Error() + "\n"
			} else {
				b, _ := json.MarshalIndent(v, "", "  ")
				got = string(b) + "\n"
			}
			gf := strings.TrimSuffix(f, ".toml") + ".golden"
			if *update {
				os.WriteFile(gf, []byte(got), 0o644)
				return
			}
			want, err := os.ReadFile(gf)
			if err != nil {
				t.Fatalf("%v (run go test ./host/manifest -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s:\ngot:\n%s\nwant:\n%s", f, got, want)
			}
		})
	}
}

package manifest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// addTOMLSeeds adds every golden case in dir as a seed, so that the fuzzer
// starts from valid and invalid files a human wrote. The committed corpus in
// testdata/fuzz/<Name> holds the same files for `go test` without -fuzz.
func addTOMLSeeds(f *testing.F, dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.toml"))
	if len(files) == 0 {
		f.Fatalf("no seeds in %s", dir)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzParseManifest feeds arbitrary bytes as a plugin.toml, with the
// schema's grant and trigger sections. Whatever the bytes, parsing never
// panics; a refusal names the file; an accepted manifest has a valid name,
// a wasm path inside its directory, no secret in env.allow and limits within
// the runtime's ceiling.
func FuzzParseManifest(f *testing.F) {
	addTOMLSeeds(f, "testdata/manifest")
	rt := DefaultRuntime()
	rt.File = "runtime.toml"
	schema := Schema{Grants: map[string]SectionFunc{"supervisor": decodeAllow}, Triggers: map[string]SectionFunc{"udev": decodeRules}}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest("/p/plugin.toml", data, &rt, schema)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "/p/plugin.toml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if !nameRe.MatchString(m.Name) {
			t.Fatalf("accepted name %q", m.Name)
		}
		if rel, err := filepath.Rel("/p", m.Wasm); err != nil || strings.HasPrefix(rel, "..") {
			t.Fatalf("accepted wasm %q outside the plugin directory", m.Wasm)
		}
		for _, e := range m.EnvAllow {
			if !strings.HasSuffix(e, "*") && (slices.Contains(HostSecretEnv, e) || SecretLooking(e, "") != "" && !slices.Contains(rt.Env.Pass, e)) {
				t.Fatalf("accepted secret %q in env.allow", e)
			}
		}
		l := m.Limits
		if l.Memory > rt.Ceiling.Memory || l.HandlerTimeout > rt.Ceiling.HandlerTimeout || l.Queue < 1 || l.Queue > rt.Ceiling.Queue {
			t.Fatalf("accepted limits %+v above the ceiling %+v", l, rt.Ceiling)
		}
		if l.Overflow != DropNewest && l.Overflow != DropOldest {
			t.Fatalf("accepted overflow %q", l.Overflow)
		}
	})
}

// FuzzParseRuntime feeds arbitrary bytes as a runtime.toml. It never panics,
// a refusal names the file, and an accepted config has plugin directories
// or [[bundle]]s, a known device, positive limits and pull retries.
func FuzzParseRuntime(f *testing.F) {
	addTOMLSeeds(f, "testdata/runtime")
	f.Fuzz(func(t *testing.T, data []byte) {
		rt, err := ParseRuntime("runtime.toml", data, map[string]SectionFunc{"supervisor": decodeAllow})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "runtime.toml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if len(rt.Plugins)+len(rt.Bundles) == 0 || (rt.Device != "sim" && rt.Device != "real") {
			t.Fatalf("accepted runtime %+v", rt)
		}
		if rt.Limits.Queue < 1 || rt.Limits.Memory <= 0 || rt.Limits.HandlerTimeout <= 0 {
			t.Fatalf("accepted limits %+v", rt.Limits)
		}
		if r := rt.Registry; r.RetryInitial <= 0 || r.RetryInitial > r.RetryMax {
			t.Fatalf("accepted retries %+v", r)
		}
	})
}

package udev

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/host/manifest"
)

var update = flag.Bool("update", false, "rewrite the .golden files")

// golden compares got with the file, or rewrites it under -update.
func golden(t *testing.T, file, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got\n%s--- want\n%s", file, got, want)
	}
}

// TestDecodeRules decodes each testdata/rules/*.toml as a plugin.toml: a new
// case is a new file. The .golden file holds the decoded rules or the
// errors, exactly as a user sees them.
func TestDecodeRules(t *testing.T) {
	files, _ := filepath.Glob("testdata/rules/*.toml")
	if len(files) == 0 {
		t.Fatal("no cases")
	}
	u := New()
	schema := manifest.Schema{
		Grants:   map[string]manifest.SectionFunc{"udev": u.DecodeGrant},
		Triggers: map[string]manifest.SectionFunc{"udev": u.DecodeTrigger},
	}
	rt := manifest.DefaultRuntime()
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			m, err := manifest.ParseManifest(f, data, &rt, schema)
			var got string
			if err != nil {
				got = err.Error() + "\n"
			} else {
				got = renderRules(m.Triggers["udev"].(Rules))
			}
			if strings.HasPrefix(filepath.Base(f), "ok-") != (err == nil) {
				t.Errorf("ok- cases must decode and bad- cases must not; got %q", got)
			}
			golden(t, strings.TrimSuffix(f, ".toml")+".golden", got)
		})
	}
}

func renderRules(rs Rules) string {
	var b strings.Builder
	for i, r := range rs {
		fmt.Fprintf(&b, "rule %d: actions=%q subsystem=%q devtype=%q", i+1, r.Actions, r.Subsystem, r.DevType)
		if r.Kernel != nil {
			fmt.Fprintf(&b, " kernel=%q", r.Kernel)
		}
		for _, p := range r.Props {
			fmt.Fprintf(&b, " %s=%q", p.key, p.g)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestDecodeConfig does the same for runtime.toml's [udev].
func TestDecodeConfig(t *testing.T) {
	files, _ := filepath.Glob("testdata/config/*.toml")
	u := New()
	sections := map[string]manifest.SectionFunc{"udev": u.DecodeConfig}
	abs, _ := filepath.Abs("testdata")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			rt, err := manifest.ParseRuntime(f, data, sections)
			var got string
			if err != nil {
				got = strings.ReplaceAll(err.Error(), abs, "testdata") + "\n"
			} else {
				c := rt.Sections["udev"].(*Config)
				got = fmt.Sprintf("source=%s replay=%q instant=%v coldplug=%v probe=%v events=%d\n",
					c.Source, strings.ReplaceAll(c.Replay, abs, "testdata"), c.Instant, c.Coldplug, c.Probe, len(c.events))
			}
			if strings.HasPrefix(filepath.Base(f), "ok-") != (err == nil) {
				t.Errorf("ok- cases must decode and bad- cases must not; got %q", got)
			}
			golden(t, strings.TrimSuffix(f, ".toml")+".golden", got)
		})
	}
}

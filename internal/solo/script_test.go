package solo

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestScriptEvents: a step's event key is a trigger kind, read by that
// kind's synthesizer into KEY=VALUE arguments; a key that is neither an
// event nor an outcome is refused with the step and the choices.
func TestScriptEvents(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	s, err := LoadScript(write("events.toml", `[[step]]
timer = "tick"
[[step]]
udev = { action = "add", devpath = "/devices/virtual/block/sdz/sdz1", props = { SUBSYSTEM = "block", ID_FS_LABEL = "MEDIA" } }
[[step]]
dbus = { path = "/org/freedesktop/timedate1", interface = "org.freedesktop.DBus.Properties", member = "PropertiesChanged" }
[[step]]
log = "done"
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		kind string
		args []string
	}{
		{"timer", []string{"name=tick"}},
		{"udev", []string{"ACTION=add", "DEVPATH=/devices/virtual/block/sdz/sdz1", "ID_FS_LABEL=MEDIA", "SUBSYSTEM=block"}},
		{"dbus", []string{"path=/org/freedesktop/timedate1", "interface=org.freedesktop.DBus.Properties", "member=PropertiesChanged"}},
		{"", nil},
	}
	for i, w := range want {
		if st := s.Steps[i]; st.Kind != w.kind || !slices.Equal(st.Args, w.args) {
			t.Errorf("step %d: %s %q, want %s %q", i+1, st.Kind, st.Args, w.kind, w.args)
		}
	}
	if got := s.Steps[3].Log; !slices.Equal(got, Parts{"done"}) {
		t.Errorf("step 4 log %q", got)
	}
	for text, msg := range map[string]string{
		"[[step]]\nmount = \"x\"\n":                        "unknown key step.mount in step 1 (a step is an event, one of timer, udev, dbus, mqtt, or plug, pull",
		"[[step]]\ntimer = \"a\"\nlog = \"b\"\n":           "step 1 has 2 actions; give each [[step]] exactly one of timer, udev, dbus, mqtt, plug",
		"[[step]]\ndbus = \"x\"\n":                         "step 1: dbus: write a table of an object path, an interface and a member",
		"[[step]]\ndata = { path = \"a\", contans = 1 }\n": "unknown key step.data.contans",
	} {
		if _, err := LoadScript(write("bad.toml", text)); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: %v\nwant %q", text, err, msg)
		}
	}
}

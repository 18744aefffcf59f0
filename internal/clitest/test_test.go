package clitest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/internal/testenv"
)

// counter is a C plugin that counts in /data/count.txt on each tick of
// "tick" and traps on "boom".
const counterC = `#define AIRLOCK_IMPLEMENTATION
#include "airlock.h"
#include <stdio.h>

static int on_timer(const airlock_timer *t) {
	if (t->name[0] == 'b') __builtin_trap();
	long n = 0;
	FILE *f = fopen("/data/count.txt", "r");
	if (f) { if (fscanf(f, "%ld", &n) != 1) n = 0; fclose(f); }
	n++;
	f = fopen("/data/count.txt", "w");
	if (!f) return 1;
	fprintf(f, "%ld", n);
	fclose(f);
	airlock_infof("count=%ld unit=%s", n, airlock_config("unit").data);
	return 0;
}

AIRLOCK_INIT { airlock_on_timer(on_timer); }
`

const counterManifest = `name = "counter"
version = "0.1.0"

[config]
unit = "ticks"

[storage]
data = true

[[trigger.timer]]
name = "tick"
every = "1h"

[[trigger.timer]]
name = "boom"
every = "1h"
`

// TestScenarioFile: airlock test plays a scenario's [config] and /data
// seed, sends its events and sees the file the plugin wrote; a step that
// waits stops at once when the plugin traps, not at its timeout; a
// scenario with a mistake is refused with the file and the fix.
func TestScenarioFile(t *testing.T) {
	testenv.NeedToolchain(t, "c")
	a := newAuthor(t)
	work := t.TempDir()
	a.must(work, "airlock", "new", "--lang", "c", "--dir", "counter", "counter")
	dir := filepath.Join(work, "counter")
	for f, text := range map[string]string{
		"main.c":      counterC,
		"plugin.toml": counterManifest,
		"test/smoke.toml": `[config]
unit = "beats"
[data]
"count.txt" = "41"
[[step]]
timer = "tick"
[[step]]
log = ["count=42 unit=beats", "plugin=counter"]
[[step]]
data = { path = "count.txt", contains = "42" }
`,
		"test/trap.toml": "[[step]]\ntimer = \"boom\"\n[[step]]\nlog = \"count=1\"\n",
		"test/typo.toml": "[[step]]\ntimr = \"tick\"\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a.must(dir, "./build.sh")
	if out := a.must(dir, "airlock", "test", "test/smoke.toml"); !strings.Contains(out, "ok   test/smoke.toml (3 steps") {
		t.Errorf("airlock test test/smoke.toml: %s", out)
	}
	// A timeout of ten minutes: the trap must end the wait long before.
	out, err := a.run(dir, "airlock", "test", "--timeout", "10m", "test/trap.toml", "test/typo.toml")
	for _, want := range []string{
		"FAIL test/trap.toml: step 2 (log [\"count=1\"]): ",
		"this line means there will be no more:\n       ERROR plugin crashed; restarting",
		"FAIL test/typo.toml: test/typo.toml: unknown key step.timr",
		"FAIL: 2 of 2 scenarios",
	} {
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("airlock test of a trap and a typo: %v\n%s\nwant %q", err, out, want)
		}
	}
}

// TestScenarioStick: a scenario's [[stick]] (label, fs type, files) is
// plugged in, the automount plugin mounts it and writes its write_file, and
// a stick step reads that file back; a step naming a stick no [[stick]]
// describes is refused with the fix.
func TestScenarioStick(t *testing.T) {
	a := newAuthor(t)
	plugin := filepath.Join(testenv.RepoRoot(t), "plugins", "automount")
	dir := t.TempDir()
	for f, text := range map[string]string{
		"stick.toml": `[config]
write_file = "hello.txt"
[[stick]]
label = "CAMERA"
fstype = "exfat"
uuid = "AB12-CD34"
files = { "DCIM/1.jpg" = "jpeg" }
[[step]]
plug = "CAMERA"
[[step]]
log = ["mounted", "device=/dev/sdc1", "fstype=exfat", "plugin=automount"]
[[step]]
stick = { label = "CAMERA", path = "hello.txt", contains = "written by the airlock automount plugin" }
[[step]]
stick = { label = "CAMERA", path = "DCIM/1.jpg", contains = "jpeg" }
[[step]]
pull = "CAMERA"
[[step]]
log = ["unmounted capability=mount plugin=automount target=CAMERA device=/dev/sdc1"]   # by the plugin or the host, whichever is first
`,
		"nostick.toml": "[[step]]\nplug = \"CAMERA\"\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out := a.must(dir, "airlock", "test", plugin, "stick.toml"); !strings.Contains(out, "ok   stick.toml (6 steps") {
		t.Errorf("airlock test stick.toml: %s", out)
	}
	out, err := a.run(dir, "airlock", "test", plugin, "nostick.toml")
	if want := `nostick.toml: step 1 names stick "CAMERA", which no [[stick]] table describes`; err == nil || !strings.Contains(out, want) {
		t.Errorf("airlock test nostick.toml: %v\n%s\nwant %q", err, out, want)
	}
}

// TestScenarioSignalBody: a scenario's D-Bus signal carries arguments (its
// signature and a body of values), which the plugin decodes: ntp-check
// reports the NTPSynchronized that the signal's changed properties hold.
func TestScenarioSignalBody(t *testing.T) {
	a := newAuthor(t)
	plugin := filepath.Join(testenv.RepoRoot(t), "examples", "ntp-check")
	dir := t.TempDir()
	scenario := `[[step]]
dbus = { path = "/org/freedesktop/timedate1", interface = "org.freedesktop.DBus.Properties", member = "PropertiesChanged", signature = "sa{sv}as", body = ["org.freedesktop.timedate1", { NTPSynchronized = false }, []] }
[[step]]
log = ["NTPSynchronized changed", "synced=false", "plugin=ntp-check"]
`
	if err := os.WriteFile(filepath.Join(dir, "signal.toml"), []byte(scenario), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := a.must(dir, "airlock", "test", plugin, "signal.toml"); !strings.Contains(out, "ok   signal.toml (2 steps") {
		t.Errorf("airlock test signal.toml: %s", out)
	}
}

// Package conformance runs one scenario against the same plugin written with
// every SDK (testdata/<lang>) on a real host, and checks that each logs
// exactly what the Go reference logs (testdata/transcript.golden). It is
// how an SDK proves it speaks ABI v1; README.md lists the steps.
package conformance

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/internal/hostrun"
	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/timer"
)

var update = flag.Bool("update", false, "rewrite testdata/transcript.golden from the Go plugin's run")

const golden = "testdata/transcript.golden"

// bigConfig is larger than every SDK's fixed result buffer (4 KiB), so
// config_get must hand it over through result_read.
var bigConfig = strings.Repeat("0123456789abcdef", 1000)

func manifest(name string) string {
	return fmt.Sprintf(`name = %q
version = "1.0.0"

[limits]
handler_timeout = "1s"
queue = 8

[env]
allow = ["BALENA_*"]

[storage]
data = true

[config]
colour = "blue"
big = %q
%s`, name, bigConfig, grants)
}

var environ = []string{
	"BALENA_DEVICE_TYPE=raspberrypi4-64", "BALENA_SUPERVISOR_API_KEY=sekrit", "BALENA_API_TOKEN=t",
	"HOME=/root", "BALENA_APP_ID=7", "PATH=/usr/bin",
}

// grants are the capability sections of the conformance plugin's manifest:
// each capability step is allowed by these or denied for lack of them.
const grants = `
[supervisor]
allow = ["blink", "reboot", "device.read", "service.restart:main", "app.read", "logs.read:main"]

[cloud]
allow = ["device.read", "name.set", "tags.read", "tags.set:location", "tags.delete:owner", "env.read", "config.read", "fleet.read"]

[[mount]]
source = ["label:MEDIA*", "device:/dev/sd*"]
fstype = ["vfat"]
options = ["sync"]

[[dbus.call]]
destination = "org.freedesktop.systemd1"
path = "/org/freedesktop/systemd1"
interface = "org.freedesktop.systemd1.Manager"
member = "StopUnit"
args = ["bluetooth.service", "*"]

[[dbus.call]]
destination = "org.freedesktop.systemd1"
path = "/org/freedesktop/systemd1"
interface = "org.freedesktop.systemd1.Manager"
member = "GetUnit"

[[dbus.property]]
destination = "org.freedesktop.systemd1"
path = "/org/freedesktop/systemd1/unit/*"
interface = "org.freedesktop.systemd1.Unit"
name = "*"
access = "get"

[[dbus.property]]
destination = "org.freedesktop.hostname1"
path = "/org/freedesktop/hostname1"
interface = "org.freedesktop.hostname1"
name = "PrettyHostname"
access = ["get", "set"]

[[trigger.dbus]]
name = "unit"
sender = "org.freedesktop.systemd1"
path = "/org/freedesktop/systemd1/unit/bluetooth_2eservice"
interface = "org.freedesktop.DBus.Properties"
member = "PropertiesChanged"
`

const runtimeTOML = `plugins = ["plugins"]
state_dir = "state"
[restart]
initial = "10ms"
max = "200ms"
`

// A fixed due time, so that every SDK's RFC 3339 parsing is compared.
var due = time.Date(2024, 2, 29, 12, 34, 56, 123456789, time.FixedZone("", 2*3600))

// steps are timer names; each selects a behaviour of the plugin.
var steps = []string{
	"seq:1", "count:a", "seq:2", "count:b", "seq:3", "time:due",
	"config:colour", "config:missing", "bigconfig:big", "big:" + strings.Repeat("x", 9000),
	"env", "levels", "fields",
	"write:note", "read:note", "read:absent",
	"deadline", "clock",
	"sleep:-1", "sleep:5000",
	"fail", "bogus",
}

func udevEvent() capability.Event {
	rec := abi.Record{
		{Key: "ACTION", Value: []byte("add")},
		{Key: "DEVPATH", Value: []byte("/devices/pci0000:00/usb1/1-1/host0/block/sdb/sdb1")},
		{Key: "SUBSYSTEM", Value: []byte("block")},
		{Key: "DEVTYPE", Value: []byte("partition")},
		{Key: "DEVNAME", Value: []byte("/dev/sdb1")},
		{Key: "SEQNUM", Value: []byte("4242")},
		{Key: "ID_FS_LABEL", Value: []byte("MY_STICK")},
		{Key: "ID_FS_LABEL_ENC", Value: []byte(`MY\x20STICK`)},
		{Key: "ID_FS_UUID", Value: []byte("1234-ABCD")},
		{Key: "ID_FS_TYPE", Value: []byte("vfat")},
		{Key: "AIRLOCK_SYNTH", Value: []byte("coldplug")},
		{Key: "X_NEW_FIELD", Value: []byte("ignored")},
	}
	return capability.Event{Kind: uint32(abi.EventUdev), Payload: abi.AppendRecord(nil, rec)}
}

func TestConformance(t *testing.T) {
	testenv.NeedCommand(t, "dbus-daemon", "dbus") // the simulated device's system bus
	want, err := os.ReadFile(golden)
	if err != nil && !*update {
		t.Fatal(err)
	}
	for _, lang := range testenv.Langs {
		t.Run(lang.Name, func(t *testing.T) {
			wasm := lang.Build(t, "internal/conformance/testdata/"+lang.Name)
			got := scenario(t, "conf-"+lang.Name, wasm)
			if *update && lang.Name == "go" {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				want = []byte(got)
				return
			}
			if got != string(want) {
				t.Errorf("%s plugin's transcript differs from %s (the Go SDK's):\n%s", lang.Name, golden, diff(string(want), got))
			}
		})
	}
}

// scenario runs the plugin through every step on a fresh host and returns
// what it logged, one line per record, without the plugin's name.
func scenario(t *testing.T, name, wasm string) string {
	dir := t.TempDir()
	testenv.InstallPlugin(t, filepath.Join(dir, "plugins"), name, manifest(name), wasm)
	// The simulated device's supervisor, bus and storage back the
	// capability steps.
	if err := os.WriteFile(filepath.Join(dir, "runtime.toml"), []byte("device = \"sim\"\n"+runtimeTOML), 0o644); err != nil {
		t.Fatal(err)
	}
	dev := newDevice()
	log, logger := testenv.NewLog(t)
	run := hostrun.Start(t, filepath.Join(dir, "runtime.toml"), host.Options{Logger: logger, Environ: environ, Capabilities: dev.caps})
	h := run.Host
	stop := func() {
		if err := run.Stop(); err != nil {
			t.Errorf("host: %v", err)
		}
	}
	defer stop()
	log.Wait(1, "plugin loaded", "plugin="+name)
	log.Wait(1, "INFO started", "plugin="+name)

	deliver := func(ev capability.Event) {
		t.Helper()
		if !h.Deliver(name, ev) {
			t.Fatalf("event %d refused", ev.Kind)
		}
	}
	sync := 0
	barrier := func() {
		t.Helper()
		sync++
		marker := fmt.Sprintf("sync%d", sync)
		deliver(timer.Event(name, "seq:"+marker, due))
		log.Wait(1, "seq "+marker, "plugin="+name)
	}
	// The queue holds 8: deliver in batches and wait for each to drain.
	for i, s := range steps {
		deliver(timer.Event(name, s, due))
		if i%6 == 5 {
			barrier()
		}
	}
	barrier()

	// Events the SDK must decode or ignore.
	deliver(udevEvent())
	deliver(capability.Event{Kind: uint32(abi.EventTimer), Payload: []byte{5, 0, 0, 0, 1}}) // malformed
	deliver(capability.Event{Kind: 99, Payload: abi.AppendRecord(nil, abi.Record{{Key: "k", Value: []byte("v")}})})
	deliver(capability.Event{Kind: uint32(abi.EventTimer)}) // no payload: a timer with no name
	barrier()

	// Capabilities, one step at a time: some steer the simulated device
	// first, some cause events that must be handled before the next step.
	for _, st := range dev.steps() {
		if st.before != nil {
			st.before()
		}
		if st.event != nil {
			deliver(*st.event)
		} else {
			deliver(timer.Event(name, st.name, due))
		}
		for _, w := range st.wait {
			log.Wait(1, w, "plugin="+name)
		}
		if st.marker != "" {
			deliver(timer.Event(name, "seq:"+st.marker, due))
			log.Wait(1, "seq "+st.marker, "plugin="+name)
		} else {
			barrier()
		}
		if st.after != nil {
			st.after()
		}
	}

	// Overflow: while the plugin sleeps, 8 events fit and the rest are
	// counted and reported in one dropped event.
	deliver(timer.Event(name, "sleep:300", due))
	log.Wait(1, "sleep 300 begin", "plugin="+name)
	lost := 0
	for i := 0; i < 14; i++ {
		if !h.Deliver(name, timer.Event(name, fmt.Sprintf("seq:q%d", i), due)) {
			lost++
		}
	}
	if lost != 6 {
		t.Errorf("a queue of 8 refused %d of 14 events, want 6", lost)
	}
	// A newer tick of a queued timer replaces it (coalesced, not dropped),
	// and a device event finds the queue full too: the notice counts both
	// kinds apart.
	if !h.Deliver(name, timer.Event(name, "seq:q3", due)) {
		t.Error("a newer tick of a queued timer was refused, not coalesced")
	}
	if h.Deliver(name, udevEvent()) {
		t.Error("a full queue took a udev event")
	}
	log.Wait(1, "seq q7", "plugin="+name)
	barrier()
	stop()

	var lines []string
	for _, l := range log.Lines() {
		if !strings.Contains(l, "plugin="+name) {
			continue
		}
		if strings.Contains(l, "sekrit") {
			t.Errorf("a secret reached the plugin: %s", l)
		}
		if strings.Contains(l, "source=plugin") || strings.Contains(l, "handler reported an error") {
			l = strings.ReplaceAll(l, " plugin="+name, "")
			l = strings.ReplaceAll(l, " source=plugin", "")
			l = strings.ReplaceAll(l, strconv.Quote(name), `"conformance"`) // in the host's messages
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// diff shows the first lines where a and b differ, with context.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl == gl {
			continue
		}
		fmt.Fprintf(&b, "line %d:\n  want %s\n  got  %s\n", i+1, clip(wl), clip(gl))
		if shown++; shown == 10 {
			b.WriteString("  ...\n")
			break
		}
	}
	return b.String()
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + fmt.Sprintf("…(%d bytes)", len(s))
	}
	return s
}

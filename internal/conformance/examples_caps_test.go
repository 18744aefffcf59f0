package conformance

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/internal/dbus"
	"github.com/airlockhq/airlock/internal/httpout"
	"github.com/airlockhq/airlock/internal/mount"
	"github.com/airlockhq/airlock/internal/supervisor"
	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/timer"
	"github.com/airlockhq/airlock/internal/udev"
)

// exampleRun is one example plugin running on the simulated device, with
// the udev, D-Bus, supervisor and mount capabilities wired as in host/builtin
// (the demo and the udev recording left out: the test sends the events).
type exampleRun struct {
	t    *testing.T
	h    *host.Host
	name string
	log  *testenv.Log
	sup  *supervisor.Capability
}

func (x *exampleRun) deliver(ev capability.Event) {
	x.t.Helper()
	if !x.h.Deliver(x.name, ev) {
		x.t.Fatalf("event %d refused", ev.Kind)
	}
}

func (x *exampleRun) fire(timerName string) { x.deliver(timer.Event(x.name, timerName, time.Now())) }

// wait waits for the n-th log line of the plugin that holds s.
func (x *exampleRun) wait(n int, s string) { x.t.Helper(); x.log.Wait(n, s, "plugin="+x.name) }

// uevent is a udev event for the simulated stick (sdb1, MEDIA, 1234-ABCD).
func uevent(action string) capability.Event { return blockEvent(action, "partition", true) }

// blockEvent is the simulated stick's event as devtype ("disk" for a
// whole-disk filesystem), with or without its filesystem's ID_FS_*.
func blockEvent(action, devtype string, fs bool) capability.Event {
	rec := abi.Record{
		{Key: "ACTION", Value: []byte(action)},
		{Key: "DEVPATH", Value: []byte(mount.SimDevices[0].DevPath)},
		{Key: "SUBSYSTEM", Value: []byte("block")},
		{Key: "DEVTYPE", Value: []byte(devtype)},
		{Key: "DEVNAME", Value: []byte("/dev/sdb1")},
		{Key: "SEQNUM", Value: []byte("77")},
	}
	if fs {
		rec = append(rec, abi.Record{
			{Key: "ID_FS_LABEL", Value: []byte("MEDIA")},
			{Key: "ID_FS_LABEL_ENC", Value: []byte("MEDIA")},
			{Key: "ID_FS_TYPE", Value: []byte("vfat")},
			{Key: "ID_FS_USAGE", Value: []byte("filesystem")},
			{Key: "ID_FS_UUID", Value: []byte("1234-ABCD")},
		}...)
	}
	return capability.Event{Kind: uint32(abi.EventUdev), Payload: abi.AppendRecord(nil, rec)}
}

// TestCapabilityExamples runs the supervisor, D-Bus, udev and automount
// examples in every language on the simulated device, drives each through
// the same events, and checks that each port logs, line for line, what
// the Go one logs: the same message and the same fields, in order (as
// pluginLines writes them, a field in the message text shows).
func TestCapabilityExamples(t *testing.T) {
	testenv.NeedCommand(t, "dbus-daemon", "dbus")
	examples := []struct {
		name, goDir string
		drive       func(x *exampleRun)
		wants       []string // lines the Go example must log, as a sanity check
	}{
		{"supervisor-reboot", "examples/supervisor-reboot", func(x *exampleRun) {
			x.fire("check")
			x.wait(1, "service is running")
			x.sup.Sim().Crash("main")
			x.sup.Sim().Lock("main") // the app holds its update lock: the reboot is refused
			for i := 1; i <= 3; i++ {
				x.fire("check")
				x.wait(i, "service is not running")
			}
			x.wait(1, "the update lock refused the reboot")
		}, []string{`DEBUG "service is running" service=main`, `WARN "service is not running" service=main status=Stopped strikes=3 of=3`,
			`WARN "the update lock refused the reboot; asking again at the next check" service=main`}},
		{"dbus-stop-bluetooth", "examples/dbus-stop-bluetooth", func(x *exampleRun) {
			x.wait(1, "ssh.service is out of reach")
		}, []string{`INFO "bluetooth.service stop queued" job=/org/freedesktop/systemd1/job/1`, `INFO "bluetooth.service" active_state=inactive`}},
		{"usb-logger", "examples/usb-logger", func(x *exampleRun) {
			x.deliver(uevent("add"))
			x.deliver(uevent("remove"))
			x.wait(1, "partition removed")
		}, []string{`INFO "partition plugged in" device=/dev/sdb1 label=MEDIA uuid=1234-ABCD fstype=vfat`}},
		{"webhook", "examples/webhook", func(x *exampleRun) {
			x.deliver(uevent("add"))
			x.wait(1, "webhook sent")
		}, []string{`INFO "webhook sent" label=MEDIA status=200 reply={"method":"POST","path":"/hooks/stick"`, `"Authorization":["Bearer [redacted]"]`}},
		{"automount", "plugins/automount", func(x *exampleRun) {
			// Pulled out: the plugin's udev remove finds it mounted
			// and unmounts it. As a whole-disk filesystem, announced
			// by a change (twice: mounted once), whose medium then
			// goes. Then, mounted again, the host's mount event finds
			// it first. Each is logged once.
			x.deliver(uevent("add"))
			x.wait(1, "wrote path=/media/MEDIA/hello.txt")
			x.deliver(uevent("remove"))
			x.wait(1, "pulled out while mounted")
			x.deliver(blockEvent("change", "disk", true))
			x.deliver(blockEvent("change", "disk", true))
			x.deliver(blockEvent("change", "disk", false))
			x.wait(2, "pulled out while mounted")
			if n := x.log.Count("mounted device=/dev/sdb1", "plugin="+x.name); n != 2 {
				x.t.Errorf("mounted %d times, want twice (the second change of the same medium mounts nothing)", n)
			}
			x.deliver(uevent("add"))
			x.wait(3, "wrote path=/media/MEDIA/hello.txt")
			x.deliver(capability.Event{Kind: uint32(abi.EventMount), Payload: abi.AppendRecord(nil, abi.Record{
				{Key: "action", Value: []byte("unmounted")}, {Key: "target", Value: []byte("MEDIA")},
				{Key: "source", Value: []byte("uuid:1234-ABCD")}, {Key: "device", Value: []byte("/dev/sdb1")},
				{Key: "reason", Value: []byte("device removed (mount event)")},
			})})
			x.wait(3, "pulled out while mounted")
		}, []string{`INFO "mounted" device=/dev/sdb1 path=/media/MEDIA fstype=vfat readonly=false entries=3`,
			`WARN "pulled out while mounted; unmounted (unplug only after unmounting to be sure writes are on it)" target=MEDIA device=/dev/sdb1 reason=device removed`,
			`INFO "mounted" device=/dev/sdb1 path=/media/MEDIA fstype=vfat readonly=false entries=4`,
			`WARN "pulled out while mounted; unmounted (unplug only after unmounting to be sure writes are on it)" target=MEDIA device=/dev/sdb1 reason=medium removed`,
			`WARN "pulled out while mounted; unmounted (unplug only after unmounting to be sure writes are on it)" target=MEDIA device=/dev/sdb1 reason=device removed (mount event)`}},
	}
	root := testenv.RepoRoot(t)
	for _, ex := range examples {
		var want []string
		for _, lang := range testenv.Langs {
			dir := ex.goDir
			if lang.Name != "go" {
				dir = "examples/" + ex.name + "-" + lang.Name
			}
			t.Run(ex.name+"/"+lang.Name, func(t *testing.T) {
				b, err := os.ReadFile(filepath.Join(root, dir, "plugin.toml"))
				if err != nil {
					t.Fatalf("no %s example in %s: %v", ex.name, lang.Name, err)
				}
				// The test fires the timers itself.
				m := strings.Replace(string(b), `every = "30s"`, `every = "24h"`, 1)
				m = strings.Replace(m, `write_file = ""`, `write_file = "hello.txt"`, 1)
				name := filepath.Base(dir)
				got := runCapExample(t, name, m, lang.Build(t, dir), ex.drive)
				if lang.Name == "go" {
					want = got
					for _, w := range ex.wants {
						if !strings.Contains(strings.Join(got, "\n"), w) {
							t.Errorf("%s did not log %q:\n  %s", dir, w, strings.Join(got, "\n  "))
						}
					}
					return
				}
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("%s logged\n  %s\nthe Go example logged\n  %s", dir, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
				}
			})
		}
	}
}

func runCapExample(t *testing.T, name, manifest, wasm string, drive func(*exampleRun)) []string {
	dir := t.TempDir()
	testenv.InstallPlugin(t, filepath.Join(dir, "plugins"), name, manifest, wasm)
	rt := "device = \"sim\"\n" + runtimeTOML + "[udev]\nreplay = \"none\"\n[log]\nlevel = \"debug\"\n[http.secrets.webhook]\nenv = \"WEBHOOK_TOKEN\"\n"
	if err := os.WriteFile(filepath.Join(dir, "runtime.toml"), []byte(rt), 0o644); err != nil {
		t.Fatal(err)
	}
	u := udev.New()
	m := mount.New(mount.Options{Devices: u.Devices()})
	sup := supervisor.NewCapability(supervisor.CapabilityOptions{Getenv: func(string) string { return "" }})
	caps := []capability.Capability{u, dbus.New(), sup, m, httpout.New(httpout.Options{Getenv: func(string) string { return "" }})}
	log, logger := testenv.NewLog(t)
	// The plugin's lines, and the host's when a handler fails.
	lines := &pluginLines{Handler: logger.Handler(), mu: new(sync.Mutex), lines: new([]string), also: []string{"handler reported an error"}}
	logger = slog.New(lines)
	h, err := host.New(filepath.Join(dir, "runtime.toml"), host.Options{Logger: logger, Environ: environ, Capabilities: caps})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	log.Wait(1, "plugin loaded", "plugin="+name)
	drive(&exampleRun{t: t, h: h, name: name, log: log, sup: sup})
	cancel()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("host did not stop")
	}
	lines.mu.Lock()
	defer lines.mu.Unlock()
	var out []string
	for _, l := range *lines.lines {
		out = append(out, strings.ReplaceAll(l, `"`+name+`"`, `"<plugin>"`))
	}
	return out
}

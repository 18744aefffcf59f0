package udev

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/internal/testenv"
)

// sink collects what the capability delivers, as a plugin queue would get it.
type sink struct {
	mu   sync.Mutex
	got  []delivery
	cond chan struct{}
}

type delivery struct {
	plugin string
	ev     capability.Event
	rec    abi.Record
}

func newSink() *sink { return &sink{cond: make(chan struct{})} }

func (s *sink) deliver(plugin string, ev capability.Event) bool {
	rec, err := abi.DecodeRecord(ev.Payload)
	if err != nil {
		panic(err)
	}
	s.mu.Lock()
	s.got = append(s.got, delivery{plugin, ev, rec})
	close(s.cond)
	s.cond = make(chan struct{})
	s.mu.Unlock()
	return true
}

// wait returns the deliveries once there are n, failing after a generous
// bound (a liveness guard, not a timing assertion).
func (s *sink) wait(t *testing.T, n int) []delivery {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		s.mu.Lock()
		got, c := append([]delivery(nil), s.got...), s.cond
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-c:
		case <-deadline:
			t.Fatalf("have %d deliveries, want %d: %v", len(got), n, summary(got))
		}
	}
}

func summary(ds []delivery) string {
	var b strings.Builder
	for _, d := range ds {
		a, _ := d.rec.Get("ACTION")
		p, _ := d.rec.Get("DEVPATH")
		l, _ := d.rec.Get("ID_FS_LABEL")
		s, _ := d.rec.Get(Synth)
		fmt.Fprintf(&b, "%s %s %s", d.plugin, a, p[strings.LastIndexByte(p, '/')+1:])
		if l != "" {
			b.WriteString(" label=" + l)
		}
		if s != "" {
			b.WriteString(" synth=" + s)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// startReplay runs the capability on a recording, played instantly.
func startReplay(t *testing.T, recording string, subs map[string]Rules) (*Udev, *sink) {
	t.Helper()
	u := New()
	file := filepath.Join(t.TempDir(), "rec.udev")
	if err := os.WriteFile(file, []byte(recording), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Source, cfg.Replay, cfg.Instant = "replay", file, true
	_, logger := testenv.NewLog(t)
	if err := u.Provision(context.Background(), capability.Env{Config: &cfg, Logger: logger}); err != nil {
		t.Fatal(err)
	}
	for p, rs := range subs {
		u.Subscribe(p, rs)
	}
	s := newSink()
	if err := u.Start(context.Background(), s.deliver); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	return u, s
}

func event(ts float64, action, devpath, subsystem string, props ...string) string {
	s := fmt.Sprintf("UDEV  [%.6f] %-8s %s (%s)\n", ts, action, devpath, subsystem)
	for _, p := range props {
		s += p + "\n"
	}
	return s + "\n"
}

var partitions = Rules{{Actions: []string{"add", "remove"}, Subsystem: "block", DevType: "partition"}}

func TestReplayRoutesSample(t *testing.T) {
	sample, _ := os.ReadFile("testdata/usb-stick.udev")
	_, s := startReplay(t, string(sample), map[string]Rules{
		"parts": partitions,
		"media": {{Subsystem: "block", Props: []propMatch{{"ID_FS_LABEL", mustGlob("MEDIA")}}}},
		"usb":   {{Subsystem: "usb", DevType: "usb_device"}},
	})
	got := summary(s.wait(t, 6))
	want := "usb add 1-2\nmedia add sdb1 label=MEDIA\nparts add sdb1 label=MEDIA\nmedia remove sdb1 label=MEDIA\nparts remove sdb1 label=MEDIA\nusb remove 1-2\n"
	if got != want {
		t.Errorf("deliveries:\n%s\nwant:\n%s", got, want)
	}
	d := s.wait(t, 6)[1]
	if d.ev.Kind != uint32(abi.EventUdev) || d.ev.Coalesce != "" {
		t.Errorf("kind %d coalesce %q; want udev and no coalescing of an add", d.ev.Kind, d.ev.Coalesce)
	}
	var keys []string
	for _, f := range d.rec[:6] {
		keys = append(keys, f.Key)
	}
	if k := strings.Join(keys, ","); k != "ACTION,DEVPATH,SUBSYSTEM,DEVTYPE,DEVNAME,SEQNUM" {
		t.Errorf("record starts %s", k)
	}
}

// Changes of one device share a coalescing key until an add or remove of
// it, so a storm collapses in a plugin's queue but never jumps over a
// replug; adds and removes are never coalesced.
func TestCoalesceKeys(t *testing.T) {
	const disk = "/devices/virtual/block/loop3"
	rec := event(1, "change", disk, "block") + event(2, "change", disk, "block") +
		event(3, "change", "/devices/virtual/block/loop4", "block") +
		event(4, "remove", disk, "block") + event(5, "add", disk, "block") + event(6, "change", disk, "block")
	_, s := startReplay(t, rec, map[string]Rules{"all": {{Subsystem: "block"}}})
	ds := s.wait(t, 6)
	k := func(i int) string { return ds[i].ev.Coalesce }
	switch {
	case k(0) == "" || k(0) != k(1):
		t.Errorf("a storm of changes does not share a key: %q %q", k(0), k(1))
	case k(2) == k(0):
		t.Errorf("two devices share a key %q", k(2))
	case k(3) != "" || k(4) != "":
		t.Errorf("remove or add has a key: %q %q", k(3), k(4))
	case k(5) == "" || k(5) == k(0):
		t.Errorf("a change after a replug shares the old key: %q", k(5))
	}
}

// A plugin that subscribes after the start gets a coldplug add for each
// device still present, and only it does.
func TestColdplugOnSubscribe(t *testing.T) {
	rec := event(1, "add", "/devices/x/block/sda", "block", "DEVTYPE=disk", "DEVNAME=/dev/sda") +
		event(2, "add", "/devices/x/block/sda/sda1", "block", "DEVTYPE=partition", "DEVNAME=/dev/sda1", "ID_FS_LABEL=BOOT") +
		event(3, "add", "/devices/x/block/sdb", "block", "DEVTYPE=disk") +
		event(4, "add", "/devices/x/block/sdb/sdb1", "block", "DEVTYPE=partition", "ID_FS_LABEL=GONE") +
		event(5, "remove", "/devices/x/block/sdb/sdb1", "block", "DEVTYPE=partition")
	u, s := startReplay(t, rec, map[string]Rules{"first": partitions})
	s.wait(t, 3)
	u.Subscribe("late", partitions)
	ds := s.wait(t, 4)
	if got := summary(ds[3:]); got != "late add sda1 label=BOOT synth=coldplug\n" {
		t.Errorf("late subscriber got:\n%s", got)
	}
	// A recording's remove says what the recording says: only what we
	// probed ourselves is remembered and repeated (see the loop test).
	if got := summary(ds[2:3]); got != "first remove sdb1\n" {
		t.Errorf("remove: %s", got)
	}
}

// scanSysfs reads the real /sys (no root needed): the loop devices that
// every Linux machine with the loop driver has.
func TestScanSysfs(t *testing.T) {
	if _, err := os.Stat("/sys/class/block"); err != nil {
		testenv.Missing(t, "/sys is not mounted")
	}
	evs := scanSysfs("/sys", map[string]bool{"block": true}, false)
	if len(evs) == 0 {
		testenv.Missing(t, "no block devices in /sys/class/block")
	}
	for i, e := range evs {
		if e.Action != "add" || e.Subsystem != "block" || !strings.HasPrefix(e.DevPath, "/devices/") || e.DevName != "/dev/"+e.Kernel() {
			t.Errorf("scanned %+v", e)
		}
		if e.DevType != "disk" && e.DevType != "partition" {
			t.Errorf("%s: DEVTYPE %q", e.DevPath, e.DevType)
		}
		if i > 0 && evs[i-1].DevPath >= e.DevPath {
			t.Errorf("not in DEVPATH order: %s, %s", evs[i-1].DevPath, e.DevPath)
		}
	}
	if len(scanSysfs("/sys", map[string]bool{"no-such-subsystem": true}, false)) != 0 {
		t.Error("an unknown subsystem found devices")
	}
}

// The probe on a real vfat image made by mkfs.vfat: the properties that a
// kernel event lacks.
func TestProbeNode(t *testing.T) {
	mkfs := testenv.NeedCommand(t, "mkfs.vfat", "dosfstools")
	img := filepath.Join(t.TempDir(), "fat.img")
	if err := os.WriteFile(img, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(mkfs, "-n", "MEDIA 1", "-i", "1234ABCD", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat: %v\n%s", err, b)
	}
	p, err := probeProps(img)
	if err != nil {
		t.Fatal(err)
	}
	if p["ID_FS_TYPE"] != "vfat" || p["ID_FS_LABEL"] != "MEDIA_1" || p["ID_FS_LABEL_ENC"] != `MEDIA\x201` || p["ID_FS_UUID"] != "1234-ABCD" {
		t.Errorf("probed %v", p)
	}
	empty := filepath.Join(t.TempDir(), "empty.img")
	os.WriteFile(empty, make([]byte, 1<<20), 0o644)
	if p, err := probeProps(empty); err != nil || len(p) != 0 {
		t.Errorf("a blank device gave %v, %v; want nothing", p, err)
	}
}

func TestDevNode(t *testing.T) {
	for name, want := range map[string]string{"sdb1": "/dev/sdb1", "/dev/sdb1": "/dev/sdb1", "bus/usb/001/005": "/dev/bus/usb/001/005",
		"../etc/passwd": "", "/etc/passwd": "", "": ""} {
		var e UEvent
		e.set("DEVNAME", name)
		if got := e.devNode(); got != want {
			t.Errorf("DEVNAME=%s: node %q, want %q", name, got, want)
		}
	}
}

// After the socket lost events (ENOBUFS), a rescan of the real /sys
// reports what changed: a device we thought present but gone gets a
// remove, and one present but unknown gets an add, both marked "resync".
func TestResync(t *testing.T) {
	if _, err := os.Stat("/sys/class/block"); err != nil {
		testenv.Missing(t, "/sys is not mounted")
	}
	present := scanSysfs("/sys", map[string]bool{"block": true}, false)
	if len(present) == 0 {
		testenv.Missing(t, "no block devices in /sys/class/block")
	}
	u := New()
	u.cfg.Source, u.cfg.Probe = "kernel", false
	s := newSink()
	u.deliver = s.deliver
	u.Subscribe("all", Rules{{Subsystem: "block"}}) // not started: no source, no coldplug
	u.ctx = context.Background()
	u.mu.Lock()
	for _, ev := range present[1:] { // the first device's add was "lost"
		u.remember(&ev)
	}
	ghost := UEvent{Action: "add", Subsystem: "block", DevType: "partition", DevPath: "/devices/virtual/block/loop9/loop9p7", DevName: "/dev/loop9p7"}
	u.remember(&ghost) // its remove was "lost"
	u.resyncLocked()
	u.mu.Unlock()
	got := summary(s.wait(t, 2))
	want := fmt.Sprintf("all add %s synth=resync\nall remove loop9p7 synth=resync\n", present[0].Kernel())
	if got != want {
		t.Errorf("resync delivered:\n%s\nwant:\n%s", got, want)
	}
}

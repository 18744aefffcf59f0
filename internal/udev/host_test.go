package udev_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/udev"
)

const guest = "internal/udev/testdata/guest"

// runHost runs the real host with the udev capability, the runtime.toml
// text given, and one plugin per manifest (all built from the test guest).
func runHost(t *testing.T, runtime string, manifests map[string]string) *testenv.Log {
	t.Helper()
	dir := t.TempDir()
	for name, m := range manifests {
		testenv.PluginDir(t, filepath.Join(dir, "plugins"), name, m, guest)
	}
	rt := "plugins = [\"plugins\"]\nstate_dir = \"state\"\n" + runtime + "\n[log]\naudit = \"off\"\n"
	if err := os.WriteFile(filepath.Join(dir, "runtime.toml"), []byte(rt), 0o644); err != nil {
		t.Fatal(err)
	}
	log, logger := testenv.NewLog(t)
	h, err := host.New(filepath.Join(dir, "runtime.toml"), host.Options{Logger: logger, Capabilities: []capability.Capability{udev.New()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(60 * time.Second):
			t.Error("host did not stop")
		}
	})
	return log
}

func abs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// The simulated device's path: a recording played through the real host
// into plugins built from source.
func TestHostReplay(t *testing.T) {
	log := runHost(t, fmt.Sprintf("[udev]\nsource = \"replay\"\nreplay = %q\nreplay_pace = \"instant\"\n", abs(t, "testdata/usb-stick.udev")),
		map[string]string{
			"parts": "name = \"parts\"\nversion = \"1.0.0\"\n[[trigger.udev]]\nsubsystem = \"block\"\ndevtype = \"partition\"\naction = [\"add\", \"remove\"]\n",
			"usbdev": "name = \"usbdev\"\nversion = \"1.0.0\"\n[[trigger.udev]]\nsubsystem = \"usb\"\ndevtype = \"usb_device\"\n" +
				"properties = { ID_VENDOR = \"San*\" }\n",
		})
	for _, action := range []string{"add", "remove"} {
		log.Wait(1, "uevent action="+action, "subsystem=block devtype=partition devname=/dev/sdb1 label=MEDIA uuid=1234-ABCD fstype=vfat", "plugin=parts")
		log.Wait(1, "uevent action="+action, "subsystem=usb devtype=usb_device", "plugin=usbdev")
	}
	if n := log.Count("uevent", "plugin=parts", "subsystem=usb"); n != 0 {
		t.Errorf("parts saw %d usb events", n)
	}
	if n := log.Count("uevent", "plugin=parts"); n != 2 {
		t.Errorf("parts saw %d events, want add and remove:\n%s", n, strings.Join(log.Lines(), "\n"))
	}
}

// A flood into a queue of one: every event is either handled or counted in
// a "dropped" notice, exactly; none is lost in silence.
func TestHostOverflowCounted(t *testing.T) {
	const n = 300
	var rec strings.Builder
	for i := range n {
		fmt.Fprintf(&rec, "KERNEL[%d.000000] add      /devices/virtual/tty/ttyX%03d (tty)\nDEVNAME=ttyX%03d\nSEQNUM=%d\n\n", i+1, i, i, i+1)
	}
	file := filepath.Join(t.TempDir(), "flood.udev")
	if err := os.WriteFile(file, []byte(rec.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	log := runHost(t, fmt.Sprintf("[udev]\nsource = \"replay\"\nreplay = %q\nreplay_pace = \"instant\"\n", file),
		map[string]string{"flood": "name = \"flood\"\nversion = \"1.0.0\"\n[limits]\nqueue = 1\n[[trigger.udev]]\nsubsystem = \"tty\"\nkernel = \"ttyX*\"\n"})
	deadline := time.Now().Add(60 * time.Second) // liveness only
	for {
		handled, dropped := 0, 0
		for _, l := range log.Lines() {
			switch {
			case strings.Contains(l, "INFO uevent action=add subsystem=tty") && strings.Contains(l, "plugin=flood"):
				handled++
			case strings.Contains(l, "WARN dropped count=") && strings.Contains(l, "plugin=flood"):
				f := strings.Fields(l[strings.Index(l, "count="):])[0]
				c, _ := strconv.Atoi(strings.TrimPrefix(f, "count="))
				dropped += c
			}
		}
		if handled+dropped == n {
			t.Logf("%d handled, %d dropped and reported", handled, dropped)
			return
		}
		if handled+dropped > n || time.Now().After(deadline) {
			t.Fatalf("%d handled + %d dropped, want %d in all", handled, dropped, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

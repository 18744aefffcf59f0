package plugintest_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host/plugintest"
	"github.com/airlockhq/airlock/internal/mount"
)

func TestHelloGreets(t *testing.T) {
	h := plugintest.New(t, "../../examples/hello", plugintest.Options{Environ: []string{"BALENA_DEVICE_TYPE=rpi4"}})
	h.Logs().Wait(1, "hello from a sandboxed plugin device_type=rpi4", "plugin=hello")
	h.Close()
	h.Logs().Wait(1, "goodbye", "plugin=hello")
}

// TestTickerCountsInData: the ticker keeps one count in /data across its
// ticks. Its own timers (every 2 s, and each minute) tick too, so the test
// reads the counts rather than assume that only its two ticks ran: every
// tick has the next count, whichever timer it came from.
func TestTickerCountsInData(t *testing.T) {
	h := plugintest.New(t, "../../examples/ticker")
	h.Timer("manual")
	h.Logs().Wait(1, "tick timer=manual count=", "plugin=ticker")
	h.Timer("manual-2")
	h.Logs().Wait(1, "tick timer=manual-2 count=", "plugin=ticker")
	var counts []int
	for _, l := range h.Logs().Lines() {
		if !strings.Contains(l, "plugin=ticker") {
			continue
		}
		if _, rest, ok := strings.Cut(l, "tick timer="); ok {
			_, c, _ := strings.Cut(rest, " count=")
			n, err := strconv.Atoi(strings.Fields(c)[0])
			if err != nil {
				t.Fatalf("tick line without a count: %q", l)
			}
			counts = append(counts, n)
		}
	}
	for i, n := range counts {
		if n != i+1 {
			t.Fatalf("tick %d has count %d, want %d (counts %v): the count is not kept across ticks", i+1, n, i+1, counts)
		}
	}
	if len(counts) < 2 {
		t.Fatalf("ticks seen: %v, want the two the test sent", counts)
	}
}

func TestUdevReachesMatchingPlugin(t *testing.T) {
	h := plugintest.New(t, "../../examples/usb-logger")
	props := map[string]string{"SUBSYSTEM": "block", "DEVTYPE": "partition", "DEVNAME": "/dev/sdz1",
		"ID_FS_LABEL": "MEDIA", "ID_FS_LABEL_ENC": "MEDIA", "ID_FS_UUID": "1234-ABCD", "ID_FS_TYPE": "vfat"}
	// A disk, not a partition: the plugin's rule does not match it.
	h.Udev("add", "/devices/virtual/block/sdz", map[string]string{"SUBSYSTEM": "block", "DEVTYPE": "disk", "DEVNAME": "/dev/sdz"})
	h.Udev("add", "/devices/virtual/block/sdz/sdz1", props)
	h.Logs().Wait(1, "label=MEDIA", "uuid=1234-ABCD", "plugin=usb-logger")
	if n := h.Logs().Count("/dev/sdz ", "plugin=usb-logger"); n != 0 {
		t.Errorf("the disk event reached a partition-only plugin")
	}
}

func TestSupervisorState(t *testing.T) {
	h := plugintest.New(t, "../../examples/hello")
	if s := h.Supervisor().State(); s.Reboots != 0 {
		t.Errorf("a fresh simulated device has %d reboots", s.Reboots)
	}
}

// TestConfigAndDataSeed: Options.Config overrides the manifest's [config]
// and Options.Data seeds /data, which DataFile reads back.
func TestConfigAndDataSeed(t *testing.T) {
	h := plugintest.New(t, "../../examples/ticker", plugintest.Options{Data: map[string]string{"count": "41"}})
	h.Timer("manual")
	h.Logs().Wait(1, "tick timer=manual count=42", "plugin=ticker")
	if got := string(h.DataFile("count")); got != "42" {
		t.Errorf("/data/count = %q after a tick from 41", got)
	}
}

// TestFailsFastOnError: a wait ends when the plugin's handler fails, not
// at its timeout (ten minutes here): /data/count is a directory, so the
// ticker cannot write its count.
func TestFailsFastOnError(t *testing.T) {
	h := plugintest.New(t, "../../examples/ticker", plugintest.Options{Timeout: 10 * time.Minute,
		Data: map[string]string{"count/in-the-way": ""}})
	h.Timer("manual")
	err := h.Logs().Await(1, "tick timer=manual count=1")
	if err == nil || !strings.Contains(err.Error(), "this line means there will be no more:\n  ERROR timer handler: open /data/count: Is a directory") {
		t.Fatalf("wait after a failed handler: %v", err)
	}
}

// TestAutomountWritesOnStick: a stick of the test's own (label, type,
// files) is plugged in, the automount plugin mounts it and writes its
// write_file there, the test reads that file back, and pulling the stick
// unmounts it.
func TestAutomountWritesOnStick(t *testing.T) {
	h := plugintest.New(t, "../../plugins/automount", plugintest.Options{
		Config: map[string]string{"write_file": "airlock-was-here.txt"},
		Sticks: []mount.Stick{{Label: "LOGS", FSType: "ext4", Files: map[string]string{"a.txt": "one", "dir/b.txt": "two"}}},
	})
	h.Plug("LOGS")
	h.Logs().Wait(1, "mounted", "fstype=ext4", "plugin=automount")
	h.Logs().Wait(1, "wrote", "LOGS/airlock-was-here.txt", "plugin=automount")
	if got := string(h.StickFile("LOGS", "airlock-was-here.txt")); got != "written by the airlock automount plugin\n" {
		t.Fatalf("file on the stick: %q", got)
	}
	if got := string(h.StickFile("LOGS", "dir/b.txt")); got != "two" {
		t.Fatalf("seeded file on the stick: %q", got)
	}
	h.Pull("LOGS")
	// Unmounted by the plugin or by the host, whichever saw the event first.
	h.Logs().Wait(1, "unmounted capability=mount plugin=automount target=LOGS device=/dev/sdc1")
	// Pulled out and unmounted, the stick keeps what the plugin wrote.
	if got := string(h.StickFile("LOGS", "airlock-was-here.txt")); got != "written by the airlock automount plugin\n" {
		t.Fatalf("file on the pulled-out stick: %q", got)
	}
}

package security

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/internal/testenv"
	"github.com/airlockhq/airlock/host/udev"
)

const counter = "host/security/testdata/counter"

// writeStorm writes n distinct tty add events in udevadm's format.
func writeStorm(t *testing.T, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "KERNEL[%d.%06d] add      /devices/virtual/tty/s%d (tty)\nDEVNAME=s%d\nSEQNUM=%d\n\n", 1+i/1000000, i%1000000, i, i, i+1)
	}
	file := filepath.Join(t.TempDir(), "storm.udev")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

var totals = regexp.MustCompile(`totals handled=(\d+) dropped=(\d+)`)

func heap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// An event storm: 100k uevents through the replay source into 50 plugins.
// Every plugin's handled + dropped equals what was sent, exactly; the host's
// heap stays bounded (queues are bounded, nothing buffers per event); and
// the run ends (no deadlock).
func TestEventStorm(t *testing.T) {
	const events, plugins = 100_000, 50
	storm := writeStorm(t, events)
	dir := t.TempDir()
	for i := range plugins {
		name := fmt.Sprintf("p%02d", i)
		testenv.PluginDir(t, filepath.Join(dir, "plugins"), name, fmt.Sprintf("name = %q\nversion = \"0.1.0\"\n[[trigger.udev]]\nsubsystem = \"tty\"\n", name), counter)
	}
	rt := fmt.Sprintf("plugins = [\"plugins\"]\nstate_dir = \"state\"\n[udev]\nsource = \"replay\"\nreplay = %q\nreplay_pace = \"instant\"\n[log]\naudit = \"off\"\n", storm)
	if err := os.WriteFile(filepath.Join(dir, "runtime.toml"), []byte(rt), 0o644); err != nil {
		t.Fatal(err)
	}
	log, logger := testenv.NewLog(t)
	u := udev.New()
	h, err := host.New(filepath.Join(dir, "runtime.toml"), host.Options{Logger: logger, Capabilities: []capability.Capability{u}})
	if err != nil {
		t.Fatal(err)
	}
	before := heap()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	// Wait until the replay has routed every event (liveness bound only).
	deadline := time.Now().Add(5 * time.Minute)
	for u.Stats().Events < events {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("replay stalled at %+v", u.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	during := heap()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Minute):
		t.Fatal("host did not stop after the storm (deadlock?)")
	}
	st := u.Stats()
	if st.Deliveries+st.Refused != events*plugins {
		t.Errorf("udev stats %+v: deliveries + refused = %d, want %d", st, st.Deliveries+st.Refused, events*plugins)
	}
	var sumHandled, sumDropped uint64
	seen := 0
	for _, l := range log.Lines() {
		m := totals.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		seen++
		hd, _ := strconv.ParseUint(m[1], 10, 64)
		dr, _ := strconv.ParseUint(m[2], 10, 64)
		sumHandled += hd
		sumDropped += dr
		if hd+dr != events {
			t.Errorf("%s: handled + dropped = %d, want %d", l, hd+dr, events)
		}
	}
	if seen != plugins {
		t.Errorf("%d plugins reported totals, want %d", seen, plugins)
	}
	if sumDropped != st.Refused {
		t.Errorf("plugins counted %d dropped, the router %d refused", sumDropped, st.Refused)
	}
	grew := int64(during) - int64(before)
	t.Logf("%d events x %d plugins: %d handled, %d dropped; heap %d MiB before, %d MiB at the end of the storm", events, plugins, sumHandled, sumDropped, before>>20, during>>20)
	// 50 plugin runtimes hold their instances' memory; the bound is
	// generous, but an unbounded queue or per-event leak would pass it.
	if grew > plugins*16<<20+128<<20 {
		t.Errorf("heap grew by %d MiB during the storm", grew>>20)
	}
}

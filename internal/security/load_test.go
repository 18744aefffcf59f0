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

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/internal/plugin"
	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/udev"
)

const counter = "internal/security/testdata/counter"

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

// runStorm runs plugins counting plugins (prefix00, prefix01, ...), each
// with one [[trigger.udev]] rule for subsystem, on the replay of file,
// until the replay has routed events; then it calls atPeak and stops the
// host. limits is runtime.toml's [limits] body.
func runStorm(t *testing.T, file string, events, plugins int, prefix, subsystem, limits string, atPeak func()) (*testenv.Log, *udev.Udev, *host.Host) {
	t.Helper()
	dir := t.TempDir()
	for i := range plugins {
		name := fmt.Sprintf("%s%02d", prefix, i)
		testenv.PluginDir(t, filepath.Join(dir, "plugins"), name, fmt.Sprintf("name = %q\nversion = \"0.1.0\"\n[[trigger.udev]]\nsubsystem = %q\n", name, subsystem), counter)
	}
	rt := fmt.Sprintf("plugins = [\"plugins\"]\nstate_dir = \"state\"\n[udev]\nsource = \"replay\"\nreplay = %q\nreplay_pace = \"instant\"\n[log]\naudit = \"off\"\n[limits]\n%s", file, limits)
	if err := os.WriteFile(filepath.Join(dir, "runtime.toml"), []byte(rt), 0o644); err != nil {
		t.Fatal(err)
	}
	log, logger := testenv.NewLog(t)
	u := udev.New()
	h, err := host.New(filepath.Join(dir, "runtime.toml"), host.Options{Logger: logger, Capabilities: []capability.Capability{u}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	// Wait until the replay has routed every event (liveness bound only).
	for deadline := time.Now().Add(5 * time.Minute); u.Stats().Events < uint64(events); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("replay stalled at %+v", u.Stats())
		}
	}
	atPeak()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Minute):
		t.Fatal("host did not stop after the storm (deadlock?)")
	}
	return log, u, h
}

// An event storm: 100k uevents through the replay source into 50 plugins.
// Every plugin's handled + dropped equals what was sent, exactly; the host's
// heap stays bounded (queues are bounded, nothing buffers per event); and
// the run ends (no deadlock).
func TestEventStorm(t *testing.T) {
	const events, plugins = 100_000, 50
	before := heap()
	var during uint64
	log, u, _ := runStorm(t, writeStorm(t, events), events, plugins, "p", "tty", "", func() { during = heap() })
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

// A storm of "change" events of one device (a card reader polling, a
// battery): 100,000 real-format uevents through the replay source into 10
// plugins. A newer change replaces a queued one of the same device; each
// replaced event is counted as coalesced, apart from dropped, so that for
// every plugin handled + dropped + coalesced = sent, exactly, and what the
// plugin was told equals its status. (Before, 0 of the replaced events
// were counted anywhere.)
func TestChangeStormCoalescedCounted(t *testing.T) {
	const events, plugins = 100_000, 10
	var b strings.Builder
	b.WriteString("KERNEL[1.000000] add      /devices/virtual/block/storm0 (block)\nDEVNAME=storm0\nDEVTYPE=disk\nSEQNUM=1\n\n")
	for i := 1; i < events; i++ {
		fmt.Fprintf(&b, "KERNEL[%d.%06d] change   /devices/virtual/block/storm0 (block)\nDEVNAME=storm0\nDEVTYPE=disk\nSEQNUM=%d\n\n", 1+i/1000000, i%1000000, i+1)
	}
	storm := filepath.Join(t.TempDir(), "changes.udev")
	if err := os.WriteFile(storm, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// The rate limit high enough that the queue and coalescing, not the
	// rate, decide (both are counted either way).
	log, _, h := runStorm(t, storm, events, plugins, "c", "block", "events_per_second = 10000\n", func() {})
	status := map[string]plugin.Status{}
	for _, st := range h.Status() {
		status[st.Name] = st
	}
	full := regexp.MustCompile(`totals handled=(\d+) dropped=(\d+) coalesced=(\d+)"? plugin=(c\d+)`)
	seen := 0
	var sumCoalesced uint64
	for _, l := range log.Lines() {
		m := full.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		seen++
		hd, _ := strconv.ParseUint(m[1], 10, 64)
		dr, _ := strconv.ParseUint(m[2], 10, 64)
		co, _ := strconv.ParseUint(m[3], 10, 64)
		sumCoalesced += co
		if hd+dr+co != events {
			t.Errorf("%s: handled + dropped + coalesced = %d, want %d", l, hd+dr+co, events)
		}
		st := status[m[4]]
		if st.Dropped != dr || st.Losses.CoalescedTotal() != co || st.Losses.Coalesced[abi.EventUdev] != co {
			t.Errorf("%s: status says dropped %d, coalesced %v", m[4], st.Dropped, st.Losses.CoalescedByKind())
		}
	}
	if seen != plugins {
		t.Errorf("%d plugins reported totals, want %d", seen, plugins)
	}
	if sumCoalesced == 0 {
		t.Error("no change was coalesced: the storm did not test coalescing")
	}
	t.Logf("%d events x %d plugins: %d coalesced in all", events, plugins, sumCoalesced)
}

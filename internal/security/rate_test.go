package security

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/builtin"
	"github.com/airlockhq/airlock/host/capability"
	mf "github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/cloud"
	"github.com/airlockhq/airlock/internal/dbus"
	"github.com/airlockhq/airlock/internal/hostrun"
	"github.com/airlockhq/airlock/internal/httpout"
	"github.com/airlockhq/airlock/internal/mount"
	"github.com/airlockhq/airlock/internal/plugin"
	"github.com/airlockhq/airlock/internal/supervisor"
	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/timer"
	"github.com/airlockhq/airlock/internal/udev"
)

// The hostile plugin's own D-Bus loop: a PropertiesChanged of hostname1
// wakes it, and it sets PrettyHostname twice, which emits two more.
const feedbackGrants = `
[[dbus.call]]
destination = "org.freedesktop.hostname1"
path = "/org/freedesktop/hostname1"
interface = "org.freedesktop.hostname1"
member = "SetPrettyHostname"

[[trigger.dbus]]
name = "hostname"
sender = "org.freedesktop.hostname1"
path = "/org/freedesktop/hostname1"
interface = "org.freedesktop.DBus.Properties"
member = "PropertiesChanged"
`

var stoppedLine = regexp.MustCompile(`stopped signals=(\d+) ticks=(\d+) dropped=(\d+)`)

// rateHost runs the hostile plugin as "p" (manifest extra and sections
// appended) on the simulated device, with runtime.toml's [limits] as given.
// began is a time before the plugin's first event could be queued.
func rateHost(t *testing.T, limits, extra string, sections ...string) (run *hostrun.Run, log *testenv.Log, began time.Time) {
	testenv.NeedCommand(t, "dbus-daemon", "dbus")
	dir := t.TempDir()
	testenv.PluginDir(t, filepath.Join(dir, "plugins"), "p", manifest("p", extra, append([]string{grants}, sections...)...), hostile)
	rt := "plugins = [\"plugins\"]\nstate_dir = \"state\"\ndevice = \"sim\"\n[admin]\nsocket = \"off\"\n[udev]\nreplay = \"none\"\n[log]\naudit = \"off\"\n[limits]\n" + limits
	if err := os.WriteFile(filepath.Join(dir, "runtime.toml"), []byte(rt), 0o644); err != nil {
		t.Fatal(err)
	}
	log, logger := testenv.NewLog(t)
	u := udev.New()
	m := mount.New(mount.Options{Devices: u.Devices()})
	caps := []capability.Capability{u, dbus.New(), supervisor.NewCapability(supervisor.CapabilityOptions{}), m, cloud.New(cloud.Options{}), httpout.New(httpout.Options{})}
	began = time.Now()
	run = hostrun.Start(t, filepath.Join(dir, "runtime.toml"), host.Options{Logger: logger, Capabilities: caps})
	log.Wait(1, "airlock running")
	log.Wait(1, "started", "plugin=p")
	return run, log, began
}

func statusOf(h *host.Host, name string) plugin.Status {
	for _, st := range h.Status() {
		if st.Name == name {
			return st
		}
	}
	return plugin.Status{}
}

// waitLosses waits until p's status shows at least n rate-limited events
// of kind (a liveness bound, not a timing assertion).
func waitLosses(t *testing.T, h *host.Host, kind abi.EventKind, n uint64) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); statusOf(h, "p").Losses.Rate[kind] < n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never %d %s events over the rate limit: %+v", n, kind, statusOf(h, "p"))
		}
	}
}

// stopAndCount stops the host and returns what the plugin handled and was
// told at its stop, with the status just before the stop.
func stopAndCount(t *testing.T, run *hostrun.Run, log *testenv.Log) (signals, ticks, told uint64, st plugin.Status) {
	t.Helper()
	st = statusOf(run.Host, "p")
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
	log.Wait(1, "stopped signals=", "plugin=p")
	var m []string
	for _, l := range log.Lines() {
		if m = stoppedLine.FindStringSubmatch(l); m != nil {
			break
		}
	}
	signals, _ = strconv.ParseUint(m[1], 10, 64)
	ticks, _ = strconv.ParseUint(m[2], 10, 64)
	told, _ = strconv.ParseUint(m[3], 10, 64)
	return signals, ticks, told, statusOf(run.Host, "p")
}

// TestHostileFeedbackLoop: a plugin that keeps itself busy (every change
// signal makes it change the property twice) ran 4,000 to 7,000 handlers
// in 4 s, growing. Under limits.events_per_second (here 5, so 50 at once)
// its handler runs are bounded by the token bucket whatever the machine's
// speed: at most 50 + 5 a second since the host started. Every event over
// the limit is counted, as dbus_signal and rate limit, in status and in
// the dropped events the plugin was told of. (The loop then starves: the
// signals over the limit were its fuel.)
func TestHostileFeedbackLoop(t *testing.T) {
	run, log, began := rateHost(t, "events_per_second = 5\n", "", feedbackGrants)
	run.Host.Deliver("p", timer.Event("p", "feedback", time.Now()))
	log.Wait(1, "feedback started", "plugin=p")
	// The loop outruns the limit at once; the events over it are lost,
	// and with them the loop's fuel.
	waitLosses(t, run.Host, abi.EventDBusSignal, 1)
	signals, _, told, st := stopAndCount(t, run, log)
	elapsed := time.Since(began).Seconds()
	bound := uint64(5*plugin.RateBurstSeconds + 5*elapsed + 1)
	t.Logf("in %.1fs the loop handled %d signals (bound %d); %d rate-limited, %d dropped in all, told %d", elapsed, signals, bound, st.Losses.RateLimited(), st.Dropped, told)
	if signals > bound {
		t.Errorf("handled %d signals in %.1fs, above the limit's bound of %d", signals, elapsed, bound)
	}
	if told != st.Dropped || st.Dropped != st.Losses.Dropped() {
		t.Errorf("the plugin was told of %d dropped, status says %d", told, st.Dropped)
	}
	if st.Losses.Rate[abi.EventDBusSignal] == 0 || st.Losses.Rate[abi.EventTimer] != 0 {
		t.Errorf("rate-limited by kind %v, want dbus_signal only", st.Losses.Rate)
	}
}

// TestHostileTimerFlood: the most timers a manifest may have (64), each at
// the shortest interval (100ms): 640 ticks a second against the default
// limit of 100 a second (1,000 at once). The ticks handled stay within the
// bucket's bound, and every other tick is counted: rate-limited or
// coalesced (a newer tick of a timer whose last one still waits), as
// timer, and the plugin was told of exactly what status counts.
func TestHostileTimerFlood(t *testing.T) {
	var timers strings.Builder
	for i := range mf.MaxTimers {
		fmt.Fprintf(&timers, "[[trigger.timer]]\nname = \"ticks:%d\"\nevery = \"100ms\"\n", i)
	}
	run, log, began := rateHost(t, "", "", timers.String())
	waitLosses(t, run.Host, abi.EventTimer, 500)
	_, ticks, told, st := stopAndCount(t, run, log)
	elapsed := time.Since(began).Seconds()
	rate := float64(mf.DefaultEventsPerSecond)
	bound := uint64(rate*plugin.RateBurstSeconds + rate*elapsed + 1)
	t.Logf("in %.1fs %d timers gave %d ticks handled (bound %d); %d rate-limited, %d coalesced, told %d dropped", elapsed, mf.MaxTimers, ticks, bound, st.Losses.RateLimited(), st.Losses.CoalescedTotal(), told)
	if ticks > bound {
		t.Errorf("handled %d ticks in %.1fs, above the limit's bound of %d", ticks, elapsed, bound)
	}
	if told != st.Dropped {
		t.Errorf("the plugin was told of %d dropped, status says %d", told, st.Dropped)
	}
	if st.Dropped != st.Losses.Rate[abi.EventTimer]+st.Losses.QueueFull[abi.EventTimer] {
		t.Errorf("dropped %d, but by kind %v", st.Dropped, st.Losses.DroppedByKind())
	}
}

// TestHostileManifests: what a manifest controls about sizes, counts and
// rates is bounded at load, with a message that says what to do.
func TestHostileManifests(t *testing.T) {
	many := func(n int, f string) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, f, i)
		}
		return b.String()
	}
	cases := []struct{ name, toml, want string }{
		{"timer every 1ns", "[[trigger.timer]]\nname = \"t\"\nevery = \"1ns\"\n", "1ns is too short"},
		{"65 timers", many(mf.MaxTimers+1, "[[trigger.timer]]\nname = \"t%d\"\nevery = \"1h\"\n"), "65 timers"},
		{"cron every second", "[[trigger.timer]]\nname = \"t\"\ncron = \"* * * * * *\"\n", "has 6 fields, want 5"},
		{"queue of a million", "[limits]\nqueue = 1000000\n", "above the runtime's ceiling of 4096"},
		{"events_per_second above the ceiling", "[limits]\nevents_per_second = 1000000\n", "above the runtime's ceiling of 10000"},
		{"events_per_second 0 (no limit)", "[limits]\nevents_per_second = 0\n", "events_per_second = 0 is too small"},
		{"257 udev rules", many(udev.MaxRules+1, "[[trigger.udev]]\nsubsystem = \"s%d\"\n"), "257 [[trigger.udev]] rules"},
	}
	rt := mf.DefaultRuntime()
	rt.File = filepath.Join(t.TempDir(), "runtime.toml")
	schema := host.Schema(builtin.Capabilities())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := mf.ParseManifest(filepath.Join(t.TempDir(), "plugin.toml"), []byte("name = \"p\"\nversion = \"1.0.0\"\n"+c.toml), &rt, schema)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want a refusal saying %q", err, c.want)
			}
		})
	}
}

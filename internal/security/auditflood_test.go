package security

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/internal/cloud"
	"github.com/airlockhq/airlock/internal/dbus"
	"github.com/airlockhq/airlock/internal/hostrun"
	"github.com/airlockhq/airlock/internal/httpout"
	"github.com/airlockhq/airlock/internal/mount"
	"github.com/airlockhq/airlock/internal/supervisor"
	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/timer"
	"github.com/airlockhq/airlock/internal/udev"
)

// TestAuditFloodIsBounded: a plugin granted one supervisor operation
// makes 100,000 denied calls in one handler, all the same, then all
// different. Before the gate folded and throttled, each call was a record
// (issue 15 measured 300,000 records, 74 MiB, in 3 s). Now the audit file
// holds a bounded number of records, and their counts add up to exactly
// the calls made, by decision, as the plugin saw them.
func TestAuditFloodIsBounded(t *testing.T) {
	dir := t.TempDir()
	// The handler timeout is the ceiling's, so that only a hang fails on a
	// loaded machine: 100,000 calls take about 2 s on an idle one.
	testenv.PluginDir(t, filepath.Join(dir, "plugins"), "flooder", manifest("flooder", "[limits]\nhandler_timeout = \"60s\"", grants), hostile)
	rt := "plugins = [\"plugins\"]\nstate_dir = \"state\"\n[log]\naudit = \"audit/audit.jsonl\"\n"
	if err := os.WriteFile(filepath.Join(dir, "runtime.toml"), []byte(rt), 0o644); err != nil {
		t.Fatal(err)
	}
	log, logger := testenv.NewLog(t)
	u := udev.New()
	m := mount.New(mount.Options{Devices: u.Devices()})
	caps := []capability.Capability{u, dbus.New(), supervisor.NewCapability(supervisor.CapabilityOptions{}), m, cloud.New(cloud.Options{}), httpout.New(httpout.Options{})}
	r := hostrun.Start(t, filepath.Join(dir, "runtime.toml"), host.Options{Logger: logger, Capabilities: caps})
	log.Wait(1, "INFO started", "plugin=flooder")
	answered := map[string]uint64{}
	line := regexp.MustCompile(`denyflood \w+ calls=(\d+) denied=(\d+) busy=(\d+) other=(\d+)`)
	for i, mode := range []string{"same", "vary"} {
		r.Host.Deliver("flooder", timer.Event("flooder", "denyflood:"+mode, time.Now()))
		log.Wait(i+1, "denyflood ")
		var m []string
		for _, l := range log.Lines() {
			if mm := line.FindStringSubmatch(l); mm != nil && regexp.MustCompile(`denyflood `+mode+` `).MatchString(l) {
				m = mm
			}
		}
		if m == nil {
			t.Fatalf("no denyflood %s line", mode)
		}
		n := func(i int) uint64 { v, _ := strconv.ParseUint(m[i], 10, 64); return v }
		if n(4) != 0 {
			t.Errorf("%s: %d calls answered other than denied or busy", mode, n(4))
		}
		answered["calls"] += n(1)
		answered["deny"] += n(2)
		answered["throttled"] += n(3)
	}
	if err := r.Stop(); err != nil { // flushes the folded counts
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit", "audit.jsonl")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	recs := auditFile(t, path)
	got := map[string]uint64{}
	var flooder int
	for _, rec := range recs {
		if rec["plugin"] != "flooder" || rec["capability"] != "supervisor" {
			continue
		}
		flooder++
		c := uint64(1)
		if v, ok := rec["count"].(float64); ok {
			c = uint64(v)
		}
		got[fmt.Sprint(rec["decision"])] += c
		got["calls"] += c
	}
	t.Logf("%d calls: %d records (%d of the flooder's), %d bytes; records say %v, the plugin saw %v", answered["calls"], len(recs), flooder, st.Size(), got, answered)
	for _, k := range []string{"calls", "deny", "throttled"} {
		if got[k] != answered[k] {
			t.Errorf("%s: the audit's counts say %d, the plugin saw %d", k, got[k], answered[k])
		}
	}
	if answered["throttled"] == 0 {
		t.Error("200,000 denied calls and the plugin was never throttled")
	}
	// Bound: two handlers, each in its window: the burst of records, one
	// folded record per key (at most 2×64+1), the throttle's record.
	if flooder > 1000 || st.Size() > 512<<10 {
		t.Errorf("%d records, %d bytes, for 200,000 calls; want at most 1000 records and 512 KiB", flooder, st.Size())
	}
}

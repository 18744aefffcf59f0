package metrics_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/internal/admin"
	"github.com/airlockhq/airlock/internal/hostrun"
	"github.com/airlockhq/airlock/internal/metrics"
	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/timer"
	"github.com/airlockhq/airlock/internal/version"
)

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitFor scrapes until every line in want is there (a liveness bound, not
// a timing assertion: handlers report after they return).
func waitFor(t *testing.T, url string, want []string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		body := scrape(t, url)
		var missing []string
		for _, w := range want {
			if !strings.Contains(body, w+"\n") {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack:\n%s\n\ngot:\n%s", strings.Join(missing, "\n"), body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var urlRe = regexp.MustCompile(`url=(http://\S+/metrics)`)

// serve runs a host on dir's plugins directory with [metrics] on and
// runtimeExtra in its runtime.toml, logging to the returned log, and
// returns the metrics' URL.
func serve(t *testing.T, dir, runtimeExtra string, o host.Options) (*host.Host, *testenv.Log, string) {
	t.Helper()
	os.MkdirAll(filepath.Join(dir, "plugins"), 0o755)
	conf := filepath.Join(dir, "runtime.toml")
	os.WriteFile(conf, []byte("plugins = [\"plugins\"]\nstate_dir = \"state\"\n"+runtimeExtra+"[metrics]\nlisten = \"127.0.0.1:0\"\n"), 0o644)
	log, logger := testenv.NewLog(t)
	o.Logger, o.Metrics = logger, metrics.ForHost
	r := hostrun.Start(t, conf, o)
	log.Wait(1, "airlock running") // after the metrics and admin listen
	for _, l := range log.Lines() {
		if m := urlRe.FindStringSubmatch(l); m != nil {
			return r.Host, log, m[1]
		}
	}
	t.Fatalf("no metrics URL in the log:\n%s", strings.Join(log.Lines(), "\n"))
	return nil, nil, ""
}

// A real host with [metrics] on, scraped over HTTP: events by kind,
// handler durations, drops, state and queue per plugin, and the gate's
// decisions per capability.
func TestEndpoint(t *testing.T) {
	dir := t.TempDir()
	testenv.PluginDir(t, filepath.Join(dir, "plugins"), "echo", `name = "echo"
version = "1.0.0"
[limits]
queue = 2
handler_timeout = "30s"
[[trigger.timer]]
name = "tick"
cron = "0 0 1 1 *"
`, "internal/admin/testdata/echo")
	_, auditLogger := testenv.NewLog(t)
	h, log, url := serve(t, dir, "", host.Options{Audit: auditLogger})
	ctx := context.Background()
	log.Wait(1, "started tag=", "plugin=echo")

	// One slow tick holds the handler; behind it two events fit the
	// queue and three are dropped.
	h.Deliver("echo", timer.Event("echo", "slow:2s", time.Now()))
	log.Wait(1, "slow begin", "plugin=echo")
	for i := 1; i <= 5; i++ {
		h.Deliver("echo", timer.Event("echo", fmt.Sprintf("seq:%d", i), time.Now()))
	}
	// A newer tick of seq:2 replaces the queued one: coalesced, not dropped.
	h.Deliver("echo", timer.Event("echo", "seq:2", time.Now()))
	log.Wait(1, "event dropped", "count=3")
	log.Wait(1, "event timer", "name=seq:2")

	// Admin requests go through the gate too: one allowed, one denied.
	c := admin.NewClient(filepath.Join(dir, "state", "admin.sock"))
	c.Status(ctx)
	c.Trigger(ctx, admin.TriggerRequest{Plugin: "echo", Kind: "timer", Args: []string{"name=nope"}})

	body := waitFor(t, url, []string{
		`airlock_plugin_events_total{kind="start",plugin="echo"} 1`,
		`airlock_plugin_events_total{kind="timer",plugin="echo"} 3`,
		`airlock_plugin_events_total{kind="dropped",plugin="echo"} 1`,
		`airlock_plugin_handler_duration_seconds_count{kind="timer",plugin="echo"} 3`,
		// Failures start at 0 for each kind the plugin has handled.
		`airlock_plugin_handler_failures_total{kind="start",plugin="echo"} 0`,
		`airlock_plugin_handler_failures_total{kind="timer",plugin="echo"} 0`,
		`airlock_plugin_events_dropped_total{kind="timer",plugin="echo",reason="queue_full"} 3`,
		`airlock_plugin_events_dropped_total{kind="timer",plugin="echo",reason="rate_limit"} 0`,
		`airlock_plugin_events_dropped_total{kind="udev",plugin="echo",reason="queue_full"} 0`,
		`airlock_plugin_events_coalesced_total{kind="timer",plugin="echo"} 1`,
		`airlock_plugin_state{plugin="echo",state="running"} 1`,
		`airlock_plugin_state{plugin="echo",state="crash-looping"} 0`,
		`airlock_plugin_queue_depth{plugin="echo"} 0`,
		`airlock_plugin_restarts_total{plugin="echo"} 0`,
		`airlock_plugins_failed 0`,
		`airlock_audit_write_failures_total 0`,
		`airlock_capability_calls_total{capability="admin",decision="allow",plugin="-"} 1`,
		`airlock_capability_calls_total{capability="admin",decision="deny",plugin="echo"} 1`,
	})
	if regexp.MustCompile(`handler_failures_total\{[^}]*\} [1-9]`).MatchString(body) {
		t.Errorf("a handler failure was counted:\n%s", body)
	}
}

// Every allow and deny that the gate records is counted, and still reaches
// the audit stream.
func TestCountsGateDecisions(t *testing.T) {
	m := metrics.New(func() metrics.Snapshot { return metrics.Snapshot{} })
	auditLog, auditLogger := testenv.NewLog(t)
	g := gate.New(slog.New(m.CountAudit(auditLogger.Handler())))
	ctx := context.Background()
	g.Check(ctx, "p", "supervisor", "reboot", gate.Allow("listed"))
	g.Check(ctx, "p", "supervisor", "reboot", gate.Allow("listed"))
	g.Check(ctx, "p", "supervisor", "shutdown", gate.Deny("not listed"))
	g.Check(ctx, "q", "dbus", "call", gate.Deny("no rule"))
	g.Flush() // the second reboot was folded; its count is written here
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	waitFor(t, srv.URL, []string{
		`airlock_capability_calls_total{capability="supervisor",decision="allow",plugin="p"} 2`,
		`airlock_capability_calls_total{capability="supervisor",decision="deny",plugin="p"} 1`,
		`airlock_capability_calls_total{capability="dbus",decision="deny",plugin="q"} 1`,
	})
	if n := auditLog.Count("audit", "decision="); n != 4 {
		t.Errorf("audit stream got %d records, want 4", n)
	}
}

// TestBuildInfo: the endpoint says what the host is, as airlock version
// does.
func TestBuildInfo(t *testing.T) {
	m := metrics.New(func() metrics.Snapshot { return metrics.Snapshot{} })
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	// A test binary of a library has no module list in its build info, so
	// wazero is "unknown" here; cmd/airlock's TestVersion checks the real
	// one against go.mod.
	i := version.Get()
	waitFor(t, srv.URL, []string{fmt.Sprintf(`airlock_build_info{commit=%q,go=%q,version=%q,wazero=%q} 1`, i.Commit, i.Go, i.Version, i.Wazero)})
}

// The audit file's failed writes are exported: /dev/full fails every write
// with ENOSPC, as a full disk does, and each admin request for a different
// plugin is one audit record (identical ones would be folded), which the
// gate's counter sees too.
func TestAuditWriteFailures(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		testenv.Missing(t, "/dev/full, a device whose writes fail with ENOSPC")
	}
	dir := t.TempDir()
	_, _, url := serve(t, dir, "[log]\naudit = \"/dev/full\"\n", host.Options{})
	c := admin.NewClient(filepath.Join(dir, "state", "admin.sock"))
	for i := 0; i < 3; i++ {
		if _, err := c.Trigger(context.Background(), admin.TriggerRequest{Plugin: fmt.Sprintf("none%d", i), Kind: "timer"}); err == nil {
			t.Fatal("a trigger for a plugin that is not running was accepted")
		}
	}
	waitFor(t, url, []string{
		`airlock_audit_write_failures_total 3`,
		`airlock_capability_calls_total{capability="admin",decision="deny",plugin="none2"} 1`,
	})
}

// A plugin removed by hot reload leaves the endpoint: what was counted as
// it happened (events, handler durations, capability calls) as well as
// what is read at scrape time. Another plugin's series stay, until a
// reload renames it.
func TestRemovedPluginLeaves(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"gone", "stays"} {
		testenv.PluginDir(t, filepath.Join(dir, "plugins"), name, "name = \""+name+"\"\nversion = \"1.0.0\"\n[[trigger.timer]]\nname = \"tick\"\ncron = \"0 0 1 1 *\"\n", "internal/admin/testdata/echo")
	}
	_, auditLogger := testenv.NewLog(t)
	h, log, url := serve(t, dir, "reload = true\n", host.Options{Audit: auditLogger})
	log.Wait(1, "watching plugin directories for changes")
	c := admin.NewClient(filepath.Join(dir, "state", "admin.sock"))
	for _, name := range []string{"gone", "stays"} {
		if _, err := c.Trigger(context.Background(), admin.TriggerRequest{Plugin: name, Kind: "timer", Args: []string{"name=tick"}}); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	for _, name := range []string{"gone", "stays"} {
		want = append(want,
			`airlock_plugin_events_total{kind="timer",plugin="`+name+`"} 1`,
			`airlock_plugin_handler_duration_seconds_count{kind="timer",plugin="`+name+`"} 1`,
			`airlock_capability_calls_total{capability="admin",decision="allow",plugin="`+name+`"} 1`,
			`airlock_plugin_state{plugin="`+name+`",state="running"} 1`)
	}
	waitFor(t, url, want)

	os.RemoveAll(filepath.Join(dir, "plugins", "gone"))
	log.Wait(1, "plugin removed", "plugin=gone")
	if st := h.Status(); len(st) != 1 || st[0].Name != "stays" {
		t.Fatalf("plugins after the removal: %+v, want stays alone", st)
	}
	absent := func(body, name string) {
		t.Helper()
		for _, line := range strings.Split(body, "\n") {
			if strings.Contains(line, `plugin="`+name+`"`) {
				t.Errorf("series of %s, which is gone, still exported: %s", name, line)
			}
		}
	}
	absent(waitFor(t, url, want[len(want)/2:]), "gone")

	os.WriteFile(filepath.Join(dir, "plugins", "stays", "plugin.toml"), []byte("name = \"renamed\"\nversion = \"1.0.0\"\nwasm = \"stays.wasm\"\n"), 0o644)
	log.Wait(1, "plugin reloaded", "plugin=renamed")
	absent(waitFor(t, url, []string{`airlock_plugin_state{plugin="renamed",state="running"} 1`}), "stays")
}

package host_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/internal/plugin"
	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/timer"
)

const guest = "host/testdata/guest"

// rig is a host running in a test, with its logs and audit captured.
type rig struct {
	t      *testing.T
	h      *host.Host
	log    *testenv.Log
	audit  *testenv.Log
	cancel context.CancelFunc
	done   chan error
}

type plug struct{ name, manifest, src string }

const runtimeTOML = `plugins = ["plugins"]
state_dir = "state"
[restart]
initial = "10ms"
max = "200ms"
crash_loop = 3
window = "1m"
`

func start(t *testing.T, environ []string, caps []capability.Capability, plugs ...plug) *rig {
	t.Helper()
	return startWith(t, runtimeTOML, environ, caps, plugs...)
}

// startWith is start with another runtime.toml.
func startWith(t *testing.T, runtime string, environ []string, caps []capability.Capability, plugs ...plug) *rig {
	t.Helper()
	dir := t.TempDir()
	for _, p := range plugs {
		testenv.PluginDir(t, filepath.Join(dir, "plugins"), p.name, p.manifest, p.src)
	}
	if err := os.WriteFile(filepath.Join(dir, "runtime.toml"), []byte(runtime), 0o644); err != nil {
		t.Fatal(err)
	}
	log, logger := testenv.NewLog(t)
	audit, auditLogger := testenv.NewLog(t)
	h, err := host.New(filepath.Join(dir, "runtime.toml"), host.Options{Logger: logger, Audit: auditLogger, Capabilities: caps, Environ: environ})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &rig{t: t, h: h, log: log, audit: audit, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- h.Run(ctx) }()
	t.Cleanup(func() { r.stop() })
	for _, p := range plugs {
		if strings.Contains(p.manifest, "BROKEN") {
			continue
		}
		log.Wait(1, "plugin loaded", "plugin="+p.name)
	}
	return r
}

// stop cancels the host and waits for Run to return.
func (r *rig) stop() error {
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(60 * time.Second):
		r.t.Fatal("host did not stop")
		return nil
	}
}

func (r *rig) fire(plugin, name string) bool {
	return r.h.Deliver(plugin, timer.Event(plugin, name, time.Now()))
}

func (r *rig) status(name string) plugin.Status {
	for _, s := range r.h.Status() {
		if s.Name == name {
			return s
		}
	}
	r.t.Fatalf("no plugin %q", name)
	return plugin.Status{}
}

func toml(name string, extra string) string {
	return fmt.Sprintf("name = %q\nversion = \"0.1.0\"\n%s\n", name, extra)
}

func TestEventsArriveInOrder(t *testing.T) {
	r := start(t, nil, nil, plug{"a", toml("a", `[[trigger.timer]]
name = "seq:tick"
every = "100ms"`), guest})
	r.log.Wait(1, "started", "plugin=a")
	for i := 1; i <= 50; i++ {
		if !r.fire("a", fmt.Sprintf("seq:%d", i)) {
			t.Fatalf("event %d not queued", i)
		}
	}
	r.log.Wait(1, "seq 50", "plugin=a")
	r.log.Wait(2, "seq tick", "plugin=a")
	var got []string
	for _, l := range r.log.Lines() {
		if strings.HasPrefix(l, "INFO seq ") && !strings.HasPrefix(l, "INFO seq tick") {
			got = append(got, strings.Fields(l)[2])
		}
	}
	for i, s := range got {
		if s != fmt.Sprint(i+1) {
			t.Fatalf("events out of order: %v", got)
		}
	}
	if len(got) != 50 {
		t.Fatalf("got %d seq events, want 50: %v", len(got), got)
	}
	if first := r.log.Lines(); !startedBeforeSeq(first) {
		t.Errorf("start event did not come first:\n%s", strings.Join(first, "\n"))
	}
}

func startedBeforeSeq(lines []string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, "INFO started") {
			return true
		}
		if strings.HasPrefix(l, "INFO seq") {
			return false
		}
	}
	return false
}

// One plugin's trap, timeout or memory bomb ends only its own instance,
// which is restarted; the bystander keeps handling events throughout.
func TestCrashIsolationAndRestart(t *testing.T) {
	limits := `[limits]
handler_timeout = "2s"
memory = "48MiB"`
	r := start(t, nil, nil,
		plug{"victim", toml("victim", limits), guest},
		plug{"bystander", toml("bystander", ""), guest})
	r.log.Wait(1, "started", "plugin=victim")
	cases := []struct{ behaviour, want string }{
		{"trap", `timer handler trapped (wasm error: unreachable) after printing "panic: boom on purpose"`},
		{"loop", "ran past limits.handler_timeout = 2s"},
		{"oom", `"fatal error: out of memory": it reached limits.memory = 48MiB`},
	}
	for i, c := range cases {
		t.Run(c.behaviour, func(t *testing.T) {
			r.fire("victim", c.behaviour)
			r.log.Wait(i+1, "plugin crashed; restarting", "plugin=victim")
			r.log.Wait(i+2, "INFO started", "plugin=victim")
			if n := r.log.Count("plugin crashed", "plugin=victim", c.want); n != 1 {
				t.Errorf("want one crash report saying %q, got %d:\n%s", c.want, n, strings.Join(r.log.Lines(), "\n"))
			}
			seq := fmt.Sprintf("seq:after-%s", c.behaviour)
			r.fire("bystander", seq)
			r.log.Wait(1, "seq after-"+c.behaviour, "plugin=bystander")
			// The restarted victim handles events again.
			r.fire("victim", seq)
			r.log.Wait(1, "seq after-"+c.behaviour, "plugin=victim")
		})
	}
	if s := r.status("victim"); s.Restarts != len(cases) || s.LastError == "" {
		t.Errorf("victim status = %+v, want %d restarts and a last error", s, len(cases))
	}
	if s := r.status("bystander"); s.Restarts != 0 || s.State != plugin.StateRunning {
		t.Errorf("bystander status = %+v, want running with no restarts", s)
	}
}

func TestCrashLoopBacksOff(t *testing.T) {
	r := start(t, nil, nil, plug{"p", toml("p", ""), guest})
	for i := 1; i <= 3; i++ {
		r.log.Wait(i, "INFO started", "plugin=p")
		r.fire("p", "trap")
		r.log.Wait(i, "plugin crashed", "plugin=p")
	}
	r.log.Wait(1, "plugin crashed", "plugin=p", "state=crash-looping", "restart_in=200ms")
	if n := r.log.Count("plugin crashed", "plugin=p", "restart_in=10ms"); n != 1 {
		t.Errorf("first restart should wait the initial 10ms, got %d such lines", n)
	}
	if n := r.log.Count("plugin crashed", "plugin=p", "restart_in=20ms"); n != 1 {
		t.Errorf("second restart should wait 20ms, got %d such lines", n)
	}
}

func TestHandlerErrorKeepsInstance(t *testing.T) {
	r := start(t, nil, nil, plug{"p", toml("p", ""), guest})
	r.fire("p", "fail")
	r.fire("p", "seq:next")
	r.log.Wait(1, "seq next", "plugin=p")
	if r.log.Count("handler reported an error", "plugin=p") != 1 || r.log.Count("timer handler: handler failed on purpose") != 1 {
		t.Errorf("handler error not reported:\n%s", strings.Join(r.log.Lines(), "\n"))
	}
	if s := r.status("p"); s.Restarts != 0 {
		t.Errorf("a handler error restarted the plugin: %+v", s)
	}
}

func TestOverflowIsCountedExactly(t *testing.T) {
	r := start(t, nil, nil, plug{"p", toml("p", "[limits]\nqueue = 3"), guest})
	r.log.Wait(1, "INFO started", "plugin=p")
	r.fire("p", "slow:300ms")
	r.log.Wait(1, "slow begin", "plugin=p")
	lost := 0
	for i := 0; i < 20; i++ {
		if !r.fire("p", fmt.Sprintf("seq:%d", i)) {
			lost++
		}
	}
	if lost == 0 {
		t.Fatal("a queue of 3 took 20 events while the handler slept")
	}
	r.log.Wait(1, "dropped count=", "plugin=p")
	if !r.fire("p", "seq:last") {
		t.Fatal("the queue had drained, but refused an event")
	}
	r.log.Wait(1, "seq last", "plugin=p")
	if n := r.log.Count(fmt.Sprintf("dropped count=%d reason=queue full", lost), "plugin=p"); n != 1 {
		t.Errorf("want one dropped notice with count=%d:\n%s", lost, strings.Join(r.log.Lines(), "\n"))
	}
	if s := r.status("p"); s.Dropped != uint64(lost) {
		t.Errorf("status dropped = %d, want %d", s.Dropped, lost)
	}
}

func TestShutdownDrainsAndStops(t *testing.T) {
	r := start(t, nil, nil, plug{"p", toml("p", ""), guest})
	r.log.Wait(1, "INFO started", "plugin=p")
	for i := 0; i < 5; i++ {
		r.fire("p", fmt.Sprintf("slow:%dms", 20+i))
	}
	if err := r.stop(); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	if n := r.log.Count("slow done", "plugin=p"); n != 5 {
		t.Errorf("%d of 5 queued events handled before stop", n)
	}
	lines := r.log.Lines()
	last := ""
	for _, l := range lines {
		if strings.Contains(l, "plugin=p") && strings.Contains(l, "source=plugin") {
			last = l
		}
	}
	if !strings.Contains(last, "stopped cleanly") {
		t.Errorf("stop event was not the last one handled; last was %q", last)
	}
}

func TestSleepIsBoundedByDeadline(t *testing.T) {
	r := start(t, nil, nil, plug{"p", toml("p", "[limits]\nhandler_timeout = \"300ms\""), guest})
	r.fire("p", "slow:1h")
	r.log.Wait(1, "slow: timeout: sleep cut short", "plugin=p")
	r.fire("p", "deadline")
	r.log.Wait(1, "deadline ok=true", "plugin=p")
	if s := r.status("p"); s.Restarts != 0 {
		t.Errorf("a bounded sleep crashed the plugin: %+v", s)
	}
}

func TestConfigValues(t *testing.T) {
	r := start(t, nil, nil, plug{"p", toml("p", "[config]\ncolour = \"blue\""), guest})
	r.fire("p", "config:colour")
	r.fire("p", "config:missing")
	r.log.Wait(1, `config colour="blue" true`)
	r.log.Wait(1, `config missing="" false`)
}

func TestLogFloodIsBounded(t *testing.T) {
	r := start(t, nil, nil, plug{"p", toml("p", ""), guest})
	r.fire("p", "biglog")
	r.log.Wait(1, "…[truncated]", "plugin=p")
	for _, l := range r.log.Lines() {
		if len(l) > 9000 {
			t.Fatalf("a log line of %d bytes got through", len(l))
		}
	}
}

func TestBrokenPluginDoesNotStopOthers(t *testing.T) {
	r := start(t, nil, nil,
		plug{"broken", "# BROKEN\nname = \"broken\"\n[limits]\nmemroy = \"1MiB\"\n", guest},
		plug{"good", toml("good", ""), guest})
	r.log.Wait(1, "INFO started", "plugin=good")
	err := r.h.Failures()[filepath.Join(filepath.Dir(r.h.Runtime().File), "plugins", "broken")]
	if err == nil || !strings.Contains(err.Error(), `plugin.toml:4: limits.memroy: unknown key (did you mean "memory"?)`) {
		t.Errorf("load error = %v", err)
	}
}

func TestEnvIsFilteredAndSecretsNeverPass(t *testing.T) {
	environ := []string{"BALENA_DEVICE_TYPE=raspberrypi4-64", "BALENA_SUPERVISOR_API_KEY=sekrit", "BALENA_API_TOKEN=t", "HOME=/root", "BALENA_APP_ID=7"}
	r := start(t, environ, nil, plug{"p", toml("p", "[env]\nallow = [\"BALENA_*\"]"), guest})
	r.fire("p", "env")
	r.log.Wait(1, "env ", "plugin=p")
	if n := r.log.Count("env BALENA_APP_ID=7,BALENA_DEVICE_TYPE=raspberrypi4-64 "); n != 1 {
		t.Errorf("plugin saw the wrong environment:\n%s", strings.Join(r.log.Lines(), "\n"))
	}
	for _, l := range r.log.Lines() {
		if strings.Contains(l, "sekrit") {
			t.Fatalf("the API key reached the plugin: %s", l)
		}
	}
}

func TestDataIsPrivate(t *testing.T) {
	data := "[storage]\ndata = true"
	r := start(t, nil, nil, plug{"a", toml("a", data), guest}, plug{"b", toml("b", data), guest})
	r.fire("a", "write:a-secret")
	r.log.Wait(1, "write: ok", "plugin=a")
	r.fire("a", "read:/data/a-secret")
	r.log.Wait(1, "read /data/a-secret: ok secret of a-secret", "plugin=a")

	escapes := []string{
		"/data/../a/a-secret",
		"/data/../../data/a/a-secret",
		"/../a/a-secret",
		"../a/a-secret",
		"/a/a-secret",
		filepath.Join(filepath.Dir(r.h.Runtime().File), "state", "data", "a", "a-secret"),
	}
	for _, p := range escapes {
		r.fire("b", "read:"+p)
	}
	// A symlink planted by b that points at a's directory.
	r.fire("b", "symlink:../a>/data/link")
	r.fire("b", "read:/data/link/a-secret")
	r.fire("b", "seq:done")
	r.log.Wait(1, "seq done", "plugin=b")
	for _, l := range r.log.Lines() {
		if strings.Contains(l, "plugin=b") && strings.Contains(l, "secret of a-secret") {
			t.Errorf("plugin b reached a's data: %s", l)
		}
	}
	if n := r.log.Count("read ", ": error:", "plugin=b"); n != len(escapes)+1 {
		t.Errorf("want %d refused reads, got %d:\n%s", len(escapes)+1, n, strings.Join(r.log.Lines(), "\n"))
	}
}

// A guest that passes pointers and lengths outside its memory to every base
// function gets fault (10) or invalid (2) back, never a trap.
func TestBadPointersAreFaultsNotTraps(t *testing.T) {
	r := start(t, nil, nil, plug{"p", toml("p", ""), guest})
	r.fire("p", "badptr")
	r.log.Wait(1, "badptr errnos", "plugin=p")
	if n := r.log.Count("badptr errnos [10 10 10 10 10 10 10 2]"); n != 1 {
		t.Errorf("unexpected errnos:\n%s", strings.Join(r.log.Lines(), "\n"))
	}
	if s := r.status("p"); s.Restarts != 0 {
		t.Errorf("bad pointers crashed the plugin: %+v", s)
	}
}

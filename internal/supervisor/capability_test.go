package supervisor_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/internal/supervisor"
	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/timer"
)

const guestSrc = "internal/supervisor/testdata/guest"

// stateDir is shared by every host of this test binary, so that wazero's
// compilation cache compiles each guest once.
var stateDir string

func TestMain(m *testing.M) {
	var err error
	if stateDir, err = os.MkdirTemp("", "airlock-supervisor-test-"); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(stateDir)
	os.Exit(code)
}

// scanned wraps the capability so that after every call of its host
// function the guest's whole linear memory is searched for the API key.
type scanned struct {
	*supervisor.Capability
	key          []byte
	scans, leaks *atomic.Int64
}

func (s scanned) Functions() []capability.Func {
	fs := s.Capability.Functions()
	for i := range fs {
		inner := fs[i].Call
		fs[i].Call = func(ctx context.Context, in *capability.Caller, m api.Module, stack []uint64) {
			inner(ctx, in, m, stack)
			mem, _ := m.Memory().Read(0, m.Memory().Size())
			s.scans.Add(1)
			if bytes.Contains(mem, s.key) {
				s.leaks.Add(1)
			}
		}
	}
	return fs
}

type plug struct{ name, manifest, src string }

// rig is a real host running plugins built from source, with the
// supervisor capability and its logs, audit and memory scans captured.
type rig struct {
	t            *testing.T
	h            *host.Host
	cap          *supervisor.Capability
	key          string
	log, audit   *testenv.Log
	scans, leaks atomic.Int64
	next         int
}

func start(t *testing.T, device, section string, o supervisor.CapabilityOptions, key string, plugs ...plug) *rig {
	t.Helper()
	dir := t.TempDir()
	for _, p := range plugs {
		testenv.PluginDir(t, filepath.Join(dir, "plugins"), p.name, p.manifest, p.src)
	}
	rt := fmt.Sprintf("plugins = [\"plugins\"]\nstate_dir = %q\ndevice = %q\n[restart]\ninitial = \"10ms\"\nmax = \"200ms\"\n%s\n", stateDir, device, section)
	if err := os.WriteFile(filepath.Join(dir, "runtime.toml"), []byte(rt), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, cap: supervisor.NewCapability(o), key: key}
	var logger, auditLogger *slog.Logger
	r.log, logger = testenv.NewLog(t)
	r.audit, auditLogger = testenv.NewLog(t)
	c := scanned{Capability: r.cap, key: []byte(key), scans: &r.scans, leaks: &r.leaks}
	h, err := host.New(filepath.Join(dir, "runtime.toml"), host.Options{Logger: logger, Audit: auditLogger, Capabilities: []capability.Capability{c}})
	if err != nil {
		t.Fatal(err)
	}
	r.h = h
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Error("host did not stop")
		}
		r.checkKeyNeverSeen()
	})
	for _, p := range plugs {
		if !strings.Contains(p.manifest, "BROKEN") {
			r.log.Wait(1, "plugin loaded", "plugin="+p.name)
		}
	}
	return r
}

// do asks plugin to run one guest command and returns the guest's report,
// "ok ..." or "<errno>: <message>".
func (r *rig) do(plugin, cmd string) string {
	r.t.Helper()
	r.next++
	id := fmt.Sprint(r.next)
	if !r.h.Deliver(plugin, timer.Event(plugin, id+" "+cmd, time.Now())) {
		r.t.Fatalf("%s: event %q not queued", plugin, cmd)
	}
	marker := "done " + id + " "
	r.log.Wait(1, marker, "plugin="+plugin)
	for _, l := range r.log.Lines() {
		if i := strings.Index(l, marker); i >= 0 && strings.Contains(l, "plugin="+plugin) {
			msg := l[i+len(marker):]
			if j := strings.Index(msg, " plugin="); j >= 0 {
				msg = msg[:j]
			}
			return msg
		}
	}
	return ""
}

// expect runs cmd and fails unless the report starts with want.
func (r *rig) expect(plugin, cmd, want string) string {
	r.t.Helper()
	got := r.do(plugin, cmd)
	if !strings.HasPrefix(got, want) {
		r.t.Errorf("%s %q:\n got %s\nwant %s…", plugin, cmd, got, want)
	}
	return got
}

// checkKeyNeverSeen asserts that the key reached no guest memory, log line
// or audit record.
func (r *rig) checkKeyNeverSeen() {
	if r.scans.Load() == 0 {
		r.t.Error("no host call was scanned for the key")
	}
	if n := r.leaks.Load(); n > 0 {
		r.t.Errorf("the API key was found in guest memory after %d of %d calls", n, r.scans.Load())
	}
	for _, l := range append(r.log.Lines(), r.audit.Lines()...) {
		if strings.Contains(l, r.key) {
			r.t.Errorf("the API key appears in a log line: %s", l)
		}
	}
}

func manifest(name, allow, extra string) string {
	s := fmt.Sprintf("name = %q\nversion = \"0.1.0\"\n%s\n", name, extra)
	if allow != "-" {
		s += "[supervisor]\nallow = [" + allow + "]\n"
	}
	return s
}

const everything = `"ping", "blink", "reboot", "shutdown", "update", "app.restart", "app.purge",
  "service.restart:*", "service.stop:*", "service.start:*", "device.read", "hostname.set",
  "app.read", "volumes.cleanup", "tags.set:location", "logs.read:main", "journal.read:ssh"`

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // a liveness bound, not a timing assertion
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

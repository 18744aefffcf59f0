package host_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/timer"
)

const echoGuest = "internal/admin/testdata/echo"

// fakeTrigger is a trigger source that records what Subscribe is told.
type fakeTrigger struct {
	mu   sync.Mutex
	subs map[string]any
}

func (f *fakeTrigger) Name() string                              { return "fake" }
func (f *fakeTrigger) Module() string                            { return "" }
func (f *fakeTrigger) DecodeGrant(manifest.Section) (any, error) { return nil, nil }
func (f *fakeTrigger) Functions() []capability.Func              { return nil }
func (f *fakeTrigger) Trigger() string                           { return "fake" }
func (f *fakeTrigger) Start(context.Context, capability.Deliver) error {
	return nil
}
func (f *fakeTrigger) DecodeTrigger(s manifest.Section) (any, error) {
	var v []struct {
		Tag string `toml:"tag"`
	}
	s.Decode(&v)
	return v[0].Tag, nil
}
func (f *fakeTrigger) Subscribe(plugin string, rules any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs[plugin] = rules
}
func (f *fakeTrigger) rules(plugin string) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.subs[plugin]
}

func echoTOML(name, version, tag string) string {
	return fmt.Sprintf(`name = %q
version = %q

[limits]
handler_timeout = "30s"

[config]
tag = %q

[[trigger.fake]]
tag = %q
`, name, version, tag, tag)
}

func write(t *testing.T, path, text string) {
	t.Helper()
	// Through a temporary file and a rename, as editors and deploy tools do.
	if err := os.WriteFile(path+".new", []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// One plugin's new version replaces the old without touching the others
// and without losing what was queued for it; a version that does not load
// leaves the old one running; new directories load and removed ones stop.
func TestHotReload(t *testing.T) {
	dir := t.TempDir()
	plugins := filepath.Join(dir, "plugins")
	echoDir := testenv.PluginDir(t, plugins, "echo", echoTOML("echo", "0.1", "v1"), echoGuest)
	testenv.PluginDir(t, plugins, "bystander", echoTOML("bystander", "1.0", "b"), echoGuest)
	conf := filepath.Join(dir, "runtime.toml")
	os.WriteFile(conf, []byte("plugins = [\"plugins\"]\nstate_dir = \"state\"\nreload = true\n"), 0o644)
	log, logger := testenv.NewLog(t)
	trig := &fakeTrigger{subs: map[string]any{}}
	h, err := host.New(conf, host.Options{Logger: logger, Capabilities: []capability.Capability{trig}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	defer func() { cancel(); <-done }()
	log.Wait(1, "watching plugin directories for changes")
	log.Wait(1, "started tag=v1")
	log.Wait(1, "started tag=b")
	version := func(name string) string {
		if m := h.Manifest(name); m != nil {
			return m.Version
		}
		return ""
	}

	// A new manifest: the old version gets stop, the new one start.
	write(t, filepath.Join(echoDir, "plugin.toml"), echoTOML("echo", "0.2", "v2"))
	log.Wait(1, "plugin reloaded", "plugin=echo", "from=0.1", "to=0.2", "handed_over=0")
	log.Wait(1, "stopped tag=v1")
	log.Wait(1, "started tag=v2")
	if got := trig.rules("echo"); got != "v2" {
		t.Errorf("the trigger source was told echo's rules are %v, want v2's", got)
	}

	// Events queued behind a slow handler are handed to the new version.
	h.Deliver("echo", timer.Event("echo", "slow:10s", time.Now()))
	log.Wait(1, "slow begin tag=v2")
	for i := 1; i <= 5; i++ {
		if !h.Deliver("echo", timer.Event("echo", fmt.Sprintf("seq:%d", i), time.Now())) {
			t.Fatalf("seq:%d not queued", i)
		}
	}
	write(t, filepath.Join(echoDir, "plugin.toml"), echoTOML("echo", "0.3", "v3"))
	log.Wait(1, "plugin reloaded", "plugin=echo", "from=0.2", "to=0.3", "handed_over=5")
	log.Wait(1, "event timer tag=v3", "name=seq:5")
	for i := 1; i <= 5; i++ {
		if n := log.Count("event timer tag=", fmt.Sprintf("name=seq:%d ", i)) + log.Count("event timer tag=", fmt.Sprintf("name=seq:%d", i)); n == 0 {
			t.Errorf("seq:%d was lost in the reload", i)
		}
		if n := log.Count(fmt.Sprintf("event timer tag=v2 name=seq:%d", i)); n != 0 {
			t.Errorf("seq:%d was handled by the old version after the handoff", i)
		}
	}
	if i := indexOf(log.Lines(), "slow done tag=v2"); i < 0 || i > indexOf(log.Lines(), "started tag=v3") {
		t.Errorf("v3 started before v2 finished its handler:\n%s", strings.Join(log.Lines(), "\n"))
	}

	// A manifest that does not parse, then a module that is not wasm: the
	// running version stays, and status says why.
	write(t, filepath.Join(echoDir, "plugin.toml"), echoTOML("echo", "0.4", "v4")+"bogus = 1\n")
	log.Wait(1, "reload failed; the old version runs on", "plugin=echo", "version=0.3", "bogus: unknown key")
	if err := h.Failures()[echoDir]; err == nil || !strings.Contains(err.Error(), "reload failed; version 0.3 runs on") {
		t.Errorf("failures[%s] = %v", echoDir, err)
	}
	wasm, _ := os.ReadFile(filepath.Join(echoDir, "echo.wasm"))
	write(t, filepath.Join(echoDir, "plugin.toml"), echoTOML("echo", "0.4", "v4"))
	write(t, filepath.Join(echoDir, "echo.wasm"), "not wasm")
	log.Wait(1, "reload failed; the old version runs on", "plugin=echo", "not a valid WebAssembly module")
	if v := version("echo"); v != "0.3" {
		t.Errorf("echo is at %q after failed reloads, want 0.3", v)
	}
	h.Deliver("echo", timer.Event("echo", "still-alive", time.Now()))
	log.Wait(1, "event timer tag=v3", "name=still-alive")
	write(t, filepath.Join(echoDir, "echo.wasm"), string(wasm))
	log.Wait(1, "plugin reloaded", "plugin=echo", "from=0.3", "to=0.4")
	log.Wait(1, "started tag=v4")
	if err := h.Failures()[echoDir]; err != nil {
		t.Errorf("failure still reported after a good reload: %v", err)
	}

	// A new directory loads; a removed one stops.
	testenv.PluginDir(t, plugins, "newbie", echoTOML("newbie", "1.0", "n"), echoGuest)
	log.Wait(1, "plugin loaded", "plugin=newbie")
	log.Wait(1, "started tag=n")
	if got := trig.rules("newbie"); got != "n" {
		t.Errorf("newbie's rules = %v", got)
	}
	// A new directory that claims a running plugin's name is refused,
	// naming the running one, which keeps its name.
	impostor := testenv.PluginDir(t, plugins, "echo-copy", echoTOML("echo", "9.9", "impostor"), echoGuest)
	log.Wait(1, "plugin not loaded", "duplicate plugin name")
	if err := h.Failures()[impostor]; err == nil || !strings.Contains(err.Error(), filepath.Join(echoDir, "plugin.toml")+" runs under it") {
		t.Errorf("failures[%s] = %v, want a duplicate refusal naming %s", impostor, err, echoDir)
	}
	if v := version("echo"); v != "0.4" || log.Count("started tag=impostor") != 0 {
		t.Errorf("echo is at %q, or the impostor started", v)
	}
	os.RemoveAll(impostor)
	os.RemoveAll(filepath.Join(plugins, "bystander"))
	log.Wait(1, "plugin removed", "plugin=bystander")
	log.Wait(1, "stopped tag=b")
	if got := trig.rules("bystander"); got != nil {
		t.Errorf("bystander's rules after removal = %v, want none", got)
	}

	// The bystander was never restarted by echo's reloads.
	if n := log.Count("started tag=b"); n != 1 {
		t.Errorf("bystander started %d times, want once", n)
	}
	var names []string
	for _, s := range h.Status() {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "echo,newbie" {
		t.Errorf("running = %v, want echo and newbie", names)
	}
}

func indexOf(lines []string, part string) int {
	for i, l := range lines {
		if strings.Contains(l, part) {
			return i
		}
	}
	return -1
}

package conformance

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/timer"
)

// TestExamples builds each example in every language (examples/<name> in
// Go, examples/<name>-<lang> in the others), runs it with its own
// plugin.toml, and checks that it logs what the Go example logs.
func TestExamples(t *testing.T) {
	examples := []struct {
		name  string
		fire  []string // timer names to deliver after start
		wants []string // the plugin's log lines, in order, as pluginLines writes them
	}{
		{"hello", nil, []string{`INFO "hello from a sandboxed plugin" device_type=raspberrypi4-64`, `INFO "goodbye"`}},
		{"ticker", []string{"fast", "minute", "fast"}, []string{`INFO "tick" timer=fast count=1`, `INFO "tick" timer=minute count=2`, `INFO "tick" timer=fast count=3`}},
	}
	root := testenv.RepoRoot(t)
	for _, ex := range examples {
		for _, lang := range testenv.Langs {
			dir := "examples/" + ex.name
			if lang.Name != "go" {
				dir += "-" + lang.Name
			}
			t.Run(ex.name+"/"+lang.Name, func(t *testing.T) {
				if _, err := os.Stat(filepath.Join(root, dir)); err != nil {
					t.Fatalf("no %s example in %s: %v", ex.name, lang.Name, err)
				}
				manifest, err := os.ReadFile(filepath.Join(root, dir, "plugin.toml"))
				if err != nil {
					t.Fatal(err)
				}
				// Timers would fire on their own; the test fires them.
				m := string(manifest)
				if i := strings.Index(m, "[[trigger.timer]]"); i >= 0 {
					m = m[:i]
				}
				name := filepath.Base(dir)
				got := runExample(t, name, m, lang.Build(t, dir), ex.fire)
				if strings.Join(got, "\n") != strings.Join(ex.wants, "\n") {
					t.Errorf("%s logged\n  %s\nwant\n  %s", dir, strings.Join(got, "\n  "), strings.Join(ex.wants, "\n  "))
				}
			})
		}
	}
}

func runExample(t *testing.T, name, manifest, wasm string, fire []string) []string {
	dir := t.TempDir()
	testenv.InstallPlugin(t, filepath.Join(dir, "plugins"), name, manifest, wasm)
	if err := os.WriteFile(filepath.Join(dir, "runtime.toml"), []byte(runtimeTOML), 0o644); err != nil {
		t.Fatal(err)
	}
	log, logger := testenv.NewLog(t)
	lines := &pluginLines{Handler: logger.Handler(), mu: new(sync.Mutex), lines: new([]string)}
	logger = slog.New(lines)
	h, err := host.New(filepath.Join(dir, "runtime.toml"), host.Options{Logger: logger, Environ: environ})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	log.Wait(1, "plugin loaded", "plugin="+name)
	for i, f := range fire {
		if !h.Deliver(name, timer.Event(name, f, time.Now())) {
			t.Fatalf("timer %s refused", f)
		}
		log.Wait(i+1, "INFO tick", "plugin="+name)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("host did not stop")
	}
	lines.mu.Lock()
	defer lines.mu.Unlock()
	return append([]string(nil), *lines.lines...)
}

// pluginLines is a slog handler in front of the test's log that keeps
// each line a plugin wrote (source=plugin) as `LEVEL "msg" k=v...`,
// without the host's plugin= and source=: the message is quoted, so that
// a field an SDK wrote into the message text, instead of sending it as an
// attribute through log_fields, shows inside the quotes. It keeps too the
// host's lines whose message is one of also (such as "handler reported an
// error"), written the same way.
type pluginLines struct {
	slog.Handler
	mu    *sync.Mutex
	lines *[]string
	also  []string
}

func (h *pluginLines) WithAttrs(a []slog.Attr) slog.Handler {
	return &pluginLines{Handler: h.Handler.WithAttrs(a), mu: h.mu, lines: h.lines, also: h.also}
}

func (h *pluginLines) WithGroup(name string) slog.Handler {
	return &pluginLines{Handler: h.Handler.WithGroup(name), mu: h.mu, lines: h.lines, also: h.also}
}

func (h *pluginLines) Handle(ctx context.Context, r slog.Record) error {
	line, fromPlugin := r.Level.String()+" "+strconv.Quote(r.Message), slices.Contains(h.also, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		switch {
		case a.Key == "source" && a.Value.String() == "plugin":
			fromPlugin = true
		case a.Key != "plugin":
			line += " " + a.Key + "=" + a.Value.String()
		}
		return true
	})
	if fromPlugin {
		h.mu.Lock()
		*h.lines = append(*h.lines, line)
		h.mu.Unlock()
	}
	return h.Handler.Handle(ctx, r)
}

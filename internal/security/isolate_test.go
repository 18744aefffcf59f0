package security

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/internal/hostrun"
	"github.com/airlockhq/airlock/internal/isolate"
	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/timer"
)

func TestMain(m *testing.M) {
	testenv.IsolateChild()
	os.Exit(m.Run())
}

// A module that no count gives away but that would take wazero's compiler
// hundreds of megabytes is compiled, as every new module is under airlock
// run, in a child process with a memory limit: the child fails, the plugin
// is refused with an error that says why, and the host, which never grew,
// runs its other plugin. The steady plugin, compiled by a child too, then
// starts again from the cache without one.
func TestCompileInChildContainsABomb(t *testing.T) {
	dir := t.TempDir()
	testenv.PluginDir(t, filepath.Join(dir, "plugins"), "steady", "name = \"steady\"\nversion = \"0.1.0\"\n", counter)
	bomb := filepath.Join(dir, "plugins", "bomb")
	if err := os.MkdirAll(bomb, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bomb, "plugin.toml"), []byte("name = \"bomb\"\nversion = \"0.1.0\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bomb, "bomb.wasm"), testenv.JoinBomb(5700), 0o644); err != nil {
		t.Fatal(err)
	}
	rt := "plugins = [\"plugins\"]\nstate_dir = \"state\"\n[log]\naudit = \"off\"\n"
	if err := os.WriteFile(filepath.Join(dir, "runtime.toml"), []byte(rt), 0o644); err != nil {
		t.Fatal(err)
	}
	var children atomic.Int32
	compile := testenv.IsolateCompiler(isolate.Limits{Memory: 256 << 20})
	start := func() (*hostrun.Run, *testenv.Log) {
		log, logger := testenv.NewLog(t)
		return hostrun.Start(t, filepath.Join(dir, "runtime.toml"), host.Options{Logger: logger,
			Precompile: func(ctx context.Context, cacheDir string, wasm []byte, closeOnContextDone bool) error {
				children.Add(1)
				return compile(ctx, cacheDir, wasm, closeOnContextDone)
			}}), log
	}
	r, log := start()
	log.Wait(1, "INFO started", "plugin=steady")
	// Plugins start as each is ready, so steady may run before the bomb's
	// child has failed: wait for the refusal itself.
	log.Wait(1, "plugin not loaded", "was not compiled")
	err := r.Host.Failures()[bomb]
	if err == nil || !strings.Contains(err.Error(), "bomb.wasm was not compiled: compiling it needed more than 256 MiB of memory") {
		t.Fatalf("the bomb's load error = %v, want the child's memory limit", err)
	}
	r.Host.Deliver("steady", timer.Event("steady", "write:0", time.Now()))
	log.Wait(1, "write 0 KiB: ", "plugin=steady")
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if n := children.Load(); n != 2 {
		t.Errorf("%d compiling children for two new modules, want 2", n)
	}
	// Again: steady is in the cache, so only the bomb, refused before, is
	// compiled in a child again.
	r, log = start()
	log.Wait(1, "INFO started", "plugin=steady")
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if n := children.Load(); n != 3 {
		t.Errorf("%d compiling children after a second start, want 3 (only the bomb's again)", n)
	}
}

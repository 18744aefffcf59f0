package host_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/internal/hostrun"
	"github.com/airlockhq/airlock/internal/testenv"
)

// Reconfigure (SIGHUP) re-reads runtime.toml with reload = false: a new
// plugin directory loads, a changed log level applies, changed limits are
// named as waiting for a restart; an invalid file changes nothing; a
// directory taken out of plugins stops its plugin.
func TestReconfigure(t *testing.T) {
	dir := t.TempDir()
	testenv.PluginDir(t, filepath.Join(dir, "a"), "one", echoTOML("one", "1.0", "one"), echoGuest)
	testenv.PluginDir(t, filepath.Join(dir, "b"), "two", echoTOML("two", "1.0", "two"), echoGuest)
	conf := filepath.Join(dir, "runtime.toml")
	base := "state_dir = \"state\"\nreload = false\n"
	write(t, conf, "plugins = [\"a\"]\n"+base)
	log, logger := testenv.NewLog(t)
	level := new(slog.LevelVar)
	h := hostrun.Start(t, conf, host.Options{Logger: logger, LogLevel: level, Capabilities: []capability.Capability{&fakeTrigger{subs: map[string]any{}}}}).Host
	log.Wait(1, "started tag=one")

	write(t, conf, "plugins = [\"a\", \"b\"]\n"+base+"[log]\nlevel = \"debug\"\n[limits]\nqueue = 8\n")
	h.Reconfigure("SIGHUP")
	log.Wait(1, "runtime.toml re-read", "signal=SIGHUP", "applied=[log.level plugins]", "not_applied_until_restart=[limits]")
	log.Wait(1, "started tag=two")
	if level.Level() != slog.LevelDebug {
		t.Errorf("log level %v after the re-read, want debug", level.Level())
	}

	write(t, conf, "plugins = [\"a\", \"b\"]\n"+base+"[limits]\nqueue = \"many\"\n")
	h.Reconfigure("SIGHUP")
	log.Wait(1, "runtime.toml not re-read", "limits.queue")
	if level.Level() != slog.LevelDebug || h.Manifest("two") == nil {
		t.Error("an invalid runtime.toml changed the running configuration")
	}

	write(t, conf, "plugins = [\"b\"]\n"+base+"[log]\nlevel = \"debug\"\n")
	h.Reconfigure("SIGHUP")
	log.Wait(1, "plugin removed", "plugin=one")
	log.Wait(1, "stopped tag=one")
	if h.Manifest("two") == nil {
		t.Error("two was stopped by a re-read that kept its directory")
	}
	if _, err := os.Stat(conf); err != nil {
		t.Fatal(err)
	}
}

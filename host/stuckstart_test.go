package host_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/airlockhq/airlock/internal/testenv"
)

// The real binary, with a plugin whose wasm start section never returns
// beside a steady one: the stuck plugin is stopped at its handler_timeout
// and restarted, with an error that names the start function and the
// limit, and SIGINT makes the host exit 0 after the steady plugin's stop
// handler ran. Before (issue 15), the plugin sat in "starting" at 99% CPU
// and the host needed SIGKILL.
func TestSIGINTWithAStuckStart(t *testing.T) {
	testenv.NeedCommand(t, "dbus-daemon", "dbus")
	bin := testenv.Airlock(t)
	dir := t.TempDir()
	plugins := filepath.Join(dir, "plugins")
	testenv.PluginDir(t, plugins, "counter", "name = \"counter\"\nversion = \"0.1.0\"\n", "internal/security/testdata/counter")
	stuck := testenv.Module{Funcs: []testenv.Func{{Type: 0, Code: testenv.Spin}}, Start: 2, Handler: testenv.Return0}
	testenv.WasmPluginDir(t, plugins, "stuck", "name = \"stuck\"\nversion = \"0.1.0\"\n[limits]\nhandler_timeout = \"1s\"\n", stuck.Wasm())
	conf := filepath.Join(dir, "runtime.toml")
	rt := "plugins = [\"plugins\"]\nstate_dir = \"state\"\ndevice = \"sim\"\n[log]\naudit = \"off\"\n[admin]\nsocket = \"off\"\n[scenario]\nplay = \"none\"\n"
	if err := os.WriteFile(conf, []byte(rt), 0o644); err != nil {
		t.Fatal(err)
	}
	r := startAirlock(t, bin, conf)
	r.wait(t, "started", "plugin=counter")
	r.wait(t, "plugin crashed; restarting", "plugin=stuck", "the module's start function (its wasm start section) ran past limits.handler_timeout = 1s")
	r.cmd.Process.Signal(syscall.SIGINT)
	exited := make(chan error, 1)
	go func() { exited <- r.cmd.Wait() }()
	select {
	case err := <-exited:
		<-r.eof
		if err != nil {
			t.Fatalf("airlock exited with %v after SIGINT:\n%s", err, r.output())
		}
	case <-time.After(time.Minute):
		t.Fatalf("airlock did not exit within a minute of SIGINT:\n%s", r.output())
	}
	if out := r.output(); !strings.Contains(out, "totals handled=") || !strings.Contains(out, "airlock stopped") {
		t.Fatalf("want the steady plugin's stop handler and a clean stop:\n%s", out)
	}
}

package host_test

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/hostrun"
	"github.com/airlockhq/airlock/internal/testenv"
)

// TestNewFromConfig: a host given its configuration as a value, with no
// runtime.toml on disk, runs its plugins; Runtime is a copy; SIGHUP has no
// file to re-read and changes nothing.
func TestNewFromConfig(t *testing.T) {
	dir := t.TempDir()
	testenv.PluginDir(t, filepath.Join(dir, "plugins"), "echo", "name = \"echo\"\nversion = \"1.0\"\n", echoGuest)
	rt, err := manifest.ParseRuntime(filepath.Join(dir, "runtime.toml"), []byte(runtimeTOML), host.RuntimeSections(nil))
	if err != nil {
		t.Fatal(err)
	}
	log, logger := testenv.NewLog(t)
	h, err := host.NewFromConfig(rt, host.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	hostrun.StartHost(t, h)
	log.Wait(1, "airlock running")
	if st := h.Status(); len(st) != 1 || st[0].Name != "echo" {
		t.Fatalf("status %+v, want echo running", st)
	}
	if f := h.Failures(); len(f) != 0 {
		t.Fatalf("failures %v", f)
	}

	got := h.Runtime()
	want := []string{filepath.Join(dir, "plugins")}
	if !slices.Equal(got.Plugins, want) || got.StateDir != filepath.Join(dir, "state") {
		t.Fatalf("Runtime: plugins %v state_dir %s", got.Plugins, got.StateDir)
	}
	got.Plugins[0] = "/elsewhere"
	if p := h.Runtime().Plugins; !slices.Equal(p, want) {
		t.Fatalf("a change to Runtime's copy reached the host: %v", p)
	}

	h.Reconfigure("SIGHUP")
	log.Wait(1, "configuration not re-read: this host was given it as a value", "signal=SIGHUP")
}

// TestCoreRefusesWhatItLacks: without host/builtin's metrics endpoint and
// registry client, a runtime.toml that asks for them is refused at New,
// saying which option provides them.
func TestCoreRefusesWhatItLacks(t *testing.T) {
	for _, c := range []struct{ extra, want string }{
		{"[metrics]\nlisten = \"127.0.0.1:0\"\n", "host.Options.Metrics"},
		{"[[bundle]]\nref = \"registry.example/acme/echo@sha256:" + strings.Repeat("0", 64) + "\"\n", "host.Options.Pull"},
	} {
		dir := t.TempDir()
		rt, err := manifest.ParseRuntime(filepath.Join(dir, "runtime.toml"), []byte("state_dir = \"state\"\n"+c.extra), host.RuntimeSections(nil))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := host.NewFromConfig(rt, host.Options{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %s", c.extra, err, c.want)
		}
	}
}

// TestCoreLinksNoBuiltins: embedding package host links neither go-udev
// (GPL-3.0), Prometheus nor oras; host/builtin brings them, and its
// dependencies show that the patterns match what they would catch.
func TestCoreLinksNoBuiltins(t *testing.T) {
	gobin := testenv.NeedCommand(t, "go", "golang")
	heavy := []string{"github.com/pilebones/go-udev/", "github.com/prometheus/", "oras.land/oras-go/"}
	deps := func(pkg string) []string {
		cmd := exec.Command(gobin, "list", "-deps", pkg)
		cmd.Dir = testenv.RepoRoot(t)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		return strings.Fields(string(out))
	}
	linked := func(deps []string, prefix string) bool {
		return slices.ContainsFunc(deps, func(d string) bool { return strings.HasPrefix(d, prefix) })
	}
	core, all := deps("github.com/airlockhq/airlock/host"), deps("github.com/airlockhq/airlock/host/builtin")
	for _, p := range heavy {
		if linked(core, p) {
			t.Errorf("package host links %s*; it must come only with host/builtin (host/RATIONALE.md, \"Why this public surface?\")", p)
		}
		if !linked(all, p) {
			t.Errorf("host/builtin does not link %s*: the check above tests nothing", p)
		}
	}
}

package host_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/airlockhq/airlock/internal/testenv"
)

// TestOfflineBoot boots a device that runs only [[bundle]]s (no plugin
// directory) while its registry is down, with the registry's credentials
// stored by airlock login in the runtime's [registry] auth file. The host
// retries with backoff, airlock status says "waiting for registry (attempt
// N, next in ...)", and when the registry comes up the bundle's plugin
// starts without a restart; a bundle that the trust policy refuses is named
// by its [[bundle]] ref. Then the operator pins a new version and the
// device boots offline again: the cached earlier version runs meanwhile and
// is replaced when the new one is pulled.
func TestOfflineBoot(t *testing.T) {
	testenv.NeedCommand(t, "dbus-daemon", "dbus")
	bin := testenv.Airlock(t)
	dir := t.TempDir()
	addr := testenv.FreeLoopbackAddr(t)
	storage := filepath.Join(dir, "registry")
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true, Addr: addr, Root: storage})

	// The vendor: two keys (acme is trusted, evil is not), three bundles
	// pushed through a docker config file.
	vendor := filepath.Join(dir, "vendor")
	os.MkdirAll(vendor, 0o755)
	cli(t, bin, vendor, "", "keygen", "-o", "acme")
	cli(t, bin, vendor, "", "keygen", "-o", "evil")
	dockerConfig := testenv.DockerConfig(t, reg.Host, testenv.RegistryUser, testenv.RegistryPassword)
	push := func(name, version, tag, key string) string {
		t.Helper()
		src := testenv.PluginDir(t, filepath.Join(vendor, version), name, fmt.Sprintf("name = %q\nversion = %q\n[config]\ntag = %q\n", name, version, tag), echoGuest)
		file := filepath.Join(vendor, name+"-"+version+".airlock")
		cli(t, bin, vendor, "", "pack", "--vendor", "acme", "-o", file, src)
		cli(t, bin, vendor, "", "sign", "-k", key+".key", file)
		out := cli(t, bin, vendor, "", "push", "--registry-config", dockerConfig, file, reg.Host+"/acme/"+name+":"+version)
		m := regexp.MustCompile(`ref = "(\S+@sha256:[0-9a-f]{64})"`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("push printed no ref:\n%s", out)
		}
		return m[1]
	}
	echo1 := push("echo", "1.0.0", "one", "acme")
	echo2 := push("echo", "2.0.0", "two", "acme")
	rogue := push("rogue", "1.0.0", "rogue", "evil")
	pubFile, err := os.ReadFile(filepath.Join(vendor, "acme.pub"))
	if err != nil {
		t.Fatal(err)
	}
	pub := strings.TrimSpace(string(pubFile))

	// The device: credentials stored with airlock login, password on stdin.
	device := filepath.Join(dir, "device")
	os.MkdirAll(device, 0o755)
	sock := filepath.Join(device, "admin.sock")
	conf := filepath.Join(device, "runtime.toml")
	runtimeTOML := func(refs ...string) {
		text := fmt.Sprintf(`state_dir = "state"
device = "sim"
[log]
audit = "off"
[admin]
socket = %q
[scenario]
play = "none"
[registry]
auth = "registry-auth.json"
retry_initial = "50ms"
retry_max = "400ms"
[[trust.vendor]]
name = "acme"
key = %q
[trust.vendor.ceiling]
`, sock, pub)
		for _, r := range refs {
			text += fmt.Sprintf("[[bundle]]\nref = %q\n", r)
		}
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	runtimeTOML(echo1, rogue)
	out := cli(t, bin, device, testenv.RegistryPassword+"\n", "login", "--config", conf, "-u", testenv.RegistryUser, "--password-stdin", reg.Host)
	if want := "logged in to " + reg.Host + " as " + testenv.RegistryUser + "; credentials stored through " + filepath.Join(device, "registry-auth.json") + "\n"; out != want {
		t.Errorf("login printed %q, want %q", out, want)
	}
	reg.Stop()

	// Boot with the registry down.
	a := startAirlock(t, bin, conf)
	a.wait(t, "airlock running")
	a.wait(t, "waiting for registry", "bundle="+echo1, "attempt=2")
	a.wait(t, "waiting for registry", "bundle="+rogue, "attempt=2")
	status := cli(t, bin, device, "", "status", "--socket", sock)
	waitingRe := func(ref string) string {
		return regexp.QuoteMeta("  "+ref+":\n") +
			`    waiting for registry \(attempt [1-9][0-9]*, next in [0-9.]+m?s\)\n` +
			regexp.QuoteMeta("    last error: pull "+ref+": the registry cannot be reached: "+reg.Host+": ") + `.*connection refused\n`
	}
	want := `^airlock host pid [0-9]+, device sim, reload off\n\nno plugins running\n\nbundles not pulled yet:\n` + waitingRe(echo1) + waitingRe(rogue) + `$`
	if !regexp.MustCompile(want).MatchString(status) {
		t.Fatalf("status while the registry is down:\n%s\nwant it to match:\n%s", status, want)
	}

	// The registry comes up: the plugin starts, without a restart; the
	// rogue bundle is refused, named by its ref.
	reg = testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true, Addr: addr, Root: storage})
	a.wait(t, "started tag=one")
	a.wait(t, "plugin not loaded", "bundle="+rogue)
	status = cli(t, bin, device, "", "status", "--socket", sock)
	// A vendor's plugin is known as vendor/name.
	if !regexp.MustCompile(`\nacme/echo +1\.0\.0 +running `).MatchString(status) {
		t.Errorf("status after the pull does not show echo running:\n%s", status)
	}
	if !strings.Contains(status, "\nnot loaded:\n  "+rogue+":\n    ") || strings.Contains(status, "bundles not pulled yet") || strings.Contains(status, "/bundles/oci/") {
		t.Errorf("status does not name the refused bundle by its ref:\n%s", status)
	}
	stop(t, a)

	// A new pin while offline: the cached 1.0.0 runs until 2.0.0 is pulled.
	reg.Stop()
	runtimeTOML(echo2)
	a = startAirlock(t, bin, conf)
	a.wait(t, "started tag=one")
	a.wait(t, "waiting for registry", "bundle="+echo2, "meanwhile="+echo1)
	status = cli(t, bin, device, "", "status", "--socket", sock)
	if !strings.Contains(status, "    meanwhile the cached "+echo1+" runs\n") {
		t.Errorf("status does not say the earlier version runs:\n%s", status)
	}
	testenv.StartRegistry(t, testenv.RegistryOptions{Auth: true, Addr: addr, Root: storage})
	a.wait(t, "plugin reloaded", "plugin=acme/echo", "from=1.0.0", "to=2.0.0")
	a.wait(t, "started tag=two")
	stop(t, a)
}

// cli runs the airlock binary in dir with stdin, and returns its stdout.
func cli(t *testing.T, bin, dir, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("airlock %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// stop ends airlock with SIGTERM and expects a clean exit.
func stop(t *testing.T, a *runningAirlock) {
	t.Helper()
	a.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- a.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("airlock exited with %v:\n%s", err, a.output())
		}
	case <-time.After(time.Minute):
		t.Fatalf("airlock did not stop:\n%s", a.output())
	}
	<-a.eof
}

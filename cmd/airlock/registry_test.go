package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/airlockhq/airlock/internal/admin"
)

// TestStatusShowsWaitingBundles: the exact words of status for a
// [[bundle]] that waits for its registry, with and without an earlier
// version running meanwhile, and NextIn's rounding.
func TestStatusShowsWaitingBundles(t *testing.T) {
	rep := admin.Report{Device: "real", PID: 7, Plugins: []admin.PluginReport{}, Failed: []admin.Failure{}, Waiting: []admin.Waiting{
		{Ref: "registry.example.com/acme/ntp@sha256:aa", Attempts: 3, NextIn: admin.NextIn(4230 * 1e6), Error: "pull registry.example.com/acme/ntp@sha256:aa: the registry cannot be reached: registry.example.com: dial tcp: lookup registry.example.com: no such host"},
		{Ref: "registry.example.com/acme/new@sha256:dd"},
		{Ref: "registry.example.com/acme/usb@sha256:bb", Attempts: 12, NextIn: admin.NextIn(299.6 * 1e9), Error: "pull registry.example.com/acme/usb@sha256:bb: the registry refused access: ...", Earlier: "registry.example.com/acme/usb@sha256:cc"},
	}}
	var out bytes.Buffer
	printReport(&out, rep)
	want := `airlock host pid 7, device real, reload off

no plugins running

bundles not pulled yet:
  registry.example.com/acme/ntp@sha256:aa:
    waiting for registry (attempt 3, next in 4.2s)
    last error: pull registry.example.com/acme/ntp@sha256:aa: the registry cannot be reached: registry.example.com: dial tcp: lookup registry.example.com: no such host
  registry.example.com/acme/new@sha256:dd:
    pulling from the registry (first attempt)
  registry.example.com/acme/usb@sha256:bb:
    waiting for registry (attempt 12, next in 5m0s)
    last error: pull registry.example.com/acme/usb@sha256:bb: the registry refused access: ...
    meanwhile the cached registry.example.com/acme/usb@sha256:cc runs
`
	if out.String() != want {
		t.Errorf("status:\n%s\nwant:\n%s", out.String(), want)
	}
}

// TestLoginNeedsACredentialsFile: login for a device's runtime.toml
// stores the credentials only where [registry] auth says, and reads the
// password only from stdin, never from an argument.
func TestLoginNeedsACredentialsFile(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "runtime.toml")
	os.WriteFile(conf, []byte("plugins = [\"plugins\"]\nstate_dir = \"state\"\n"), 0o644)
	stdin = bytes.NewReader([]byte("secret\n"))
	t.Cleanup(func() { stdin = os.Stdin })
	r := airlock("login", "--config", conf, "-u", "vendor", "--password-stdin", "127.0.0.1:1")
	if want := "airlock login: " + conf + " has no [registry] auth file to store credentials in (add auth = \"/data/airlock/registry-auth.json\" under [registry])\n"; r.code != 1 || r.stderr != want {
		t.Errorf("login without [registry] auth: %v\nwant %q", r, want)
	}
	if r := airlock("login", "-u", "vendor", "-p", "secret", "127.0.0.1:1"); r.code != 2 {
		t.Errorf("login took a password argument: %v", r)
	}
	stdin = bytes.NewReader(nil)
	if r := airlock("login", "--registry-config", filepath.Join(dir, "c.json"), "-u", "vendor", "--password-stdin", "127.0.0.1:1"); r.code != 1 || r.stderr != "airlock login: stdin held no password\n" {
		t.Errorf("login with an empty stdin: %v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "c.json")); err == nil {
		t.Error("a failed login wrote the credentials file")
	}
}

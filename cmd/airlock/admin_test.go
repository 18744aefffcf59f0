package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/builtin"
)

// startHost runs a host in the test on examples/ticker (built from source)
// and returns its runtime.toml.
func startHost(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "runtime.toml")
	os.WriteFile(conf, []byte(`plugins = ["`+filepath.Join(root, "examples", "ticker")+`"]
state_dir = "state"
build = "auto"
[log]
audit = "off"
`), 0o644)
	h := runHost(t, conf)
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if st := h.Status(); len(st) == 1 && st[0].State == "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ticker did not load: %v", h.Failures())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return conf
}

// runHost runs the host of conf until the test ends.
func runHost(t *testing.T, conf string) *host.Host {
	t.Helper()
	h, err := host.New(conf, host.Options{Capabilities: builtin.Capabilities()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

// status shows the audit records that the audit file could not take:
// /dev/full fails every write, as a full disk does, and each status
// request is audited before it is answered. The second request is the same
// decision as the first, so the gate folds it (its count is written when
// the 10 s window closes): the count is 1, or 2 on a machine so slow that
// the window closed between the two.
func TestStatusShowsAuditFailures(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		missing(t, "/dev/full, a device whose writes fail with ENOSPC")
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "plugins"), 0o755)
	conf := filepath.Join(dir, "runtime.toml")
	os.WriteFile(conf, []byte("plugins = [\"plugins\"]\nstate_dir = \"state\"\n[log]\naudit = \"/dev/full\"\n"), 0o644)
	runHost(t, conf)
	// The socket takes connections once it exists; a refused one is not
	// audited.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dir, "state", "admin.sock")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the host did not open its admin socket")
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"status", "--config", conf}, &out, &errb); code != 0 {
		t.Fatalf("status: exit %d: %s", code, errb.String())
	}
	if want := "\naudit records not written to the audit log: 1 (they went to stderr; check the disk and log.audit in runtime.toml)\n"; !strings.Contains(out.String(), want) {
		t.Errorf("status lacks %q:\n%s", want, out.String())
	}
	out.Reset()
	if code := run([]string{"status", "--config", conf, "--json"}, &out, &errb); code != 0 || !regexp.MustCompile(`"audit_failures": [12]\b`).MatchString(out.String()) {
		t.Errorf("status --json: exit %d, want \"audit_failures\": 1 (or 2):\n%s%s", code, out.String(), errb.String())
	}
}

func TestStatusAndTrigger(t *testing.T) {
	conf := startHost(t)
	var out, errb bytes.Buffer
	if code := run([]string{"status", "--config", conf}, &out, &errb); code != 0 {
		t.Fatalf("status: exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"airlock host pid ", "device sim, reload off",
		"PLUGIN", "ticker", "1.0.0", "running", "0/64", "storage.data", "timer:fast,timer:minute"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "audit records not written") {
		t.Errorf("status reports audit failures with the audit off:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"status", "--config", conf, "--json"}, &out, &errb); code != 0 || !strings.Contains(out.String(), `"name": "ticker"`) {
		t.Errorf("status --json: exit %d:\n%s%s", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run([]string{"trigger", "--config", conf, "ticker", "timer", "minute"}, &out, &errb); code != 0 || out.String() != "queued timer minute for ticker\n" {
		t.Errorf("trigger: exit %d: %q %s", code, out.String(), errb.String())
	}

	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"trigger", "--config", conf, "ticker", "timer", "hourly"}, 1, `plugin "ticker" has no timer "hourly" (its timers: fast, minute)`},
		{[]string{"trigger", "--config", conf, "ticker"}, 2, "name a plugin and an event"},
		{[]string{"trigger", "--config", conf, "ticker", "udev", "add"}, 2, "udev takes an ACTION, a DEVPATH"},
		{[]string{"trigger", "--config", conf, "ticker", "udev", "add", "/devices/x", "NOEQUALS"}, 2, `udev property "NOEQUALS": write KEY=VALUE`},
		{[]string{"trigger", "--config", conf, "ticker", "mount", "x"}, 2, `unknown event "mount"`},
		{[]string{"status", "--socket", filepath.Join(t.TempDir(), "none.sock")}, 1, "no airlock host is listening on"},
	}
	for _, c := range cases {
		r := airlock(c.args...)
		if printed, other := r.streams(); r.code != c.code || !strings.Contains(printed, c.want) || other != "" {
			t.Errorf("airlock %v: %v\nwant exit %d and %q on stderr", c.args, r, c.code, c.want)
		}
	}
}

package security

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/internal/admin"
	"github.com/airlockhq/airlock/internal/testenv"
)

// TestAuditFailureIsVisible points the audit log at /dev/full, where every
// write fails with ENOSPC as on a full disk, and makes audited requests on
// the admin socket. slog drops write errors; the host must not: each failed
// record is counted, the main log says so once (not once per record), and
// the host goes on answering.
func TestAuditFailureIsVisible(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		testenv.Missing(t, "/dev/full, a device whose writes fail with ENOSPC")
	}
	_, log := auditedRequests(t, "/dev/full")
	if n := log.Count("audit log write failed", "audit records go to stderr", "path=/dev/full", "no space left on device"); n != 1 {
		t.Errorf("%d main-log notices of the failing audit log, want exactly 1 (rate-limited):\n%s", n, strings.Join(log.Lines(), "\n"))
	}
}

// TestAuditToStderrFailureIsCounted: with the audit stream on stderr (the
// default) and stderr a pipe nobody reads any more, the records are lost,
// but counted, and said so on the main log.
func TestAuditToStderrFailureIsCounted(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close() // writes to w now fail with EPIPE
	defer w.Close()
	stderr := os.Stderr
	os.Stderr = w // read by host.New, which this test calls after
	defer func() { os.Stderr = stderr }()
	_, log := auditedRequests(t, "stderr")
	if n := log.Count("audit log write failed", "audit records are lost", "path=stderr", "broken pipe"); n != 1 {
		t.Errorf("%d main-log notices of the failing audit log, want exactly 1 (rate-limited):\n%s", n, strings.Join(log.Lines(), "\n"))
	}
}

// auditedRequests runs a host whose audit stream goes to audit, makes
// distinct audited requests on its admin socket, and checks that each one is
// answered and that each record that could not be written is counted.
func auditedRequests(t *testing.T, audit string) (*host.Host, *testenv.Log) {
	t.Helper()
	dir := t.TempDir()
	testenv.PluginDir(t, filepath.Join(dir, "plugins"), "c", "name = \"c\"\nversion = \"0.1.0\"\n", counter)
	sock := filepath.Join(dir, "admin.sock")
	rt := fmt.Sprintf("plugins = [\"plugins\"]\nstate_dir = \"state\"\n[log]\naudit = %q\n[admin]\nsocket = %q\n", audit, sock)
	if err := os.WriteFile(filepath.Join(dir, "runtime.toml"), []byte(rt), 0o644); err != nil {
		t.Fatal(err)
	}
	log, logger := testenv.NewLog(t)
	h, err := host.New(filepath.Join(dir, "runtime.toml"), host.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(60 * time.Second):
			t.Error("host did not stop")
		}
	})
	log.Wait(1, "airlock running")

	c := admin.NewClient(sock)
	const requests = 5
	for i := 0; i < requests; i++ {
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		rep, err := c.Status(rctx)
		rcancel()
		if err != nil {
			t.Fatalf("status %d: %v (the host must go on when its audit log fails)", i, err)
		}
		if len(rep.Plugins) != 1 {
			t.Fatalf("status %d: %d plugins, want 1", i, len(rep.Plugins))
		}
		// Identical status requests fold into one record (host/gate); a
		// trigger for a plugin of another name is a record of its own.
		rctx, rcancel = context.WithTimeout(context.Background(), 10*time.Second)
		_, err = c.Trigger(rctx, admin.TriggerRequest{Plugin: fmt.Sprintf("none%d", i), Kind: "timer"})
		rcancel()
		if err == nil {
			t.Fatalf("trigger %d: a plugin that is not running was triggered", i)
		}
	}
	if n := h.AuditFailures(); n < requests {
		t.Errorf("AuditFailures() = %d after %d audited requests, want at least %d", n, requests, requests)
	}
	return h, log
}

package host

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host/manifest"
)

// TestLogDurationsAreDurations: in JSON too, a duration reads "1.5s", not
// 1500000000.
func TestLogDurationsAreDurations(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		var b bytes.Buffer
		slog.New(LogHandler(&b, format, nil)).Info("restarting", "restart_in", 1500*time.Millisecond, slog.Group("g", "d", time.Minute))
		if !strings.Contains(b.String(), "1.5s") || !strings.Contains(b.String(), "1m0s") || strings.Contains(b.String(), "1500000000") {
			t.Errorf("%s: %s", format, b.String())
		}
	}
}

// TestAuditOnSharedStreamTakesTheLogFormat: with log.audit = "stderr" (the
// default), the audit records are lines of the host's text log, not JSON
// in its middle; with log.format = "json" they are JSON, as in a file.
func TestAuditOnSharedStreamTakesTheLogFormat(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		stderr := os.Stderr
		os.Stderr = w
		audit, _, err := openAudit(manifest.Log{Audit: "stderr", Format: format}, slog.New(slog.DiscardHandler))
		os.Stderr = stderr
		if err != nil {
			t.Fatal(err)
		}
		audit.Warn("audit", "plugin", "p", "decision", "deny", "reason", "no grant")
		w.Close()
		out, _ := io.ReadAll(r)
		line := strings.TrimSpace(string(out))
		var m map[string]any
		isJSON := json.Unmarshal([]byte(line), &m) == nil
		switch {
		case format == "text" && (isJSON || !strings.Contains(line, "level=WARN msg=audit stream=audit plugin=p decision=deny")):
			t.Errorf("text log: audit line %q", line)
		case format == "json" && (!isJSON || m["stream"] != "audit"):
			t.Errorf("json log: audit line %q", line)
		}
	}
}

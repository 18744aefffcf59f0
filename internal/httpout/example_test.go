package httpout_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/host/plugintest"
	"github.com/airlockhq/airlock/internal/mount"
)

// The webhook example, built from source with the Go SDK and run in a real
// host on the simulated device: a stick plugged in becomes a POST to the
// echo service through airlock_http_v1, the grant's host-held token is
// added by the host, comes back redacted, and is in no log or audit line.
func TestWebhookExample(t *testing.T) {
	secret := "whk-e2e-token-3b1f9c"
	t.Setenv("WEBHOOK_TOKEN", secret)
	h := plugintest.New(t, filepath.Join(repoRoot(t), "examples/webhook"), plugintest.Options{
		Runtime: "[http.secrets.webhook]\nenv = \"WEBHOOK_TOKEN\"\n",
		Sticks:  []mount.Stick{{Label: "HOOKED"}},
	})
	h.Plug("HOOKED")
	h.Logs().Wait(1, "webhook sent", "label=HOOKED", "status=200", `Bearer [redacted]`, `"path":"/hooks/stick"`)
	if h.Audit().Count("capability=http", "decision=allow", "POST http://echo.sim.airlock:80/hooks/stick") != 1 {
		t.Errorf("audit:\n%s", strings.Join(h.Audit().Lines(), "\n"))
	}
	all := strings.Join(append(h.Logs().Lines(), h.Audit().Lines()...), "\n")
	if strings.Contains(all, secret) {
		t.Error("the secret reached a log or audit line")
	}
}

func repoRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = parent
	}
}

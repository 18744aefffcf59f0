package gate

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/abi"
)

func TestCheckAuditsBothWays(t *testing.T) {
	var buf bytes.Buffer
	g := New(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: dropTime})))
	ctx := context.Background()
	if err := g.Check(ctx, "p", "supervisor", "reboot", Allow(`granted by supervisor.allow "reboot"`)); err != nil {
		t.Fatalf("allowed op returned %v", err)
	}
	err := g.Check(ctx, "p", "supervisor", "shutdown", Deny(`supervisor.allow does not list "shutdown"`))
	var d *Denial
	if !errors.As(err, &d) || d.Errno() != abi.Denied {
		t.Fatalf("denied op returned %v, want a *Denial", err)
	}
	if want := `plugin "p": supervisor shutdown denied: supervisor.allow does not list "shutdown"`; err.Error() != want {
		t.Errorf("message = %q, want %q", err, want)
	}
	want := `level=INFO msg=audit plugin=p capability=supervisor op=reboot decision=allow reason="granted by supervisor.allow \"reboot\""
level=WARN msg=audit plugin=p capability=supervisor op=shutdown decision=deny reason="supervisor.allow does not list \"shutdown\""
`
	if got := buf.String(); got != want {
		t.Errorf("audit =\n%s\nwant\n%s", got, want)
	}
}

func TestZeroGateDiscards(t *testing.T) {
	if err := New(nil).Check(context.Background(), "p", "c", "o", Deny("no")); err == nil || !strings.Contains(err.Error(), "denied") {
		t.Fatalf("got %v", err)
	}
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

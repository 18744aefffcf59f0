package gate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

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

// auditRecords parses a JSON audit stream and returns its records.
func auditRecords(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// decisions sums what the records stand for: 1 for a record of its own,
// its count for a folded one.
func decisions(recs []map[string]any) (total uint64, byDecision map[string]uint64) {
	byDecision = map[string]uint64{}
	for _, r := range recs {
		if r["msg"] != "audit" {
			continue
		}
		n := uint64(1)
		if c, ok := r["count"].(float64); ok {
			n = uint64(c)
		}
		total += n
		byDecision[r["decision"].(string)] += n
	}
	return total, byDecision
}

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClocked(w *bytes.Buffer, p Policy) (*Gate, *fakeClock) {
	g := NewWithPolicy(slog.New(slog.NewJSONHandler(w, nil)), p)
	c := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	g.now = c.now
	return g, c
}

// A plugin in a loop of identical denied calls: one record, then the
// throttle's record, then the folded counts; the counts are exact, and the
// calls past the denial burst fail with abi.Busy.
func TestIdenticalDenialsFoldAndThrottle(t *testing.T) {
	var buf bytes.Buffer
	g, clock := newClocked(&buf, Policy{})
	ctx := context.Background()
	const calls = 100_000
	var denied, throttled int
	for i := 0; i < calls; i++ {
		err := g.Check(ctx, "hostile", "supervisor", "reboot", Deny(`supervisor.allow does not list "reboot"`))
		var d *Denial
		var th *Throttled
		switch {
		case errors.As(err, &d):
			denied++
		case errors.As(err, &th):
			if th.Errno() != abi.Busy {
				t.Fatalf("throttled errno = %v", th.Errno())
			}
			throttled++
		default:
			t.Fatalf("call %d: %v", i, err)
		}
		if i%1000 == 0 {
			clock.add(300 * time.Millisecond) // 30 s in all: three windows
		}
	}
	g.Close()
	recs := auditRecords(t, buf.Bytes())
	total, by := decisions(recs)
	if total != calls {
		t.Errorf("records stand for %d calls, want %d (%v)", total, calls, by)
	}
	if by["deny"] != uint64(denied) || by["throttled"] != uint64(throttled) {
		t.Errorf("records say %v; the gate answered %d denied, %d throttled", by, denied, throttled)
	}
	if throttled == 0 {
		t.Error("a plugin in a loop of denied calls was never throttled")
	}
	if len(recs) > 20 {
		t.Errorf("%d records for one repeated decision over 30 s, want at most 20:\n%s", len(recs), buf.String())
	}
}

// Distinct decisions (a plugin varies its arguments so that no two are
// identical) are written up to the rate, then counted by capability and
// op; the counts stay exact and the records bounded.
func TestDistinctDecisionsAreRateLimited(t *testing.T) {
	var buf bytes.Buffer
	g, clock := newClocked(&buf, Policy{DenyBurst: 1e9, DenyRate: 1e9})
	ctx := context.Background()
	const calls = 50_000
	for i := 0; i < calls; i++ {
		g.Check(ctx, "hostile", "dbus", fmt.Sprintf("call dest%d", i%5000), Deny(fmt.Sprintf("no rule for %d", i)))
		if i%5000 == 0 {
			clock.add(time.Second)
		}
	}
	g.Close()
	recs := auditRecords(t, buf.Bytes())
	if total, by := decisions(recs); total != calls {
		t.Errorf("records stand for %d calls, want %d (%v)", total, calls, by)
	}
	// Ten seconds: the burst plus the rate for the time, plus one folded
	// record per key and window (two windows).
	p := DefaultPolicy
	if bound := int(p.Burst+10*p.Rate) + 2*(2*p.Keys+1); len(recs) > bound {
		t.Errorf("%d records, want at most %d", len(recs), bound)
	}
}

// Folded counts are written when the window closes by itself, with no
// further call, and at Close.
func TestFoldedCountsAreWrittenWhenTheWindowCloses(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	g := NewWithPolicy(slog.New(slog.NewJSONHandler(lockedWriter{&mu, &buf}, nil)), Policy{Window: 50 * time.Millisecond})
	defer g.Close()
	for i := 0; i < 3; i++ {
		g.Check(context.Background(), "p", "supervisor", "reboot", Allow("listed"))
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		s := buf.String()
		mu.Unlock()
		if strings.Contains(s, `"count":2`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no folded record after the window:\n%s", s)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// The admin socket names a plugin from its request: 5,000 names keep at
// most maxAccounts accounts (and one shared), and the counts stay exact.
func TestAccountsAreBounded(t *testing.T) {
	var buf bytes.Buffer
	g, _ := newClocked(&buf, Policy{})
	const names = 5000
	for i := 0; i < names; i++ {
		g.Check(context.Background(), fmt.Sprintf("none%d", i), "admin", "trigger timer", Deny("no such plugin is running"))
	}
	if n := len(g.plugins); n > maxAccounts+1 {
		t.Errorf("%d accounts for %d names, want at most %d", n, names, maxAccounts+1)
	}
	g.Close()
	if total, _ := decisions(auditRecords(t, buf.Bytes())); total != names {
		t.Errorf("records stand for %d decisions, want %d", total, names)
	}
}

// Package gate is the one place where a plugin's use of a capability is
// allowed or denied. Each capability decides with its own grant type; the gate
// turns that decision into an audit record and, for a denial, into the error
// the guest reads. Nothing reaches outside the sandbox without passing here.
//
// The audit trail is complete in meaning and bounded in size: repeated
// identical decisions are folded into one record with an exact count, a
// plugin's records are rate-limited (what is above the rate is counted, never
// dropped uncounted), and a plugin that hammers denied calls is throttled.
// Policy holds the numbers; SECURITY.md states them.
package gate

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/airlockhq/airlock/abi"
)

// Decision is a capability's verdict on one operation.
type Decision struct {
	Allowed bool
	// Reason says why, in words an operator understands: which grant
	// matched, or what the manifest lacks.
	Reason string
}

// Allow and Deny build Decisions.
func Allow(reason string) Decision { return Decision{Allowed: true, Reason: reason} }
func Deny(reason string) Decision  { return Decision{Reason: reason} }

// Denial is the error for a denied operation. Its message is what the guest
// reads after abi.Denied.
type Denial struct {
	Plugin, Capability, Op, Reason string
}

func (d *Denial) Error() string {
	return fmt.Sprintf("plugin %q: %s %s denied: %s", d.Plugin, d.Capability, d.Op, d.Reason)
}

// Errno maps a Denial to abi.Denied.
func (d *Denial) Errno() abi.Errno { return abi.Denied }

// Throttled is the error for any gated call of a plugin that made more
// denied calls than Policy allows: the call is refused without reaching the
// capability, until the throttle ends.
type Throttled struct {
	Plugin, Capability, Op string
	Until                  time.Time
}

func (t *Throttled) Error() string {
	return fmt.Sprintf("plugin %q: %s %s refused: throttled after too many denied calls, until %s (fix the plugin, or its grants in plugin.toml)",
		t.Plugin, t.Capability, t.Op, t.Until.UTC().Format(time.RFC3339))
}

// Errno maps a Throttled to abi.Busy: retry later, after the throttle.
func (t *Throttled) Errno() abi.Errno { return abi.Busy }

// Policy bounds the audit stream of each plugin. The zero value of a field
// means its default (DefaultPolicy).
type Policy struct {
	// Window is how long identical decisions are folded: the first is
	// written at once, the others counted and written as one record
	// (with "count") when the window closes.
	Window time.Duration
	// Rate and Burst bound the records a plugin may cause per second, as
	// a token bucket. A new decision above it is not written on its own
	// but counted in a summary by capability, op and decision.
	Rate  float64
	Burst float64
	// DenyRate and DenyBurst bound a plugin's denied calls per second. A
	// plugin above them is throttled for ThrottleFor: every gated call
	// fails with abi.Busy, counted, and a record says so.
	DenyRate    float64
	DenyBurst   float64
	ThrottleFor time.Duration
	// Keys bounds the distinct decisions folded per plugin and window;
	// past it, decisions are counted by capability, op and decision only
	// (and past 2×Keys, by capability and decision only).
	Keys int
}

// DefaultPolicy is what SECURITY.md states.
var DefaultPolicy = Policy{
	Window: 10 * time.Second, Rate: 20, Burst: 200,
	DenyRate: 50, DenyBurst: 500, ThrottleFor: 10 * time.Second, Keys: 64,
}

func (p Policy) withDefaults() Policy {
	d := DefaultPolicy
	orDefault(&p.Window, d.Window)
	orDefault(&p.Rate, d.Rate)
	orDefault(&p.Burst, d.Burst)
	orDefault(&p.DenyRate, d.DenyRate)
	orDefault(&p.DenyBurst, d.DenyBurst)
	orDefault(&p.ThrottleFor, d.ThrottleFor)
	orDefault(&p.Keys, d.Keys)
	return p
}

func orDefault[T int | float64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Gate writes the audit stream. The zero Gate discards records; it is safe
// for concurrent use.
type Gate struct {
	audit  *slog.Logger
	policy Policy
	now    func() time.Time

	// mu guards plugins and flush, and orders the records: a decision's
	// first record is written before its folded count.
	mu      sync.Mutex
	plugins map[string]*account
	flush   *time.Timer // closes the windows; nil when nothing is pending
	closed  bool
}

// account is one plugin's audit state in the current window.
type account struct {
	start   time.Time // of the window
	folds   map[key]*fold
	tokens  float64 // record bucket
	denials float64 // denial bucket
	filled  time.Time
	// throttledUntil is zero unless the plugin is throttled.
	throttledUntil time.Time
}

// key identifies a decision. A coarse key (summary) leaves out the reason,
// and past the key bound the op too.
type key struct {
	capability, op, decision, reason string
	summary                          bool
}

type fold struct {
	count       uint64 // decisions not yet written
	first, last time.Time
	written     bool // the first decision of the window was written on its own
}

// New returns a gate that writes audit records to audit (nil discards them)
// under DefaultPolicy.
func New(audit *slog.Logger) *Gate { return NewWithPolicy(audit, Policy{}) }

// NewWithPolicy is New with other bounds (tests use small ones).
func NewWithPolicy(audit *slog.Logger, p Policy) *Gate {
	if audit == nil {
		audit = slog.New(slog.DiscardHandler)
	}
	return &Gate{audit: audit, policy: p.withDefaults(), now: time.Now, plugins: map[string]*account{}}
}

// Decision names in the audit stream.
const (
	verdictAllow     = "allow"
	verdictDeny      = "deny"
	verdictThrottled = "throttled"
)

// Check records the decision for plugin's use of capability's op, and returns
// a *Denial when it is not allowed, or a *Throttled when the plugin is
// throttled. Every allow and deny goes through here.
func (g *Gate) Check(ctx context.Context, plugin, capability, op string, d Decision) error {
	if g.plugins == nil { // the zero Gate
		return zeroCheck(plugin, capability, op, d)
	}
	verdict := verdictAllow
	if !d.Allowed {
		verdict = verdictDeny
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	a := g.account(plugin, now)
	if now.Before(a.throttledUntil) {
		g.count(ctx, plugin, a, key{capability: capability, op: op, decision: verdictThrottled, summary: true}, now)
		return &Throttled{Plugin: plugin, Capability: capability, Op: op, Until: a.throttledUntil}
	}
	if !d.Allowed {
		if a.denials < 1 {
			a.throttledUntil = now.Add(g.policy.ThrottleFor)
			g.audit.LogAttrs(ctx, slog.LevelError, "audit",
				slog.String("plugin", plugin), slog.String("capability", capability), slog.String("op", op),
				slog.String("decision", verdictThrottled), slog.Uint64("count", 1),
				slog.String("reason", fmt.Sprintf("more than %.0f denied calls at once (%.0f a second sustained); every capability call fails with %q until %s",
					g.policy.DenyBurst, g.policy.DenyRate, abi.Busy, a.throttledUntil.UTC().Format(time.RFC3339))))
			g.schedule()
			return &Throttled{Plugin: plugin, Capability: capability, Op: op, Until: a.throttledUntil}
		}
		a.denials--
	}
	k := key{capability: capability, op: op, decision: verdict, reason: d.Reason}
	if f, ok := a.folds[k]; ok {
		f.count++
		f.last = now
		g.schedule()
	} else if len(a.folds) < g.policy.Keys && a.tokens >= 1 {
		a.tokens--
		a.folds[k] = &fold{first: now, last: now, written: true}
		level := slog.LevelInfo
		if !d.Allowed {
			level = slog.LevelWarn
		}
		g.audit.LogAttrs(ctx, level, "audit",
			slog.String("plugin", plugin), slog.String("capability", capability),
			slog.String("op", op), slog.String("decision", verdict), slog.String("reason", d.Reason))
	} else {
		g.count(ctx, plugin, a, key{capability: capability, op: op, decision: verdict, summary: true}, now)
	}
	if !d.Allowed {
		return &Denial{Plugin: plugin, Capability: capability, Op: op, Reason: d.Reason}
	}
	return nil
}

// zeroCheck is Check for the zero Gate: no records.
func zeroCheck(plugin, capability, op string, d Decision) error {
	if !d.Allowed {
		return &Denial{Plugin: plugin, Capability: capability, Op: op, Reason: d.Reason}
	}
	return nil
}

// count folds one decision into a summary key, coarser still when the
// plugin has too many keys. The caller holds mu.
func (g *Gate) count(ctx context.Context, plugin string, a *account, k key, now time.Time) {
	if _, ok := a.folds[k]; !ok && len(a.folds) >= 2*g.policy.Keys {
		k.op = "*"
	}
	f, ok := a.folds[k]
	if !ok {
		f = &fold{first: now}
		a.folds[k] = f
	}
	f.count++
	f.last = now
	g.schedule()
}

// maxAccounts bounds the plugins the gate keeps state for. Plugins are few,
// but the admin socket names a plugin from its request; past the bound,
// the others share one account.
const maxAccounts = 1024

// otherPlugins names the shared account.
const otherPlugins = "(other)"

// account returns plugin's state, refilling its buckets and closing its
// window if it has ended. The caller holds mu.
func (g *Gate) account(plugin string, now time.Time) *account {
	a, ok := g.plugins[plugin]
	if !ok && len(g.plugins) >= maxAccounts {
		plugin = otherPlugins
		a, ok = g.plugins[plugin]
	}
	if !ok {
		a = &account{start: now, folds: map[key]*fold{}, tokens: g.policy.Burst, denials: g.policy.DenyBurst, filled: now}
		g.plugins[plugin] = a
		return a
	}
	if dt := now.Sub(a.filled).Seconds(); dt > 0 {
		a.tokens = min(g.policy.Burst, a.tokens+dt*g.policy.Rate)
		a.denials = min(g.policy.DenyBurst, a.denials+dt*g.policy.DenyRate)
		a.filled = now
	}
	if now.Sub(a.start) >= g.policy.Window {
		g.close(context.Background(), plugin, a)
		a.start = now
	}
	return a
}

// close writes the folded counts of a's window and empties it. The caller
// holds mu.
func (g *Gate) close(ctx context.Context, plugin string, a *account) {
	for k, f := range sortedFolds(a.folds) {
		if f.count == 0 {
			continue
		}
		level := slog.LevelInfo
		if k.decision != verdictAllow {
			level = slog.LevelWarn
		}
		reason := k.reason
		switch {
		case k.decision == verdictThrottled:
			reason = "refused while the plugin was throttled"
		case k.summary:
			reason = fmt.Sprintf("above the plugin's audit rate (%.0f records a second, %d distinct decisions per %s): counted, reasons not kept", g.policy.Rate, g.policy.Keys, g.policy.Window)
		default:
			reason = "repeated: " + reason
		}
		g.audit.LogAttrs(ctx, level, "audit",
			slog.String("plugin", plugin), slog.String("capability", k.capability),
			slog.String("op", k.op), slog.String("decision", k.decision), slog.String("reason", reason),
			slog.Uint64("count", f.count), slog.Time("first", f.first), slog.Time("last", f.last))
	}
	clear(a.folds)
}

// schedule makes sure a timer closes the pending windows. The caller holds
// mu.
func (g *Gate) schedule() {
	if g.flush != nil || g.closed {
		return
	}
	g.flush = time.AfterFunc(g.policy.Window, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.flush = nil
		if g.closed {
			return
		}
		now := g.now()
		pending := false
		for plugin, a := range g.plugins {
			if now.Sub(a.start) >= g.policy.Window {
				g.close(context.Background(), plugin, a)
				a.start = now
			}
			for _, f := range a.folds {
				pending = pending || f.count > 0
			}
			// A plugin quiet for a whole window has full buckets again:
			// forget it, so that the map holds the active ones only.
			if len(a.folds) == 0 && !now.Before(a.throttledUntil) && now.Sub(a.filled) >= g.policy.Window {
				delete(g.plugins, plugin)
			}
		}
		if pending {
			g.schedule()
		}
	})
}

// Flush writes every pending folded count now, as the end of a window.
func (g *Gate) Flush() {
	if g.plugins == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	for plugin, a := range g.plugins {
		g.close(context.Background(), plugin, a)
		a.start = now
	}
}

// Close flushes the pending counts and stops the window timer. The host
// calls it when the run ends, before it closes the audit sink; a later Check
// still works, and its counts are written at the next Flush.
func (g *Gate) Close() {
	g.Flush()
	if g.plugins == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	if g.flush != nil {
		g.flush.Stop()
		g.flush = nil
	}
}

// sortedFolds yields folds in a fixed order, so that a window's records
// read the same way each time.
func sortedFolds(m map[key]*fold) iter.Seq2[key, *fold] {
	keys := make([]key, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.capability, b.capability), cmp.Compare(a.op, b.op),
			cmp.Compare(a.decision, b.decision), cmp.Compare(a.reason, b.reason))
	})
	return func(yield func(key, *fold) bool) {
		for _, k := range keys {
			if !yield(k, m[k]) {
				return
			}
		}
	}
}

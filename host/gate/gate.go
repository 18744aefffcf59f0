// Package gate is the one place where a plugin's use of a capability is
// allowed or denied. Each capability decides with its own grant type; the gate
// turns that decision into an audit record and, for a denial, into the error
// the guest reads. Nothing reaches outside the sandbox without passing here.
package gate

import (
	"context"
	"fmt"
	"log/slog"

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

// Gate writes the audit stream. The zero Gate discards records; it is safe
// for concurrent use, since slog handlers are.
type Gate struct {
	audit *slog.Logger
}

// New returns a gate that writes audit records to audit (nil discards them).
func New(audit *slog.Logger) *Gate {
	if audit == nil {
		audit = slog.New(slog.DiscardHandler)
	}
	return &Gate{audit: audit}
}

// Check records the decision for plugin's use of capability's op, and returns
// a *Denial when it is not allowed. Every allow and deny goes through here.
func (g *Gate) Check(ctx context.Context, plugin, capability, op string, d Decision) error {
	level := slog.LevelInfo
	verdict := "allow"
	if !d.Allowed {
		level, verdict = slog.LevelWarn, "deny"
	}
	g.audit.LogAttrs(ctx, level, "audit",
		slog.String("plugin", plugin), slog.String("capability", capability),
		slog.String("op", op), slog.String("decision", verdict), slog.String("reason", d.Reason))
	if !d.Allowed {
		return &Denial{Plugin: plugin, Capability: capability, Op: op, Reason: d.Reason}
	}
	return nil
}

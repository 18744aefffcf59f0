// Package admin is the host's local control socket: a small HTTP API on a
// Unix socket that `airlock status` and `airlock trigger` use. Only root and
// the host's own user may use it (the socket's mode is 0600 and each
// connection's SO_PEERCRED is checked), and every request is audited through
// the gate. host/RATIONALE.md ("Operations") says why HTTP.
package admin

import (
	"fmt"
	"time"

	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/manifest"
)

// Paths of the API. Both answer JSON; an error is {"error": "..."} with a
// 4xx or 5xx status.
const (
	PathStatus  = "/v1/status"  // GET: a Report
	PathTrigger = "/v1/trigger" // POST a TriggerRequest: a TriggerReply
)

// Report is what `airlock status` shows.
type Report struct {
	Device  string         `json:"device"`
	PID     int            `json:"pid"`
	Reload  bool           `json:"reload"`
	Metrics string         `json:"metrics,omitempty"` // the endpoint's address, if on
	Plugins []PluginReport `json:"plugins"`
	// Failed are the plugin directories, bundle files and [[bundle]] refs
	// whose plugin did not load (or whose reload failed while the old
	// version runs on).
	Failed []Failure `json:"failed"`
	// Waiting are the [[bundle]]s whose pull failed and is retried.
	Waiting []Waiting `json:"waiting"`
	// AuditFailures counts the audit records that could not be written to
	// the audit file (log.audit), such as on a full disk; they went to
	// stderr instead. Always 0 when the audit goes to stderr or stdout.
	AuditFailures uint64 `json:"audit_failures"`
	// Sources are what trigger sources lost before routing, such as the
	// kernel's uevent socket overflowing.
	Sources []SourceReport `json:"sources"`
}

// SourceReport is one trigger source's losses since the host started.
type SourceReport struct {
	Source    string `json:"source"`    // udev
	Overflows uint64 `json:"overflows"` // times its input overflowed (ENOBUFS)
	Lost      uint64 `json:"lost"`      // events lost to them (from the kernel's SEQNUM gaps)
}

// PluginReport is one running plugin.
type PluginReport struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Dir      string `json:"dir"`
	State    string `json:"state"`
	Restarts int    `json:"restarts"`
	Queue    int    `json:"queue"`     // events waiting
	QueueCap int    `json:"queue_cap"` // limits.queue
	// Dropped counts events lost since the plugin (this version) loaded:
	// to a full queue or over limits.events_per_second; RateLimited is the
	// part over the rate. Coalesced counts events replaced in the queue by
	// a newer one of the same source (a timer's tick, a device's change).
	// handled + dropped + coalesced = queued, exactly.
	Dropped         uint64            `json:"dropped"`
	RateLimited     uint64            `json:"rate_limited"`
	Coalesced       uint64            `json:"coalesced"`
	DroppedByKind   map[string]uint64 `json:"dropped_by_kind"`   // by event kind: timer, udev, dbus_signal, mount
	CoalescedByKind map[string]uint64 `json:"coalesced_by_kind"` // by event kind
	LastError       string            `json:"last_error,omitempty"`
	Grants          []string          `json:"grants"`   // granted capabilities
	Triggers        []string          `json:"triggers"` // timers and trigger sections
}

// Failure is a plugin directory that did not load, and why.
type Failure struct {
	Dir   string `json:"dir"` // or a bundle file, or a [[bundle]] ref
	Error string `json:"error"`
}

// Waiting is a [[bundle]] that could not be pulled yet.
type Waiting struct {
	Ref      string `json:"ref"`               // as in [[bundle]]
	Attempts int    `json:"attempts"`          // failed so far; 0 during the first
	NextIn   string `json:"next_in,omitempty"` // until the next attempt, rounded (NextIn)
	Error    string `json:"error,omitempty"`   // of the last attempt
	// Earlier is the pinned ref of an earlier pull of the same repository
	// that runs from the cache meanwhile, or "".
	Earlier string `json:"earlier,omitempty"`
}

// Status is the one line status shows for w.
func (w Waiting) Status() string {
	if w.Attempts == 0 {
		return "pulling from the registry (first attempt)"
	}
	return fmt.Sprintf("waiting for registry (attempt %d, next in %s)", w.Attempts, w.NextIn)
}

// NextIn rounds the time until the next attempt for people: to a tenth of
// a second below ten seconds, to the second above.
func NextIn(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// Host is what the server needs of the running host.
type Host interface {
	Report() Report
	// Manifest returns the running plugin's manifest, or nil.
	Manifest(plugin string) *manifest.Manifest
	// Deliver queues ev for plugin without blocking; false if it was not
	// queued (unknown plugin, full queue under drop_newest, over the rate
	// limit, stopping).
	Deliver(plugin string, ev capability.Event) bool
	// Synthesizers make the synthetic events of each trigger kind.
	Synthesizers() []capability.Synthesizer
}

// TriggerRequest asks for a synthetic event for one plugin.
type TriggerRequest struct {
	Plugin string   `json:"plugin"`
	Kind   string   `json:"kind"` // the trigger kind: timer, udev, dbus, ...
	Args   []string `json:"args"` // KEY=VALUE, as the kind's capability.SynthHelp names the keys
}

// TriggerReply says what was queued.
type TriggerReply struct {
	Queued bool   `json:"queued"`
	Event  string `json:"event"` // a one-line description
}

// Package capability is the contract between the host and each power a
// plugin can be granted (supervisor, dbus, mount, ...). A capability is one
// package that owns its manifest section, its grant, its host functions and
// its backends, and registers here through the Capability interface.
package capability

import (
	"context"
	"log/slog"
	"strings"

	"github.com/tetratelabs/wazero/api"

	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/host/manifest"
)

// Capability is one power a plugin can be granted. Its life follows Caddy's
// modules: the host decodes the runtime section (Configure), starts its
// backends (Provision), decodes each manifest's grant, exports its host
// functions to each plugin that is granted it, and finally Closes it, which
// must be safe after a partial Provision.
type Capability interface {
	// Name is the manifest and runtime.toml section, and the audit name:
	// "supervisor".
	Name() string
	// Module is the wasm import module of its host functions, such as
	// "airlock_supervisor_v1", or "" if it has none (a trigger-only source).
	Module() string
	// DecodeGrant decodes the plugin.toml section. A plugin whose manifest
	// lacks the section has no grant and cannot import Module.
	DecodeGrant(s manifest.Section) (any, error)
	// Functions lists the host functions of Module.
	Functions() []Func
}

// Configurer is a Capability with a runtime.toml section of its own.
type Configurer interface {
	DecodeConfig(s manifest.Section) (any, error)
}

// Provisioner is a Capability with backends to start once the runtime
// config is known. env says which device (simulated or real) to use.
type Provisioner interface {
	Provision(ctx context.Context, env Env) error
}

// Closer releases what Provision started.
type Closer interface {
	Close() error
}

// LossCounter is a trigger source that can lose events before it routes
// them (a kernel socket that overflows). Status and the metrics show what
// it reports; what a plugin's queue loses, the plugin's status counts.
type LossCounter interface {
	SourceLosses() SourceLosses
}

// SourceLosses is what one trigger source lost since the host started.
type SourceLosses struct {
	Source    string // the capability's name
	Overflows uint64 // times its input overflowed
	Lost      uint64 // events lost to those overflows
}

// Triggerer is a Capability that wakes plugins: udev events, D-Bus signals.
// It decodes [[trigger.<Trigger()>]] tables and, once started, delivers
// matching events through the Deliver function it is given.
type Triggerer interface {
	Trigger() string
	DecodeTrigger(s manifest.Section) (any, error)
	// Subscribe is told each loaded plugin's trigger rules (nil if none),
	// before Start and whenever a plugin is (re)loaded.
	Subscribe(plugin string, rules any)
	Start(ctx context.Context, deliver Deliver) error
}

// GrantSubscriber is a Triggerer whose trigger rules must fall within the
// plugin's grant (mqtt's topic filters): the host calls SubscribeGranted,
// with the plugin's decoded grant (nil if none), instead of Subscribe.
type GrantSubscriber interface {
	SubscribeGranted(plugin string, rules, grant any)
}

// Subscribe tells t of plugin's trigger rules in m (m nil: none), with its
// grant if t is a GrantSubscriber.
func Subscribe(t Triggerer, plugin string, m *manifest.Manifest) {
	var rules, grant any
	if m != nil {
		rules = m.Triggers[t.Trigger()]
		if c, ok := t.(Capability); ok {
			grant = m.Grants[c.Name()]
		}
	}
	if gs, ok := t.(GrantSubscriber); ok {
		gs.SubscribeGranted(plugin, rules, grant)
		return
	}
	t.Subscribe(plugin, rules)
}

// Deliver hands an event to a plugin's queue. It never blocks; it reports
// false if the plugin is unknown or stopped.
type Deliver func(plugin string, ev Event) bool

// SecretHolder is a Capability that takes a secret of the host's from the
// environment (the supervisor's API key). After Provision, SecretEnv names
// those variables: they never reach a plugin, whatever its env.allow says,
// nor does any variable whose value is one of theirs.
type SecretHolder interface {
	SecretEnv() []string
}

// Env is what a capability is given when it is provisioned.
type Env struct {
	Runtime *manifest.Runtime
	// Config is the capability's own decoded runtime.toml section, or nil.
	Config any
	// Sim is true on the embedded simulated device.
	Sim    bool
	Logger *slog.Logger
	// Gate audits what a capability decides outside a host call (shared:
	// its directories, when a plugin loads).
	Gate *gate.Gate
	// Deliver queues an event for a plugin, as a Triggerer's does; for a
	// capability whose events are not triggers (mount's unmounted).
	Deliver Deliver
}

// Func is one host function. Call runs on the calling plugin's goroutine
// with that plugin's Caller, and must return an errno in stack[0]. A
// function that reads a request or returns data is built by HostFunc,
// which checks the guest's ranges before its handler runs.
type Func struct {
	Name   string
	Params []api.ValueType
	// ParamNames names Params as ABI.md does ("req_ptr", "out_cap"), for
	// wazero's function definitions, logs and the security sweep.
	ParamNames []string
	Results    []api.ValueType
	Call       func(ctx context.Context, c *Caller, m api.Module, stack []uint64)
}

// Signature is f as ABI.md writes it: "call(req_ptr, req_len, out_ptr,
// out_cap, out_len_ptr)".
func (f Func) Signature() string {
	return f.Name + "(" + strings.Join(f.ParamNames, ", ") + ")"
}

// Event is one thing that wakes a plugin.
type Event struct {
	Kind    uint32 // an abi.EventKind
	Payload []byte // an encoded abi.Record
	// Coalesce, when not "", lets a queued event with the same key be
	// replaced by this newer one instead of queueing both.
	Coalesce string
}

// Preopener is a Capability that gives each plugin importing its Module a
// host directory of its own, seen through a WASI preopen (mount: the media
// root at /media); one with no Module gives them to each plugin it is
// granted to (shared). Preopens is called once when the plugin loads; the
// directories go through the same symlink-proof sandbox as /data.
type Preopener interface {
	Preopens(m *manifest.Manifest) ([]Preopen, error)
}

// Preopen is a host directory that a plugin sees at GuestPath.
type Preopen struct {
	GuestPath string // absolute, such as "/media"
	Dir       string // the host directory; it must exist
	ReadOnly  bool   // the sandbox refuses every change (EROFS)
}

// InstanceEnder is a Capability that holds resources for a plugin between
// host calls (mounts), which must be released when an instance of the
// plugin ends: a stop, a crash, a watchdog kill. InstanceEnded runs on the
// plugin's goroutine after the instance is closed and before any restart.
type InstanceEnder interface {
	InstanceEnded(plugin string)
}

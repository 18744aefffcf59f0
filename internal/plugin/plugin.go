// Package plugin runs one plugin: it compiles the module, checks its imports
// against the manifest's grants, instantiates it as a wasip1 reactor in its
// own wazero runtime (so that its memory limit is its own), and delivers its
// events one at a time from a bounded queue. A trap, a timeout or an exit
// ends the instance; the plugin is restarted with exponential backoff.
package plugin

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/sandboxfs"
)

// Options is what every plugin shares.
type Options struct {
	Runtime *manifest.Runtime
	// Cache is the compilation cache shared by all plugins' runtimes.
	Cache wazero.CompilationCache
	// InstrumentCache is a directory that keeps each module's copy with
	// the watchdog's checks, once wazero has compiled it, so that loading
	// it again skips CheckCounts, instrument and Precompile. It is made
	// (0700) on first use; "" means no cache.
	// Whoever can write to it can change the code plugins run, as with
	// Cache's directory.
	InstrumentCache string
	Capabilities    []capability.Capability
	Gate            *gate.Gate
	Logger          *slog.Logger
	// Environ is the host environment that env.allow selects from;
	// nil means os.Environ(). Host secrets never pass (see chooseEnv).
	Environ []string
	// DataFS makes the sandboxed file system for a plugin's /data and its
	// capabilities' directories, read-only if readOnly. nil means
	// wazero's DirFS, or a read-only sandboxfs if readOnly.
	DataFS func(dir string, readOnly bool) experimentalsys.FS
	// Observe, if set, is told of every handler call (metrics): the
	// event's kind, how long the handler ran, and the error that ended
	// the instance, if any. It runs on the plugin's goroutine.
	Observe func(plugin string, kind abi.EventKind, d time.Duration, err error)
	// Precompile, if set, compiles a module that is not in InstrumentCache
	// (one Load has not compiled before) into Cache before Load compiles
	// it, in a process of its own with limits (isolate.Compiler), so that
	// a module built to make wazero's compiler take gigabytes or minutes
	// fails there. closeOnContextDone is the runtime setting Load compiles
	// with. An error refuses the module.
	Precompile func(ctx context.Context, wasm []byte, closeOnContextDone bool) error
}

// State is where a plugin is in its life.
type State string

const (
	StateStarting     State = "starting"
	StateRunning      State = "running"
	StateRestarting   State = "restarting"
	StateCrashLooping State = "crash-looping"
	StateStopping     State = "stopping"
	StateStopped      State = "stopped"
)

// Status is a snapshot of a plugin, for logs and `airlock status`.
type Status struct {
	Name      string
	State     State
	Restarts  int
	Queue     int
	Dropped   uint64 // Losses.Dropped(): never delivered
	Losses    Losses // since this version loaded, by cause and kind
	LastError string
}

// Plugin is one loaded plugin. Its goroutine (Run) owns the wasm instance.
type Plugin struct {
	M    *manifest.Manifest
	opts Options
	log  *slog.Logger

	runtime  wazero.Runtime
	compiled wazero.CompiledModule
	// interruptible is Prepared.Interruptible.
	interruptible bool
	caps          []capability.Capability // those the module imports, granted
	modCfg        wazero.ModuleConfig
	out           *lineWriter       // the guest's stdout and stderr
	logs          *logLimit         // the guest's log rate limit, nil for none
	caller        capability.Caller // owned by Run's goroutine
	q             *queue
	stop          chan struct{}
	stopOnce      sync.Once
	done          chan struct{}

	// sleepUntil is the running call's deadline (Unix nanoseconds), which
	// bounds a WASI poll_oneoff sleep (nanosleep); set by Instance.call.
	sleepUntil atomic.Int64

	mu        sync.Mutex // guards the status fields below
	state     State
	restarts  int
	lastError string
}

// Load reads m's module, prepares it (Prepare: it refuses a module that
// imports a capability m does not grant, or that does not speak ABI v1) and
// defines the host modules it imports in its runtime.
func Load(ctx context.Context, m *manifest.Manifest, o Options) (p *Plugin, err error) {
	log := o.Logger.With("plugin", m.Name)
	wasm, err := os.ReadFile(m.Wasm)
	if err != nil {
		hint := "build it with: airlock build " + m.Dir
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("plugin %q: module %s does not exist (%s)", m.Name, m.Wasm, hint)
		}
		return nil, fmt.Errorf("plugin %q: read module: %w", m.Name, err)
	}
	pre, err := Prepare(ctx, m, wasm, o)
	if err != nil {
		return nil, err
	}
	r := pre.Runtime
	defer func() {
		if err != nil {
			r.Close(ctx)
		}
	}()
	p = &Plugin{M: m, opts: o, log: log, runtime: r, compiled: pre.Compiled, caps: pre.Caps, interruptible: pre.Interruptible,
		q:    newQueue(m.Limits.Queue, m.Limits.Overflow == manifest.DropOldest, m.Limits.EventsPerSecond),
		stop: make(chan struct{}), done: make(chan struct{}), state: StateStarting}
	p.caller = capability.Caller{Plugin: m.Name, Grants: m.Grants, Config: m.Config, Log: log, Gate: o.Gate}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r); err != nil {
		return nil, fmt.Errorf("plugin %q: wasi: %w", m.Name, err)
	}
	rate := 0
	if o.Runtime != nil {
		rate = o.Runtime.Log.PluginRate
	}
	p.logs = newLogLimit(log, rate)
	if err := p.defineModule(ctx, abi.ModuleBase, p.baseFuncs()); err != nil {
		return nil, err
	}
	for _, c := range p.caps {
		if err := p.defineModule(ctx, c.Module(), c.Functions()); err != nil {
			return nil, err
		}
	}
	if p.modCfg, err = p.moduleConfig(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// baseFuncs returns baseFuncs with log bound to this plugin's rate limit.
func (p *Plugin) baseFuncs() []capability.Func {
	funcs := append([]capability.Func(nil), baseFuncs...)
	for i := range funcs {
		switch funcs[i].Name {
		case abi.FuncLog:
			funcs[i].Call = func(ctx context.Context, in *capability.Caller, m api.Module, stack []uint64) {
				logLine(ctx, in, p.logs, m, stack, false)
			}
		case abi.FuncLogFields:
			funcs[i].Call = func(ctx context.Context, in *capability.Caller, m api.Module, stack []uint64) {
				logLine(ctx, in, p.logs, m, stack, true)
			}
		}
	}
	return funcs
}

// defineModule exports funcs as the host module name, bound to this plugin.
func (p *Plugin) defineModule(ctx context.Context, name string, funcs []capability.Func) error {
	b := p.runtime.NewHostModuleBuilder(name)
	for _, f := range funcs {
		call := f.Call
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
			call(ctx, &p.caller, m, stack)
		}), f.Params, f.Results).WithName(f.Name).WithParameterNames(f.ParamNames...).Export(f.Name)
	}
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("plugin %q: host module %s: %w", p.M.Name, name, err)
	}
	return nil
}

func (p *Plugin) moduleConfig(ctx context.Context) (wazero.ModuleConfig, error) {
	out := &lineWriter{log: p.log, limit: p.logs}
	p.out = out
	cfg := wazero.NewModuleConfig().WithName(p.M.Name).WithStartFunctions().
		WithArgs(p.M.Name).WithStdout(out).WithStderr(out).
		WithSysWalltime().WithSysNanotime().WithNanosleep(p.nanosleep).WithRandSource(rand.Reader)
	for _, c := range p.environ(ctx) {
		cfg = cfg.WithEnv(c.name, c.value)
	}
	sandbox := func(dir string, readOnly bool) experimentalsys.FS {
		switch {
		case p.opts.DataFS != nil:
			return p.opts.DataFS(dir, readOnly)
		case readOnly:
			return sandboxfs.New(dir, sandboxfs.Options{ReadOnly: true})
		}
		return sysfs.DirFS(dir)
	}
	fsc := wazero.NewFSConfig()
	var guest []string // the guest paths mounted so far
	if p.M.Data {
		dir := DataDir(p.opts.Runtime, p.M)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("plugin %q: data directory: %w", p.M.Name, err)
		}
		fsc = fsc.(sysfs.FSConfig).WithSysFSMount(sandbox(dir, false), "/data")
		guest = append(guest, "/data")
	}
	// Capabilities may add directories of their own: those the plugin
	// imports (mount's media root), and those granted to it that have no
	// module, since a directory is all they give (shared).
	caps := slices.Clip(p.caps)
	for _, c := range p.opts.Capabilities {
		if _, granted := p.M.Grants[c.Name()]; granted && c.Module() == "" {
			caps = append(caps, c)
		}
	}
	for _, c := range caps {
		po, ok := c.(capability.Preopener)
		if !ok {
			continue
		}
		dirs, err := po.Preopens(p.M)
		if err != nil {
			return nil, fmt.Errorf("plugin %q: %s: %w", p.M.Name, c.Name(), err)
		}
		for _, d := range dirs {
			// wazero resolves a path by its longest preopen, so one
			// inside another would hide part of it.
			if i := slices.IndexFunc(guest, func(g string) bool { return nested(g, d.GuestPath) }); i >= 0 {
				return nil, fmt.Errorf("plugin %q: %s: its directory %s would overlap %s, which the plugin sees already (give one of them another guest path, such as [[mount]] target)", p.M.Name, c.Name(), d.GuestPath, guest[i])
			}
			guest = append(guest, d.GuestPath)
			fsc = fsc.(sysfs.FSConfig).WithSysFSMount(sandbox(d.Dir, d.ReadOnly), d.GuestPath)
		}
	}
	// "/" last, so that the real mounts keep their fds (/data is 3), and always: a path
	// under no mount gets ENOENT from an empty root instead of EBADF (ABI.md §7).
	fsc = fsc.(sysfs.FSConfig).WithSysFSMount(sandboxfs.Nowhere(), "/")
	return cfg.WithFSConfig(fsc), nil
}

// nested reports whether guest paths a and b are the same or one holds
// the other.
func nested(a, b string) bool {
	return a == b || strings.HasPrefix(b, a+"/") || strings.HasPrefix(a, b+"/")
}

// DataDir is where the plugin of manifest m keeps its /data.
func DataDir(rt *manifest.Runtime, m *manifest.Manifest) string {
	return filepath.Join(rt.StateDir, "data", m.StateName())
}

// nanosleep is WASI's sleep (poll_oneoff on a clock): it sleeps, as a
// guest's sleep or an idle Go scheduler expects, but never past the
// running call's deadline, so that a sleeping guest returns at it, as
// with airlock_v1.sleep, and never meets the watchdog by sleeping.
func (p *Plugin) nanosleep(ns int64) {
	d := min(time.Duration(ns), time.Until(time.Unix(0, p.sleepUntil.Load())))
	if d > 0 {
		time.Sleep(d)
	}
}

// Deliver queues ev without blocking. It reports whether ev was queued:
// false if drop_newest overflow or limits.events_per_second refused it, or
// the plugin is stopping. Under
// drop_oldest ev is queued and the oldest pending event is dropped instead;
// either way the loss is counted and reported to the plugin.
func (p *Plugin) Deliver(ev capability.Event) bool { return p.q.push(ev) }

// Stop asks Run to drain the queue, deliver the stop event and return.
func (p *Plugin) Stop() {
	p.stopOnce.Do(func() {
		p.setState(StateStopping, "")
		p.q.close()
		close(p.stop)
	})
}

// Done is closed when Run has returned.
func (p *Plugin) Done() <-chan struct{} { return p.done }

// Status returns a snapshot for logs and status.
func (p *Plugin) Status() Status {
	depth, lost := p.q.stats()
	p.mu.Lock()
	defer p.mu.Unlock()
	return Status{Name: p.M.Name, State: p.state, Restarts: p.restarts, Queue: depth, Dropped: lost.Dropped(), Losses: lost, LastError: p.lastError}
}

func (p *Plugin) setState(s State, lastErr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == StateStopping && s != StateStopped {
		return
	}
	p.state = s
	if lastErr != "" {
		p.lastError = lastErr
	}
}

func (p *Plugin) stopping() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

// Close releases the plugin's runtime. Call it after Done.
func (p *Plugin) Close(ctx context.Context) error { return p.runtime.Close(ctx) }

// exitTimeout is the exit code the watchdog closes a module with.
const exitTimeout = sys.ExitCodeDeadlineExceeded

// lineWriter sends a guest's stdout and stderr to its logger, a line at a
// time, with lines bounded so a flood cannot grow memory.
type lineWriter struct {
	log   *slog.Logger
	limit *logLimit // shared with the log function
	buf   []byte
	// fatal is the last line that looked like a Go or Rust runtime's dying
	// words ("panic: ...", "fatal error: ..."), for the crash report.
	// Written and read on the plugin's goroutine.
	fatal string
}

func (w *lineWriter) Write(b []byte) (int, error) {
	for _, c := range b {
		if c == '\n' || len(w.buf) >= maxLogLine {
			line := string(w.buf)
			if w.log.Enabled(context.Background(), slog.LevelInfo) && w.limit.allow() {
				w.log.Info(line, "source", "stdout")
			}
			if strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ") || strings.Contains(line, "panicked at") {
				w.fatal = line
			}
			w.buf = w.buf[:0]
			if c == '\n' {
				continue
			}
		}
		w.buf = append(w.buf, c)
	}
	return len(b), nil
}

var _ io.Writer = (*lineWriter)(nil)

// Package host is airlock's front door: a runtime.toml in, plugins running.
// It loads every plugin in the configured directories, provisions the
// capabilities they are granted, routes events to their queues and shuts
// them down in order. The rooms it wires together live in its subpackages.
// What the airlock binary adds to this core (its capabilities, the
// Prometheus endpoint, the registry client) comes from host/builtin, so
// that embedding the core links none of their dependencies.
package host

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/airlockhq/airlock/abi"

	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/admin"
	"github.com/airlockhq/airlock/internal/build"
	"github.com/airlockhq/airlock/internal/bundle"
	"github.com/airlockhq/airlock/internal/plugin"
	"github.com/airlockhq/airlock/internal/statedir"
	"github.com/airlockhq/airlock/internal/timer"
)

// Options configure a Host. The zero value is usable: it logs nowhere and
// has only the base capabilities.
type Options struct {
	// Logger receives the host's and the plugins' logs; nil discards them.
	Logger *slog.Logger
	// LogLevel, if set, is the Logger's level, which Reconfigure sets to
	// a re-read runtime.toml's log.level.
	LogLevel *slog.LevelVar
	// Audit receives allow/deny records; nil means what runtime.toml's
	// log.audit says.
	Audit *slog.Logger
	// Capabilities are the capabilities this host offers besides the base.
	Capabilities []capability.Capability
	// Environ is the environment plugins' env.allow selects from; nil means
	// os.Environ().
	Environ []string
	// Precompile, if set, compiles a module the host has not compiled
	// before into the compilation cache at cacheDir, in a process of its
	// own with limits (isolate.Compiler; airlock run sets it), before the
	// host compiles it from the cache. nil compiles in the host's process.
	Precompile func(ctx context.Context, cacheDir string, wasm []byte, closeOnContextDone bool) error
	// Metrics makes the endpoint that runtime.toml's metrics.listen asks
	// for, reading the plugins' state from snapshot at each scrape
	// (host/builtin's serves Prometheus's format). nil: a runtime.toml
	// that sets metrics.listen is refused.
	Metrics func(snapshot func() MetricsSnapshot) Metrics
	// Pull fetches a [[bundle]] ref into the bundle cache of rt's
	// state_dir (bundle.Cache), reading the credentials afresh each time
	// (host/builtin's pulls from an OCI registry). nil: a runtime.toml
	// with [[bundle]]s is refused.
	Pull func(ctx context.Context, rt *manifest.Runtime, ref string) error
}

// Metrics is a metrics endpoint (Options.Metrics). Its methods are safe
// for concurrent use.
type Metrics interface {
	// CountAudit wraps the audit stream's handler, to count every
	// capability decision where the gate records it.
	CountAudit(next slog.Handler) slog.Handler
	// Observe counts an event a plugin's handler took d to handle.
	Observe(plugin string, kind abi.EventKind, d time.Duration, err error)
	// Forget drops a plugin that is gone.
	Forget(plugin string)
	// Serve listens on addr until stop.
	Serve(addr string, log *slog.Logger) (stop func(), err error)
}

// MetricsSnapshot is what the host reports to Metrics at each scrape.
type MetricsSnapshot struct {
	Plugins       []plugin.Status
	Failed        int    // plugin directories that did not load
	AuditFailures uint64 // audit records the audit file could not take
	Sources       []capability.SourceLosses
}

// Host runs the plugins of one runtime.toml.
type Host struct {
	// rt is the configuration. Reconfigure changes rt.Plugins and
	// rt.Trust.AllowUnsigned, under ops and mu; Runtime copies it.
	rt *manifest.Runtime
	// path is the runtime.toml that Reconfigure re-reads; "" when the
	// configuration was given as a value (NewFromConfig).
	path    string
	opts    Options
	log     *slog.Logger
	gate    *gate.Gate
	audit   io.Closer
	sink    *gate.Sink // the audit stream's writer; nil when log.audit is "off"
	cache   wazero.CompilationCache
	metrics Metrics // nil unless [metrics] listen is set

	// ops serializes changes to the set of running plugins: start-up,
	// reloads and shutdown. Its holder owns runCtx and each entry's
	// timers.
	ops     sync.Mutex
	runCtx  context.Context
	running sync.WaitGroup // the plugins' goroutines
	// units maps each cached bundle file that discover found to the
	// [[bundle]] ref it runs for.
	units map[string]string

	// reconfigure has a token when Reconfigure asked Run to re-read
	// runtime.toml; its value names who asked (a signal).
	reconfigure chan string

	// mu guards plugins and loadErrors. Deliver holds it (shared) while it
	// queues, so that a reload that holds it can hand a plugin's queue
	// over with no event slipping past.
	mu      sync.RWMutex
	plugins map[string]*entry
	// loadErrors holds plugins that failed to load, by unit (unitOf: a
	// directory, a bundle file or a [[bundle]] ref), so that status can
	// show them; the others run regardless. A failed reload is here too,
	// while the old version runs on. Failures copies it.
	loadErrors map[string]error
	// waiting holds the [[bundle]] refs whose pull failed and is retried
	// (pullUntilDone), by ref.
	waiting map[string]*waiting
}

// entry is one running plugin and what the host runs for it.
type entry struct {
	p *plugin.Plugin
	// src is what Discover found: a plugin.toml or a bundle file; unit is
	// what it is known by (unitOf, as it was when src was prepared).
	src   string
	unit  string
	dir   string
	print [sha256.Size]byte // of the manifest and the module, to skip no-op reloads
	// stopTimers ends the plugin's timers; wait for timers after.
	stopTimers context.CancelFunc
	timers     *sync.WaitGroup
}

// Schema returns the manifest sections that caps own.
func Schema(caps []capability.Capability) manifest.Schema {
	s := manifest.Schema{Grants: map[string]manifest.SectionFunc{}, Triggers: map[string]manifest.SectionFunc{}}
	for _, c := range caps {
		s.Grants[c.Name()] = c.DecodeGrant
		if t, ok := c.(capability.Triggerer); ok {
			s.Triggers[t.Trigger()] = t.DecodeTrigger
		}
	}
	return s
}

// RuntimeSections returns the runtime.toml sections that caps own.
func RuntimeSections(caps []capability.Capability) map[string]manifest.SectionFunc {
	s := map[string]manifest.SectionFunc{}
	for _, c := range caps {
		if cf, ok := c.(capability.Configurer); ok {
			s[c.Name()] = cf.DecodeConfig
		}
		// [trust.vendor.ceiling.<name>]: the capability's own ceiling
		// shape, or its grant's.
		s[manifest.CeilingKey(c.Name())] = c.DecodeGrant
		if cd, ok := c.(capability.CeilingDecoder); ok {
			s[manifest.CeilingKey(c.Name())] = cd.DecodeCeiling
		}
	}
	return s
}

// New reads the runtime.toml at path. It starts nothing; Run does.
// Reconfigure re-reads the file.
func New(path string, o Options) (*Host, error) {
	rt, err := manifest.LoadRuntime(path, RuntimeSections(o.Capabilities))
	if err != nil {
		return nil, err
	}
	h, err := NewFromConfig(rt, o)
	if h != nil {
		h.path = path
	}
	return h, err
}

// NewFromConfig is New with the configuration given as a value, such as
// manifest.ParseRuntime's, decoded with RuntimeSections(o.Capabilities);
// rt.File names it in messages and need not exist. The host owns rt from
// now on: read it back with Runtime. Reconfigure has no file to re-read,
// so it changes nothing.
func NewFromConfig(rt *manifest.Runtime, o Options) (*Host, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if rt.Metrics.Listen != "" && o.Metrics == nil {
		return nil, fmt.Errorf("metrics.listen in %s: this host has no metrics endpoint (remove metrics.listen, or set host.Options.Metrics, as host/builtin.Options does)", rt.File)
	}
	if len(rt.Bundles) > 0 && o.Pull == nil {
		return nil, fmt.Errorf("[[bundle]] in %s: this host has no registry client (remove the [[bundle]]s, or set host.Options.Pull, as host/builtin.Options does)", rt.File)
	}
	h := &Host{rt: rt, opts: o, log: o.Logger, plugins: map[string]*entry{}, loadErrors: map[string]error{}, waiting: map[string]*waiting{}, reconfigure: make(chan string, 1)}
	// A device's first boot starts on an empty /data volume, and the
	// audit file usually lives in state_dir: made before it is opened.
	if err := statedir.Ensure(rt.StateDir); err != nil {
		return nil, fmt.Errorf("state_dir: %w (or set state_dir in %s)", err, rt.File)
	}
	audit := o.Audit
	if audit == nil {
		var err error
		if audit, h.sink, err = openAudit(rt.Log, h.log); err != nil {
			return nil, err
		}
		if h.sink != nil {
			h.audit = h.sink
		}
	}
	if rt.Metrics.Listen != "" {
		// Capability decisions are counted where the gate records them.
		h.metrics = o.Metrics(h.metricsSnapshot)
		next := slog.Handler(slog.DiscardHandler)
		if audit != nil {
			next = audit.Handler()
		}
		audit = slog.New(h.metrics.CountAudit(next))
	}
	h.gate = gate.New(audit)
	return h, nil
}

// openAudit opens the audit stream. On stderr or stdout, which the host's
// log shares, it is written in the log's format; in a file, in JSON.
func openAudit(l manifest.Log, log *slog.Logger) (*slog.Logger, *gate.Sink, error) {
	if l.Audit == "off" {
		return nil, nil, nil
	}
	sink, err := gate.OpenSink(gate.SinkConfig{Dest: l.Audit, MaxSize: int64(l.AuditMaxSize), Keep: l.AuditKeep, Reserve: gate.DefaultReserve}, log)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (check log.audit in runtime.toml)", err)
	}
	format := l.Format
	if sink.IsFile() {
		format = "json"
	}
	return slog.New(LogHandler(sink, format, nil)).With("stream", "audit"), sink, nil
}

// AuditFailures returns how many audit records could not be written where
// log.audit says (a file's went to stderr instead).
func (h *Host) AuditFailures() uint64 {
	if h.sink == nil {
		return 0
	}
	return h.sink.Failures()
}

// Discover returns the plugin.toml files under the runtime's plugin
// directories: each directory that holds one, or each of its subdirectories
// that does; then the bundle files (*.airlock) in those directories, and
// the cached bundles of [[bundle]] refs (bundle.Cache: each pinned one, or
// until it is pulled, the newest earlier pull of its repository).
func Discover(rt *manifest.Runtime) ([]string, error) {
	out, err := discoverDirs(rt)
	if err != nil {
		return nil, err
	}
	for _, c := range bundle.Cache(rt) {
		if c.Path != "" {
			out = append(out, c.Path)
		}
	}
	return out, nil
}

// discover is Discover, and it records which [[bundle]] ref each cached
// bundle file stands for (unitOf). The caller holds ops.
func (h *Host) discover() ([]string, error) {
	files, err := Discover(h.rt)
	h.units = map[string]string{}
	for _, c := range bundle.Cache(h.rt) {
		if c.Path != "" {
			h.units[c.Path] = c.Ref
		}
	}
	return files, err
}

func discoverDirs(rt *manifest.Runtime) ([]string, error) {
	var out []string
	for _, dir := range rt.Plugins {
		if _, err := os.Stat(filepath.Join(dir, "plugin.toml")); err == nil {
			out = append(out, filepath.Join(dir, "plugin.toml"))
			continue
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("plugin directory %s: %w (fix plugins in %s)", dir, err, rt.File)
		}
		for _, e := range entries {
			p := filepath.Join(dir, e.Name(), "plugin.toml")
			if _, err := os.Stat(p); e.IsDir() && err == nil {
				out = append(out, p)
			}
			if e.Type().IsRegular() && bundle.IsBundle(e.Name()) {
				out = append(out, filepath.Join(dir, e.Name()))
			}
		}
	}
	return out, nil
}

// Run loads and runs every plugin until ctx ends, then drains their queues,
// delivers their stop events and returns. A plugin that fails to load is
// reported and skipped; Run fails only if the host itself cannot start.
func (h *Host) Run(ctx context.Context) error {
	if h.rt.OverlayApplied {
		h.log.Info("runtime overlay applied", "path", h.rt.Overlay)
	}
	cache, err := wazero.NewCompilationCacheWithDir(h.cacheDir())
	if err != nil {
		return fmt.Errorf("compilation cache: %w", err)
	}
	h.cache = cache
	defer cache.Close(context.Background())
	if h.audit != nil {
		defer h.audit.Close()
	}
	// Before the sink closes: the folded counts still pending.
	defer h.gate.Close()
	caps := h.opts.Capabilities
	env := capability.Env{Runtime: h.rt, Sim: h.rt.Device == "sim", Logger: h.log, Gate: h.gate, Deliver: h.Deliver}
	for _, c := range caps {
		if p, ok := c.(capability.Provisioner); ok {
			e := env
			e.Config = h.rt.Sections[c.Name()]
			e.Logger = h.log.With("capability", c.Name())
			if err := p.Provision(ctx, e); err != nil {
				h.closeCaps()
				return fmt.Errorf("capability %s: %w", c.Name(), err)
			}
		}
	}
	defer h.closeCaps()

	runCtx, stopTimers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopTimers()
	h.ops.Lock()
	// [[bundle]]s not cached yet run once they are pulled (pullBundles,
	// below); the others start now.
	files, err := h.discover()
	if err != nil {
		h.ops.Unlock()
		return err
	}
	h.runCtx = runCtx
	// Each plugin starts as soon as it has compiled (the workers call
	// this; Run holds ops for them); trigger sources start once all have.
	var starting sync.Mutex
	h.loadAll(ctx, files, func(e *entry) {
		starting.Lock()
		defer starting.Unlock()
		h.mu.Lock()
		h.plugins[e.p.M.Name] = e
		h.mu.Unlock()
		h.start(e)
		h.log.Info("plugin loaded", "plugin", e.p.M.Name, "version", e.p.M.Version, "grants", grantNames(e.p.M))
	})
	for _, c := range caps {
		if t, ok := c.(capability.Triggerer); ok {
			for name, e := range h.plugins {
				capability.Subscribe(t, name, e.p.M)
			}
			if err := t.Start(runCtx, h.Deliver); err != nil {
				h.log.Error("trigger source failed to start", "capability", c.Name(), "error", err.Error())
			}
		}
	}
	h.ops.Unlock()
	if h.metrics != nil {
		if stop, err := h.metrics.Serve(h.rt.Metrics.Listen, h.log.With("component", "metrics")); err != nil {
			h.log.Error("metrics endpoint not available", "listen", h.rt.Metrics.Listen, "error", err.Error())
		} else {
			defer stop()
		}
	}
	if srv := h.serveAdmin(); srv != nil {
		defer srv.Close()
	}
	stopWatch := func() {}
	if h.rt.Reload {
		stopWatch = h.watch(runCtx)
	}
	stopPulls := h.pullBundles(runCtx)
	h.log.Info("airlock running", "plugins", len(h.Status()), "failed", len(h.Failures()), "device", h.rt.Device)

	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case why := <-h.reconfigure:
			stopWatch = h.reread(runCtx, why, stopWatch)
		}
	}
	stopWatch() // and wait for a reload in progress
	stopPulls()
	h.ops.Lock()
	defer h.ops.Unlock()
	cause := context.Cause(ctx).Error()
	h.log.Info("shutting down: draining queues", "cause", cause)
	stopTimers()
	h.mu.RLock()
	all := make([]*entry, 0, len(h.plugins))
	for _, e := range h.plugins {
		all = append(all, e)
	}
	h.mu.RUnlock()
	for _, e := range all {
		e.timers.Wait()
	}
	for _, e := range all {
		e.p.Stop()
	}
	h.running.Wait()
	for _, e := range all {
		e.p.Close(context.Background())
	}
	h.log.Info("airlock stopped", "cause", cause)
	return nil
}

// start runs e's plugin and its timers. The caller holds ops.
func (h *Host) start(e *entry) {
	h.running.Add(1)
	go func() { defer h.running.Done(); e.p.Run(h.runCtx) }()
	var tctx context.Context
	tctx, e.stopTimers = context.WithCancel(h.runCtx)
	e.timers = timer.Start(tctx, e.p.M.Name, e.p.M.Timers, e.p.Deliver)
}

// serveAdmin opens the admin socket, unless it is off. A socket that cannot
// be opened costs only status and trigger, so it is logged, not fatal.
func (h *Host) serveAdmin() *admin.Server {
	path := h.rt.Admin.Socket
	if path == "off" {
		return nil
	}
	srv, err := admin.Listen(path)
	if err != nil {
		h.log.Error("admin socket not available; airlock status and trigger will not work", "error", err.Error())
		return nil
	}
	srv.Serve(h, h.gate, h.log.With("component", "admin"))
	h.log.Info("admin socket listening", "path", path)
	return srv
}

// loadAll reads every manifest, builds stale Go plugins (in development),
// then compiles the modules, each step in parallel: compiling is most of a
// cold start, and reading and fingerprinting 20 Go modules one after the
// other would add a tenth of a second to it. Modules compile smallest
// first, and ready gets each plugin as soon as it has loaded, so a C
// plugin does not wait seconds behind a Go one. The others are recorded
// in loadErrors.
func (h *Host) loadAll(ctx context.Context, files []string, ready func(*entry)) {
	prepared := make([]*entry, len(files))
	errs := make([]error, len(files))
	inParallel(len(files), func(i int) { prepared[i], errs[i] = h.prepare(ctx, files[i]) })
	// A name two sources claim goes to neither, whatever their order:
	// a vendor's bundle is known as vendor/name, so it never collides
	// with a local plugin, and a collision is the operator's to settle.
	claims := map[string][]string{}
	for i, f := range files {
		if errs[i] == nil {
			claims[prepared[i].p.M.Name] = append(claims[prepared[i].p.M.Name], f)
		}
	}
	var ms []*entry
	for i, f := range files {
		e, err := prepared[i], errs[i]
		if err == nil && len(claims[e.p.M.Name]) > 1 {
			err = fmt.Errorf("duplicate plugin name %q: %s all claim it, so none of them runs (rename all but one, or remove them)", e.p.M.Name, strings.Join(claims[e.p.M.Name], ", "))
		}
		if err != nil {
			h.fail(f, err)
			continue
		}
		ms = append(ms, e)
	}
	size := func(e *entry) int64 {
		if st, err := os.Stat(e.p.M.Wasm); err == nil {
			return st.Size()
		}
		return 0
	}
	sort.SliceStable(ms, func(a, b int) bool { return size(ms[a]) < size(ms[b]) })
	h.compileEach(ctx, ms, func(i int, err error) {
		if err != nil {
			h.fail(ms[i].src, err)
			return
		}
		ready(ms[i])
	})
}

// inParallel calls do(i) for every i below n, on one goroutine per core.
func inParallel(n int, do func(i int)) {
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Go(func() {
			for i := range work {
				do(i)
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
}

// fail records why file did not load, by its unit (unitOf). The caller
// holds ops.
func (h *Host) fail(file string, err error) {
	key := h.unitOf(file)
	h.mu.Lock()
	h.loadErrors[key] = err
	h.mu.Unlock()
	where := []any{"manifest", file}
	if _, ok := h.units[file]; ok {
		where = []any{"bundle", key}
	}
	h.log.Error("plugin not loaded; the others run on", append(where, "error", err.Error())...)
}

// prepare reads the manifest at file, builds a stale Go plugin when the
// runtime builds from source, and fingerprints the result. The entry's p
// holds only the manifest (p.M) until compile.
func (h *Host) prepare(ctx context.Context, file string) (*entry, error) {
	// bundle.Load applies [trust]: signatures, revocation, ceilings. A
	// [[bundle]]'s errors go under its ref (fail), without the cache path.
	name := "bundle " + file
	if _, ok := h.units[file]; ok {
		name = ""
	}
	l, err := bundle.LoadNamed(file, name, h.rt, Schema(h.opts.Capabilities), time.Now())
	if err != nil {
		return nil, err
	}
	m := l.Manifest
	if l.Bundle != nil {
		h.log.Info("bundle verified", "plugin", m.Name, "digest", l.Bundle.Digest, "vendor", vendorName(l.Signer), "note", l.Signer.Note)
	}
	if h.rt.Build == "auto" && build.HasGoSource(m.Dir) && build.Stale(m.Dir, m.Wasm) {
		h.log.Info("building plugin from source", "plugin", m.Name, "dir", m.Dir)
		if err := build.Go(ctx, m.Dir, m.Wasm); err != nil {
			return nil, err
		}
	}
	e := &entry{p: &plugin.Plugin{M: m}, src: file, unit: h.unitOf(file), dir: m.Dir}
	sum := sha256.New()
	for _, f := range []string{m.File, m.Wasm} {
		b, err := os.ReadFile(f)
		if err != nil && f == m.File {
			return nil, err
		}
		sum.Write(b)
		sum.Write([]byte{0})
	}
	sum.Sum(e.print[:0])
	return e, nil
}

// compile loads the prepared entries' modules in parallel, replacing each
// entry's p with the loaded plugin; errs[i] says why entry i did not load.
func (h *Host) compile(ctx context.Context, es []*entry) []error {
	errs := make([]error, len(es))
	h.compileEach(ctx, es, func(i int, err error) { errs[i] = err })
	return errs
}

// compileEach is compile, calling done(i, err) on the worker as soon as
// entry i has loaded or failed, in the order es lists them as far as the
// workers allow.
func (h *Host) compileEach(ctx context.Context, es []*entry, done func(i int, err error)) {
	// Compiling is most of a first start (seconds per Go plugin without the
	// cache), so a start with several plugins reports its progress.
	var compiled atomic.Int32
	start := time.Now()
	inParallel(len(es), func(i int) {
		p, err := plugin.Load(ctx, es[i].p.M, plugin.Options{
			Runtime: h.rt, Cache: h.cache, InstrumentCache: filepath.Join(h.cacheDir(), "instrumented"), Precompile: h.precompile(), Capabilities: h.opts.Capabilities, Gate: h.gate,
			Logger: h.log, Environ: h.opts.Environ, Observe: h.observer(),
			DataFS: h.dataFS(es[i].p.M),
		})
		// On failure keep the manifest-only entry, so the caller can name it.
		if err == nil {
			es[i].p = p
		}
		if n := compiled.Add(1); len(es) > 1 {
			h.log.Info("compiled plugin", "plugin", es[i].p.M.Name, "progress", fmt.Sprintf("%d/%d", n, len(es)), "elapsed", time.Since(start).Round(time.Millisecond).String())
		}
		done(i, err)
	})
}

// cacheDir holds wazero's compilation cache and, in instrumented/, the
// plugins' instrumented modules (plugin.Options.InstrumentCache).
func (h *Host) cacheDir() string { return filepath.Join(h.rt.StateDir, "cache") }

// precompile binds Options.Precompile to the host's compilation cache.
func (h *Host) precompile() func(context.Context, []byte, bool) error {
	if h.opts.Precompile == nil {
		return nil
	}
	dir := h.cacheDir()
	return func(ctx context.Context, wasm []byte, closeOnContextDone bool) error {
		return h.opts.Precompile(ctx, dir, wasm, closeOnContextDone)
	}
}

// Deliver queues ev for the named plugin without blocking.
func (h *Host) Deliver(name string, ev capability.Event) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	e := h.plugins[name]
	return e != nil && e.p.Deliver(ev)
}

// Status returns every loaded plugin's status, by name.
func (h *Host) Status() []plugin.Status {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]plugin.Status, 0, len(h.plugins))
	for _, e := range h.plugins {
		out = append(out, e.p.Status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Failures returns the plugins that failed to load, or whose reload
// failed, by unit: a plugin directory, a bundle file or a [[bundle]] ref.
// It is a copy, safe while plugins are reloaded.
func (h *Host) Failures() map[string]error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return maps.Clone(h.loadErrors)
}

// Runtime returns a copy of the host's configuration, as Reconfigure has
// left it. Its Sections and Trust are shared: do not change them.
func (h *Host) Runtime() manifest.Runtime {
	h.mu.RLock()
	defer h.mu.RUnlock()
	rt := *h.rt
	rt.Plugins = slices.Clone(rt.Plugins)
	return rt
}

// Manifest returns the running plugin's manifest, or nil.
func (h *Host) Manifest(name string) *manifest.Manifest {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if e := h.plugins[name]; e != nil {
		return e.p.M
	}
	return nil
}

// Report is what the admin socket's status shows.
func (h *Host) Report() admin.Report {
	r := admin.Report{Device: h.rt.Device, PID: os.Getpid(), Reload: h.rt.Reload, Metrics: h.rt.Metrics.Listen,
		Plugins: []admin.PluginReport{}, Failed: []admin.Failure{}, AuditFailures: h.AuditFailures()}
	h.mu.RLock()
	for _, e := range h.plugins {
		st, m := e.p.Status(), e.p.M
		pr := admin.PluginReport{Name: m.Name, Version: m.Version, Dir: e.dir, State: string(st.State), Restarts: st.Restarts,
			Queue: st.Queue, QueueCap: m.Limits.Queue, Dropped: st.Dropped, RateLimited: st.Losses.RateLimited(), Coalesced: st.Losses.CoalescedTotal(),
			DroppedByKind: st.Losses.DroppedByKind(), CoalescedByKind: st.Losses.CoalescedByKind(), LastError: st.LastError, Grants: grantNames(m), Triggers: []string{}}
		if pr.Grants == nil {
			pr.Grants = []string{}
		}
		for _, t := range m.Timers {
			pr.Triggers = append(pr.Triggers, "timer:"+t.Name)
		}
		for k := range m.Triggers {
			pr.Triggers = append(pr.Triggers, k)
		}
		sort.Strings(pr.Triggers[len(m.Timers):])
		r.Plugins = append(r.Plugins, pr)
	}
	for dir, err := range h.loadErrors {
		r.Failed = append(r.Failed, admin.Failure{Dir: dir, Error: err.Error()})
	}
	r.Waiting = h.waitingReport()
	h.mu.RUnlock()
	r.Sources = []admin.SourceReport{}
	for _, l := range h.sourceLosses() {
		r.Sources = append(r.Sources, admin.SourceReport{Source: l.Source, Overflows: l.Overflows, Lost: l.Lost})
	}
	sort.Slice(r.Plugins, func(i, j int) bool { return r.Plugins[i].Name < r.Plugins[j].Name })
	sort.Slice(r.Failed, func(i, j int) bool { return r.Failed[i].Dir < r.Failed[j].Dir })
	return r
}

// sourceLosses returns what each trigger source that counts them lost.
func (h *Host) sourceLosses() []capability.SourceLosses {
	var out []capability.SourceLosses
	for _, c := range h.opts.Capabilities {
		if lc, ok := c.(capability.LossCounter); ok {
			out = append(out, lc.SourceLosses())
		}
	}
	return out
}

func (h *Host) closeCaps() {
	var errs []error
	for _, c := range h.opts.Capabilities {
		if cl, ok := c.(capability.Closer); ok {
			errs = append(errs, cl.Close())
		}
	}
	if err := errors.Join(errs...); err != nil {
		h.log.Warn("closing capabilities", "error", err.Error())
	}
}

func vendorName(s bundle.Signer) string {
	if s.Vendor == nil {
		return "(unsigned)"
	}
	return s.Vendor.Name
}

func grantNames(m *manifest.Manifest) []string {
	var out []string
	for k := range m.Grants {
		out = append(out, k)
	}
	if m.Data {
		out = append(out, "storage.data")
	}
	if len(m.EnvAllow) > 0 {
		out = append(out, "env")
	}
	sort.Strings(out)
	return out
}

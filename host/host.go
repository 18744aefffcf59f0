// Package host is airlock's front door: a runtime.toml in, plugins running.
// It loads every plugin in the configured directories, provisions the
// capabilities they are granted, routes events to their queues and shuts
// them down in order. The rooms it wires together live in its subpackages.
package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"

	"github.com/airlockhq/airlock/host/build"
	"github.com/airlockhq/airlock/host/bundle"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/host/plugin"
	"github.com/airlockhq/airlock/host/sandboxfs"
	"github.com/airlockhq/airlock/host/timer"
)

// Options configure a Host. The zero value is usable: it logs nowhere and
// has only the base capabilities.
type Options struct {
	// Logger receives the host's and the plugins' logs; nil discards them.
	Logger *slog.Logger
	// Audit receives allow/deny records; nil means what runtime.toml's
	// log.audit says.
	Audit *slog.Logger
	// Capabilities are the capabilities this host offers besides the base.
	Capabilities []capability.Capability
	// Environ is the environment plugins' env.allow selects from; nil means
	// os.Environ().
	Environ []string
}

// Host runs the plugins of one runtime.toml.
type Host struct {
	Runtime *manifest.Runtime
	opts    Options
	log     *slog.Logger
	gate    *gate.Gate
	audit   io.Closer
	cache   wazero.CompilationCache

	mu      sync.Mutex // guards plugins
	plugins map[string]*plugin.Plugin
	// LoadErrors holds plugins that failed to load, by directory, so that
	// status can show them; the others run regardless.
	LoadErrors map[string]error
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
		if cd, ok := c.(bundle.CeilingDecoder); ok {
			s[manifest.CeilingKey(c.Name())] = cd.DecodeCeiling
		}
	}
	return s
}

// New reads the runtime.toml at path. It starts nothing; Run does.
func New(path string, o Options) (*Host, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	rt, err := manifest.LoadRuntime(path, RuntimeSections(o.Capabilities))
	if err != nil {
		return nil, err
	}
	h := &Host{Runtime: rt, opts: o, log: o.Logger, plugins: map[string]*plugin.Plugin{}, LoadErrors: map[string]error{}}
	audit := o.Audit
	if audit == nil {
		if audit, h.audit, err = openAudit(rt.Log.Audit); err != nil {
			return nil, err
		}
	}
	h.gate = gate.New(audit)
	return h, nil
}

func openAudit(dest string) (*slog.Logger, io.Closer, error) {
	var w io.Writer
	var c io.Closer
	switch dest {
	case "off":
		return nil, nil, nil
	case "stderr", "":
		w = os.Stderr
	case "stdout":
		w = os.Stdout
	default:
		f, err := os.OpenFile(dest, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("audit log: %w (check log.audit in runtime.toml)", err)
		}
		w, c = f, f
	}
	return slog.New(slog.NewJSONHandler(w, nil)).With("stream", "audit"), c, nil
}

// Discover returns the plugin.toml files under the runtime's plugin
// directories: each directory that holds one, or each of its subdirectories
// that does; then the bundle files (*.airlock) in those directories, and
// the cached bundles of [[bundle]] refs.
func Discover(rt *manifest.Runtime) ([]string, error) {
	out, err := discoverDirs(rt)
	if err != nil {
		return nil, err
	}
	for _, b := range rt.Bundles {
		if p := bundle.CachePath(rt, b.Ref); fileExists(p) {
			out = append(out, p)
		}
	}
	return out, nil
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
	if err := os.MkdirAll(h.Runtime.StateDir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w (set state_dir in %s)", err, h.Runtime.File)
	}
	cache, err := wazero.NewCompilationCacheWithDir(filepath.Join(h.Runtime.StateDir, "cache"))
	if err != nil {
		return fmt.Errorf("compilation cache: %w", err)
	}
	h.cache = cache
	defer cache.Close(context.Background())
	if h.audit != nil {
		defer h.audit.Close()
	}
	caps := h.opts.Capabilities
	env := capability.Env{Runtime: h.Runtime, Sim: h.Runtime.Device == "sim", Logger: h.log}
	for _, c := range caps {
		if p, ok := c.(capability.Provisioner); ok {
			e := env
			e.Config = h.Runtime.Sections[c.Name()]
			e.Logger = h.log.With("capability", c.Name())
			if err := p.Provision(ctx, e); err != nil {
				h.closeCaps()
				return fmt.Errorf("capability %s: %w", c.Name(), err)
			}
		}
	}
	defer h.closeCaps()

	// [[bundle]] refs not cached yet are pulled now; one that cannot be
	// is reported, and the others run.
	for ref, err := range bundle.Fetch(ctx, h.Runtime) {
		h.LoadErrors[bundle.CachePath(h.Runtime, ref)] = err
		h.log.Error("bundle not pulled; the others run on", "ref", ref, "error", err.Error())
	}
	files, err := Discover(h.Runtime)
	if err != nil {
		return err
	}
	runCtx, stopTimers := context.WithCancel(context.WithoutCancel(ctx))
	var timers []*sync.WaitGroup
	var running sync.WaitGroup
	for _, p := range h.loadAll(ctx, files) {
		h.mu.Lock()
		h.plugins[p.M.Name] = p
		h.mu.Unlock()
		running.Add(1)
		go func() { defer running.Done(); p.Run(runCtx) }()
		timers = append(timers, timer.Start(runCtx, p.M.Name, p.M.Timers, p.Deliver))
		h.log.Info("plugin loaded", "plugin", p.M.Name, "version", p.M.Version, "grants", grantNames(p.M))
	}
	for _, c := range caps {
		if t, ok := c.(capability.Triggerer); ok {
			for name, p := range h.plugins {
				t.Subscribe(name, p.M.Triggers[t.Trigger()])
			}
			if err := t.Start(runCtx, h.Deliver); err != nil {
				h.log.Error("trigger source failed to start", "capability", c.Name(), "error", err.Error())
			}
		}
	}
	h.log.Info("airlock running", "plugins", len(h.plugins), "failed", len(h.LoadErrors), "device", h.Runtime.Device)

	<-ctx.Done()
	h.log.Info("shutting down: draining queues")
	stopTimers()
	for _, wg := range timers {
		wg.Wait()
	}
	for _, p := range h.plugins {
		p.Stop()
	}
	running.Wait()
	for _, p := range h.plugins {
		p.Close(context.Background())
	}
	h.log.Info("airlock stopped")
	return nil
}

// loadAll reads every manifest, builds stale Go plugins (in development),
// then compiles the modules in parallel, since compiling is most of a cold
// start. It returns the plugins that loaded, in file order, and records the
// others in LoadErrors.
func (h *Host) loadAll(ctx context.Context, files []string) []*plugin.Plugin {
	fail := func(file string, err error) {
		key := filepath.Dir(file)
		if bundle.IsBundle(file) {
			key = file
		}
		h.LoadErrors[key] = err
		h.log.Error("plugin not loaded; the others run on", "manifest", file, "error", err.Error())
	}
	var ms []*manifest.Manifest
	byName := map[string]string{}
	for _, f := range files {
		// bundle.Load applies [trust]: signatures, revocation, ceilings.
		var m *manifest.Manifest
		l, err := bundle.Load(f, h.Runtime, Schema(h.opts.Capabilities), time.Now())
		if err == nil {
			m = l.Manifest
			if l.Bundle != nil {
				h.log.Info("bundle verified", "plugin", m.Name, "digest", l.Bundle.Digest, "vendor", vendorName(l.Signer), "note", l.Signer.Note)
			}
			if other, dup := byName[m.Name]; dup {
				err = fmt.Errorf("duplicate plugin name %q: %s and %s (rename one)", m.Name, other, f)
			}
		}
		if err == nil && h.Runtime.Build == "auto" && build.HasGoSource(m.Dir) && build.Stale(m.Dir, m.Wasm) {
			h.log.Info("building plugin from source", "plugin", m.Name, "dir", m.Dir)
			err = build.Go(ctx, m.Dir, m.Wasm)
		}
		if err != nil {
			fail(f, err)
			continue
		}
		byName[m.Name] = f
		ms = append(ms, m)
	}
	loaded := make([]*plugin.Plugin, len(ms))
	errs := make([]error, len(ms))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(ms)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				loaded[i], errs[i] = plugin.Load(ctx, ms[i], plugin.Options{
					Runtime: h.Runtime, Cache: h.cache, Capabilities: h.opts.Capabilities, Gate: h.gate,
					Logger: h.log, Environ: h.opts.Environ,
					DataFS: func(dir string) experimentalsys.FS { return sandboxfs.New(dir, sandboxfs.Options{}) },
				})
			}
		}()
	}
	for i := range ms {
		work <- i
	}
	close(work)
	wg.Wait()
	var out []*plugin.Plugin
	for i, p := range loaded {
		if errs[i] != nil {
			fail(ms[i].File, errs[i])
			continue
		}
		out = append(out, p)
	}
	return out
}

// Deliver queues ev for the named plugin without blocking.
func (h *Host) Deliver(name string, ev capability.Event) bool {
	h.mu.Lock()
	p := h.plugins[name]
	h.mu.Unlock()
	return p != nil && p.Deliver(ev)
}

// Status returns every loaded plugin's status, by name.
func (h *Host) Status() []plugin.Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]plugin.Status, 0, len(h.plugins))
	for _, p := range h.plugins {
		out = append(out, p.Status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
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

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

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

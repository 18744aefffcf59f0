package host

// Hot reload: when runtime.toml says reload = true, internal/reload watches the
// plugin directories and sync brings the running set in line with them, one
// plugin at a time, without touching the others.

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/bundle"
	"github.com/airlockhq/airlock/internal/reload"
)

// watch starts the reload watcher; the returned func stops it and waits for
// a reload in progress.
func (h *Host) watch(ctx context.Context) func() {
	ctx, cancel := context.WithCancel(ctx)
	w, err := reload.Watch(ctx, h.rt.Plugins, reload.Options{Logger: h.log}, func(units []string) { h.sync(ctx, units) })
	if err != nil {
		cancel()
		h.log.Error("hot reload not available; restart airlock to pick up plugin changes", "error", err.Error())
		return func() {}
	}
	h.log.Info("watching plugin directories for changes", "dirs", h.rt.Plugins)
	return func() { cancel(); w.Close() }
}

// unitOf is what a discovered path is known by in loadErrors, in status
// and to the watcher: a [[bundle]]'s ref (whichever cached pull of it
// runs), a bundle file itself, or a plugin.toml's directory. The caller
// holds ops.
func (h *Host) unitOf(src string) string {
	if ref, ok := h.units[src]; ok {
		return ref
	}
	if bundle.IsBundle(src) {
		return src
	}
	return filepath.Dir(src)
}

// sync loads what appeared, stops what went away and reloads what changed
// among units (the watcher's hint; a root stands for everything in it). A
// plugin whose new version does not load keeps running as it was.
func (h *Host) sync(ctx context.Context, units []string) {
	h.ops.Lock()
	defer h.ops.Unlock()
	if ctx.Err() != nil {
		return
	}
	hint := map[string]bool{}
	for _, u := range units {
		hint[u] = true
	}
	hinted := func(u string) bool { return hint[u] || hint[filepath.Dir(u)] }
	files, err := h.discover()
	if err != nil {
		h.log.Error("reload: cannot read the plugin directories; nothing changed", "error", err.Error())
		return
	}
	present := map[string]string{} // unit -> what Discover found
	for _, f := range files {
		present[h.unitOf(f)] = f
	}
	h.mu.Lock()
	byUnit := map[string]*entry{}
	for _, e := range h.plugins {
		byUnit[e.unit] = e
	}
	failed := map[string]bool{}
	for u := range h.loadErrors {
		if _, ok := present[u]; ok {
			failed[u] = true
		} else {
			delete(h.loadErrors, u) // gone: nothing to report any more
		}
	}
	h.mu.Unlock()

	for u, e := range byUnit {
		if _, ok := present[u]; !ok {
			h.remove(e)
			delete(byUnit, u)
		}
	}

	var olds, news []*entry
	keys := make([]string, 0, len(present))
	for u := range present {
		keys = append(keys, u)
	}
	sort.Strings(keys)
	type candidate struct {
		unit string
		e    *entry
		err  error
	}
	var cands []candidate
	claims := map[string][]string{} // names claimed in this batch, by source
	for _, u := range keys {
		old := byUnit[u]
		if !hinted(u) && (old != nil || failed[u]) {
			continue // unchanged, or failed before and unchanged since
		}
		e, err := h.prepare(ctx, present[u])
		if err == nil && old != nil && e.print == old.print {
			// Touched, not changed (or our own build's output); or the
			// running version restored after a failed reload, whose
			// failure no longer holds.
			if failed[u] {
				h.mu.Lock()
				delete(h.loadErrors, u)
				h.mu.Unlock()
				h.log.Info("reload: the running version is back; its failed reload is cleared", "plugin", old.p.M.Name, "version", old.p.M.Version)
			}
			continue
		}
		if err == nil {
			claims[e.p.M.Name] = append(claims[e.p.M.Name], present[u])
		}
		cands = append(cands, candidate{u, e, err})
	}
	// As at start-up, a name two new sources claim goes to neither,
	// whatever their order; a running plugin keeps its name.
	for _, c := range cands {
		old, err := byUnit[c.unit], c.err
		if err == nil {
			h.mu.RLock()
			other := h.plugins[c.e.p.M.Name]
			h.mu.RUnlock()
			if other != nil && other != old {
				err = fmt.Errorf("duplicate plugin name %q: %s runs under it, so %s does not (rename one)", c.e.p.M.Name, other.src, present[c.unit])
			} else if srcs := claims[c.e.p.M.Name]; len(srcs) > 1 {
				err = fmt.Errorf("duplicate plugin name %q: %s all claim it, so none of them runs (rename all but one, or remove them)", c.e.p.M.Name, strings.Join(srcs, ", "))
			}
		}
		if err != nil {
			h.reloadFailed(present[c.unit], old, err)
			continue
		}
		olds, news = append(olds, old), append(news, c.e)
	}
	for i, err := range h.compile(ctx, news) {
		switch {
		case err != nil:
			h.reloadFailed(news[i].src, olds[i], err)
		case olds[i] == nil:
			h.add(news[i])
		default:
			h.replace(olds[i], news[i])
		}
	}
}

// reloadFailed records why src did not load. A plugin that was running
// (old) runs on, and status says so.
func (h *Host) reloadFailed(src string, old *entry, err error) {
	if old == nil {
		h.fail(src, err)
		return
	}
	h.mu.Lock()
	h.loadErrors[h.unitOf(src)] = fmt.Errorf("reload failed; version %s runs on: %w", old.p.M.Version, err)
	h.mu.Unlock()
	h.log.Error("reload failed; the old version runs on", "plugin", old.p.M.Name, "version", old.p.M.Version, "error", err.Error())
}

// subscribe tells every trigger source of name's rules (nil: none).
func (h *Host) subscribe(name string, m *manifest.Manifest) {
	for _, c := range h.opts.Capabilities {
		if t, ok := c.(capability.Triggerer); ok {
			capability.Subscribe(t, name, m)
		}
	}
}

// add runs a plugin that appeared.
func (h *Host) add(e *entry) {
	name := e.p.M.Name
	h.mu.Lock()
	h.plugins[name] = e
	delete(h.loadErrors, e.unit)
	h.mu.Unlock()
	h.subscribe(name, e.p.M)
	h.start(e)
	h.log.Info("plugin loaded", "plugin", name, "version", e.p.M.Version, "grants", grantNames(e.p.M))
}

// replace swaps old for its new version e, losing no event: under mu, so
// that no delivery slips between, old's queue is closed and what it held
// is moved, in order, to e's queue, and e takes old's place for new events.
// old then finishes the event it is handling, gets stop and closes; only
// then does e start, so that two instances of one plugin never run at once
// (capabilities hold per-plugin resources, such as mounts).
func (h *Host) replace(old, e *entry) {
	old.stopTimers()
	old.timers.Wait()
	h.mu.Lock()
	queued, unreported := old.p.Handoff()
	e.p.TakeOver(unreported)
	handed := 0
	for _, ev := range queued {
		if e.p.Requeue(ev) {
			handed++
		}
	}
	if old.p.M.Name != e.p.M.Name {
		delete(h.plugins, old.p.M.Name)
	}
	h.plugins[e.p.M.Name] = e
	delete(h.loadErrors, e.unit)
	h.mu.Unlock()
	if old.p.M.Name != e.p.M.Name {
		h.subscribe(old.p.M.Name, nil)
	}
	h.subscribe(e.p.M.Name, e.p.M)
	old.p.Stop()
	<-old.p.Done()
	old.p.Close(context.Background())
	if old.p.M.Name != e.p.M.Name {
		h.forget(old.p.M.Name)
	}
	h.start(e)
	args := []any{"plugin", e.p.M.Name, "from", old.p.M.Version, "to", e.p.M.Version, "handed_over", handed}
	if lost := len(queued) - handed; lost > 0 {
		// The new version's queue is smaller than what waited: its
		// overflow policy applied, and counted them as dropped.
		args = append(args, "overflowed", lost)
	}
	h.log.Info("plugin reloaded", args...)
}

// remove stops a plugin whose directory went away: it drains its queue and
// gets stop, as at shutdown. Its metrics go with it.
func (h *Host) remove(e *entry) {
	name := e.p.M.Name
	e.stopTimers()
	e.timers.Wait()
	h.mu.Lock()
	delete(h.plugins, name)
	h.mu.Unlock()
	h.subscribe(name, nil)
	e.p.Stop()
	<-e.p.Done()
	e.p.Close(context.Background())
	h.forget(name)
	h.log.Info("plugin removed", "plugin", name, "dir", e.dir)
}

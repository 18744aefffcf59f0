// Package reload watches the runtime's plugin directories with fsnotify and
// says, once the writing has settled, which plugins changed: a plugin
// directory whose files changed, one that appeared or went away, or a bundle
// file. What to do about it (load the new version, keep the old one if that
// fails, hand the queue over) is the host's business.
package reload

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long the directories must be quiet before a change
// is reported: a build or a copy writes a module in many pieces, and
// reporting each would load a half-written file.
const DefaultDebounce = 300 * time.Millisecond

// Options configure a Watcher.
type Options struct {
	Debounce time.Duration // 0 means DefaultDebounce
	Logger   *slog.Logger  // nil discards
}

// Watcher reports changed plugins until Close.
type Watcher struct {
	fs      *fsnotify.Watcher
	roots   map[string]bool
	opts    Options
	changed func(units []string)
	cancel  context.CancelFunc
	done    chan struct{}
}

// Watch starts watching roots (the runtime's plugin directories) and each
// plugin directory in them. changed is called on the watcher's goroutine,
// one call at a time, with the units that changed, sorted: a plugin
// directory (a root that holds plugin.toml, or a subdirectory of a root)
// or a file directly in a root (a bundle). A unit may be reported that did
// not change in substance; the caller compares.
func Watch(ctx context.Context, roots []string, o Options, changed func(units []string)) (*Watcher, error) {
	if o.Debounce <= 0 {
		o.Debounce = DefaultDebounce
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &Watcher{fs: fw, roots: map[string]bool{}, opts: o, changed: changed, done: make(chan struct{})}
	for _, r := range roots {
		r = filepath.Clean(r)
		w.roots[r] = true
		w.add(r)
		entries, _ := os.ReadDir(r)
		for _, e := range entries {
			if e.IsDir() {
				w.add(filepath.Join(r, e.Name()))
			}
		}
	}
	ctx, w.cancel = context.WithCancel(ctx)
	go w.loop(ctx)
	return w, nil
}

func (w *Watcher) add(dir string) {
	if err := w.fs.Add(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		w.opts.Logger.Warn("reload: cannot watch a plugin directory; its changes need a restart", "dir", dir, "error", err.Error())
	}
}

// Close stops watching and waits for a changed call in progress.
func (w *Watcher) Close() {
	w.cancel()
	<-w.done
}

// unit maps an event's path to the plugin it concerns.
func (w *Watcher) unit(path string) string {
	if w.roots[path] {
		return path
	}
	parent := filepath.Dir(path)
	if !w.roots[parent] {
		return parent // a file in a plugin directory
	}
	if _, err := os.Stat(filepath.Join(parent, "plugin.toml")); err == nil {
		return parent // the root is itself a plugin directory
	}
	return path // a plugin directory or a bundle file in a root
}

func (w *Watcher) loop(ctx context.Context) {
	defer close(w.done)
	defer w.fs.Close()
	pending := map[string]bool{}
	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			// An overflow loses events: report every root, so that the
			// host looks at everything again.
			w.opts.Logger.Warn("reload: watch error; rescanning", "error", err.Error())
			for r := range w.roots {
				pending[r] = true
			}
			quiet.Reset(w.opts.Debounce)
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			if ev.Has(fsnotify.Create) && w.roots[filepath.Dir(ev.Name)] {
				if st, err := os.Stat(ev.Name); err == nil && st.IsDir() {
					w.add(ev.Name) // a new plugin directory
				}
			}
			pending[w.unit(ev.Name)] = true
			quiet.Reset(w.opts.Debounce)
		case <-quiet.C:
			units := make([]string, 0, len(pending))
			for u := range pending {
				units = append(units, u)
			}
			sort.Strings(units)
			clear(pending)
			w.changed(units)
		}
	}
}

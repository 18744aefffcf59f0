package host

// SIGHUP: re-read runtime.toml and apply what can change while the plugins
// run. See host/RATIONALE.md, "Why does SIGHUP reload runtime.toml?".

import (
	"context"
	"reflect"
	"slices"
	"sort"
	"strings"
	"unicode"

	"github.com/airlockhq/airlock/host/manifest"
)

// Reconfigure asks Run to re-read runtime.toml (why names who asked, such
// as "SIGHUP"). It does not block; asks that come while one waits are one.
func (h *Host) Reconfigure(why string) {
	select {
	case h.reconfigure <- why:
	default:
	}
}

// reread re-reads runtime.toml and applies what can be applied without a
// restart: log.level, and the plugin directories, which it rescans as a
// hot reload does (new plugins load, changed ones reload, gone ones stop),
// even with reload = false. Anything else that changed is listed in the
// log as waiting for a restart. An invalid file changes nothing. Run's
// goroutine calls it; stopWatch stops the running watcher, and the one
// returned stops the watcher that runs after.
func (h *Host) reread(ctx context.Context, why string, stopWatch func()) func() {
	old := h.rt
	if h.path == "" {
		h.log.Warn("configuration not re-read: this host was given it as a value, not a file", "signal", why)
		return stopWatch
	}
	rt, err := manifest.LoadRuntime(h.path, RuntimeSections(h.opts.Capabilities))
	if err != nil {
		h.log.Error("runtime.toml not re-read: it is not valid; the running configuration stays (fix it and send SIGHUP again)", "signal", why, "file", old.File, "error", err.Error())
		return stopWatch
	}
	var applied []string
	pending := changedKeys(old, rt)
	if old.Log.Level != rt.Log.Level && h.opts.LogLevel != nil {
		if h.opts.LogLevel.UnmarshalText([]byte(rt.Log.Level)) == nil {
			applied = append(applied, "log.level")
			pending = slices.DeleteFunc(pending, func(k string) bool { return k == "log.level" })
		}
	}
	if !slices.Equal(old.Plugins, rt.Plugins) {
		// The watcher watches the directories it was given: a new one
		// replaces it. It is stopped outside ops, which a reload holds.
		stopWatch()
		stopWatch = func() {}
		h.ops.Lock()
		h.mu.Lock() // and mu, for Runtime
		old.Plugins = rt.Plugins
		if !old.Trust.Configured && !rt.Trust.Configured {
			// Without a [trust] table every plugin directory is allowed
			// unsigned plugins: the new ones too (read under ops, by
			// bundle.Load in prepare). A [trust] that changed waits for a
			// restart, which judges every running plugin again.
			old.Trust.AllowUnsigned = rt.Trust.AllowUnsigned
			pending = slices.DeleteFunc(pending, func(k string) bool { return k == "trust" })
		}
		h.mu.Unlock()
		h.ops.Unlock()
		if old.Reload {
			stopWatch = h.watch(ctx)
		}
		applied = append(applied, "plugins")
		pending = slices.DeleteFunc(pending, func(k string) bool { return k == "plugins" })
	}
	args := []any{"signal", why, "file", old.File, "applied", applied}
	if len(pending) > 0 {
		args = append(args, "not_applied_until_restart", pending)
	}
	h.log.Info("runtime.toml re-read; rescanning the plugin directories", args...)
	h.sync(ctx, old.Plugins)
	return stopWatch
}

// changedKeys names the runtime.toml keys whose values differ between a
// and b: top-level keys (log's by subkey), and capability sections as
// [name].
func changedKeys(a, b *manifest.Runtime) []string {
	var out []string
	va, vb := reflect.ValueOf(*a), reflect.ValueOf(*b)
	for i := range va.NumField() {
		f := va.Type().Field(i)
		switch f.Name {
		case "File", "Dir":
			continue
		case "Log":
			la, lb := va.Field(i), vb.Field(i)
			for j := range la.NumField() {
				if !reflect.DeepEqual(la.Field(j).Interface(), lb.Field(j).Interface()) {
					out = append(out, "log."+snake(la.Type().Field(j).Name))
				}
			}
			continue
		case "Sections":
			for k := range a.Sections {
				if !reflect.DeepEqual(a.Sections[k], b.Sections[k]) {
					out = append(out, "["+k+"]")
				}
			}
			for k := range b.Sections {
				if _, ok := a.Sections[k]; !ok {
					out = append(out, "["+k+"]")
				}
			}
			continue
		}
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, snake(f.Name))
		}
	}
	sort.Strings(out)
	return out
}

// snake turns a Go field name into its runtime.toml key: StateDir is
// state_dir.
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

package manifest

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/airlockhq/airlock/internal/statedir"
)

// overlayKeys are the top-level keys an overlay may set, each with how it
// merges. Everything else is the image's alone: see "Why may the overlay
// add trust but not loosen a ceiling?" in host/RATIONALE.md.
var overlayKeys = []string{"limits", "ceiling", "restart", "log", "metrics", "trust", "bundle", "timezone", "mount"}

// overlaySections are the capability sections an overlay may set, whole:
// [mount] says which of this device's disks mounts may take, which only
// the device knows (its boot disk stays refused whatever it says).
var overlaySections = []string{"mount"}

// overlayLog is the part of [log] an overlay may change: not audit, which
// would let whoever writes the overlay move the audit trail away.
type overlayLog struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
}

// applyOverlay merges the overlay file at rt.Overlay, if there is one, into
// rt. A missing file is no overlay. The merged runtime is validated as a
// whole; errors are positioned in the overlay file.
func applyOverlay(rt *Runtime, sections map[string]SectionFunc) error {
	if rt.Overlay == "" {
		return nil
	}
	path := rt.Overlay
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("runtime overlay %s: %w (fix it, or remove overlay from %s)", path, err, rt.File)
	}
	if err := overlaySafe(path, st); err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("runtime overlay: %w", err)
	}
	d, err := parseDoc(path, data)
	if err != nil {
		return err
	}
	for _, k := range keysOf(d.top) {
		if !slices.Contains(overlayKeys, k) {
			d.errorf(k, fmt.Sprintf("set it in %s, the image's config; an overlay may set only %s", rt.File, strings.Join(overlayKeys, ", ")), "may not be set in an overlay")
		}
	}
	known := map[string][]string{"": overlayKeys}
	collectKeys("", reflect.TypeOf(runtimeTop{}), known)
	known["log"] = []string{"level", "format"}
	known["trust"] = []string{"vendor", "revoked"}

	m := *rt
	m.OverlayApplied = true
	d.decode("limits", &m.Limits)
	d.decode("restart", &m.Restart)
	d.decode("metrics", &m.Metrics)
	if d.decode("timezone", &m.Timezone) {
		m.Location = loadZone(d, m.Timezone)
	}
	if m.Metrics.Listen == "off" {
		m.Metrics.Listen = ""
	}
	lg := overlayLog{Level: m.Log.Level, Format: m.Log.Format}
	if d.decode("log", &lg) {
		m.Log.Level, m.Log.Format = lg.Level, lg.Format
	}
	if d.decode("ceiling", &m.Ceiling) {
		lowerOnly(d, rt.Ceiling, m.Ceiling)
	}
	if d.md.IsDefined("trust", "allow_unsigned") {
		d.errorf("trust.allow_unsigned", "an overlay may trust more vendors' keys, not unsigned code; set it in "+rt.File, "may not be set in an overlay")
	}
	// [trust] vendor and revoked, and [[bundle]], decode as in the image's
	// file, then add to what it says.
	add := &Runtime{File: path, Dir: filepath.Dir(path)}
	decodeTrust(d, add, sections, known)
	m.Trust.Vendors = slices.Clone(rt.Trust.Vendors)
	for i, v := range add.Trust.Vendors {
		for _, old := range rt.Trust.Vendors {
			if old.Name == v.Name || old.Key.Equal(v.Key) {
				d.errorf(fmt.Sprintf("trust.vendor[%d]", i), "the image's vendors and their ceilings stay as they are; add a vendor under a new name and key", "vendor %q (or its key) is already trusted by %s", old.Name, rt.File)
			}
		}
		m.Trust.Vendors = append(m.Trust.Vendors, v)
	}
	m.Trust.Revoked = append(slices.Clone(rt.Trust.Revoked), add.Trust.Revoked...)
	m.Bundles = slices.Clone(rt.Bundles)
	for _, b := range add.Bundles {
		if !slices.Contains(m.Bundles, b) {
			m.Bundles = append(m.Bundles, b)
		}
	}
	m.Sections = maps.Clone(rt.Sections)
	for _, k := range overlaySections {
		fn, ok := sections[k]
		if p, present := d.top[k]; ok && present {
			if v, err := fn(Section{d: d, key: k, prim: p, known: known}); err == nil && v != nil {
				m.Sections[k] = v
			}
		}
	}
	d.unknown(known)
	validateRuntime(d, &m)
	if err := d.errs.err(); err != nil {
		return err
	}
	*rt = m
	return nil
}

// lowerOnly records an error for each ceiling the overlay raises.
func lowerOnly(d *doc, image, o Limits) {
	const hint = "an overlay may lower the image's [ceiling], not raise it; raise it in the image's runtime.toml"
	if o.Memory > image.Memory {
		d.errorf("ceiling.memory", hint, "%s is above the image's %s", o.Memory, image.Memory)
	}
	if o.HandlerTimeout > image.HandlerTimeout {
		d.errorf("ceiling.handler_timeout", hint, "%s is above the image's %s", o.HandlerTimeout, image.HandlerTimeout)
	}
	if o.Queue > image.Queue {
		d.errorf("ceiling.queue", hint, "%d is above the image's %d", o.Queue, image.Queue)
	}
}

// overlaySafe refuses an overlay that someone other than the host's user
// or root could have written: it may add trusted vendor keys.
func overlaySafe(path string, st fs.FileInfo) error {
	if !st.Mode().IsRegular() {
		return fmt.Errorf("runtime overlay %s is not a regular file", path)
	}
	if why := statedir.OthersMayWrite(st); why != "" {
		return fmt.Errorf("runtime overlay %s %s: another user could add trusted keys to it, so it is not read (chown root and chmod go-w %s)", path, why, path)
	}
	return nil
}

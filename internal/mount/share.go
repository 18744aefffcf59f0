package mount

// A mount shared between plugins (ABI.md §3.4, "Shared mounts"): the
// owner offers a mount to named plugins in its mount request (share), and
// a reader takes it only if its own [[mount]] grant names the owner
// (from). The reader gets a view in its media root: a clone of the owner's
// mount with nosuid,nodev,noexec, read-only unless both sides say rw. A
// view is held by the reader like a mount of its own (list, unmount,
// released when its instance ends) and goes away, lazily and before the
// owner's mount, whenever the owner's mount does.

import (
	"context"
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/gate"
)

// reader is a loaded plugin with a [[mount]] grant: where its media root
// is, and whose shares it takes.
type reader struct {
	grant *Grant
	root  string // host path of its media root
}

// pluginID is a plugin's name as the host knows it: "name", or
// "vendor/name" for a vendor's bundle.
var pluginID = regexp.MustCompile(`^([a-z][a-z0-9-]{0,62}/)?[a-z][a-z0-9-]{0,62}$`)

// decodeAccept decodes a [[mount]] table that takes shares: from and mode,
// and nothing that grants a device.
func decodeAccept(g *Grant, i int, r ruleTOML, bad func(i int, key, hint, format string, args ...any)) {
	if len(r.Source)+len(r.FSType)+len(r.Options) > 0 || r.Target != "" {
		bad(i, "from", "put from and mode in a [[mount]] table of their own", "a table with from takes shares and grants no device: it may not have source, fstype, options or target")
	}
	if len(r.From) == 0 {
		bad(i, "mode", `add from = ["PLUGIN"], the plugins whose mounts it takes`, "mode without from")
	}
	rw := false
	switch r.Mode {
	case "", "ro":
	case "rw":
		rw = true
	default:
		bad(i, "mode", `write "ro" (the default) or "rw"`, "mode %q is neither ro nor rw", r.Mode)
	}
	for _, f := range r.From {
		if !pluginID.MatchString(f) {
			bad(i, "from", "write a plugin's name as in its plugin.toml (vendor/name for a vendor's)", "from %q is not a plugin name", f)
			continue
		}
		if g.Accepts == nil {
			g.Accepts = map[string]bool{}
		}
		g.Accepts[f] = g.Accepts[f] || rw
	}
}

// acceptsOutside lists the shares g takes beyond the ceiling c.
func (g *Grant) acceptsOutside(c *Grant) []string {
	var out []string
	for _, from := range slices.Sorted(maps.Keys(g.Accepts)) {
		crw, ok := c.Accepts[from]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("from %q is outside the ceiling", from))
		case g.Accepts[from] && !crw:
			out = append(out, fmt.Sprintf("from %q with mode rw is outside the ceiling (ro)", from))
		}
	}
	return out
}

// describeAccepts says in plain words whose shares g takes.
func (g *Grant) describeAccepts() []string {
	var out []string
	for _, from := range slices.Sorted(maps.Keys(g.Accepts)) {
		mode := "read-only"
		if g.Accepts[from] {
			mode = "read-write if the owner offers it so"
		}
		out = append(out, fmt.Sprintf("sees mounts that plugin %s shares with it, %s, under %s", from, mode, g.Target))
	}
	return out
}

// addReader records a loaded plugin's grant, for the owners' offers.
func (m *Mount) addReader(name string, g *Grant, root string) error {
	if _, self := g.Accepts[name]; self {
		return fmt.Errorf("[[mount]] from names the plugin itself (%q); a plugin sees its own mounts without a share", name)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.readers[name] = reader{grant: g, root: root}
	return nil
}

// checkSharesLocked decides every share of a mount request before
// anything is mounted: each reader must be another loaded plugin whose
// grant takes shares from the owner. One deny refuses the whole mount.
func (m *Mount) checkSharesLocked(ctx context.Context, in *capability.Caller, req request) error {
	for i, r := range req.shares {
		op := req.source + " share with " + r
		deny := func(format string, args ...any) error {
			return in.Check(ctx, "mount", op, gate.Deny(fmt.Sprintf(format, args...)))
		}
		rd, loaded := m.readers[r]
		switch {
		case r == in.Plugin:
			return deny("a plugin cannot share a mount with itself")
		case slices.Contains(req.shares[:i], r):
			return deny("plugin %q is named twice in share", r)
		case !loaded:
			return deny("no plugin %q with a [[mount]] grant is loaded", r)
		}
		if _, ok := rd.grant.Accepts[in.Plugin]; !ok {
			return deny("plugin %q does not take shares from %q (its plugin.toml has no [[mount]] table with from = [%q])", r, in.Plugin, in.Plugin)
		}
	}
	return nil
}

// offerLocked gives each reader of req its view of the owner's new mount
// h, audits it, and tells the reader. A view that cannot be made is
// audited as a deny and left out; the owner's mount stands.
func (m *Mount) offerLocked(ctx context.Context, in *capability.Caller, h *held, req request) {
	var shared []string
	for _, r := range req.shares {
		rd := m.readers[r]
		rw := req.shareRW && rd.grant.Accepts[in.Plugin] && !h.readOnly
		mode := "ro"
		if rw {
			mode = "rw"
		}
		op := "share " + h.name + " with " + r
		v, err := m.bindLocked(h, r, rd, !rw)
		if err != nil {
			in.Check(ctx, "mount", op, gate.Deny(err.Error()))
			shared = append(shared, r+"=failed")
			continue
		}
		why := fmt.Sprintf("plugin %q offers %s %s (asked %s) and plugin %q takes its shares (mode %s); view %s", in.Plugin, h.dev.Node, mode, shareMode(req.shareRW), r, shareMode(rd.grant.Accepts[in.Plugin]), v.name)
		if err := in.Check(ctx, "mount", op, gate.Allow(why)); err != nil {
			m.unmountLocked(v, "share refused", true)
			shared = append(shared, r+"=denied")
			continue
		}
		m.views[v.path] = v
		shared = append(shared, r+"="+mode)
		m.log.Info("shared", "plugin", in.Plugin, "target", h.name, "reader", r, "view", v.name, "readonly", v.readOnly)
		m.tellReader(v, "shared", "plugin "+in.Plugin+" shared it")
	}
	h.shared = strings.Join(shared, ",")
}

func shareMode(rw bool) string {
	if rw {
		return "rw"
	}
	return "ro"
}

// bindLocked makes reader r's view of h in its media root, named as h is
// (NAME-2 ... if taken).
func (m *Mount) bindLocked(h *held, r string, rd reader, ro bool) (*held, error) {
	for i := 1; i <= 100; i++ {
		name := h.name
		if i > 1 {
			name = fmt.Sprintf("%s-%d", h.name, i)
		}
		p := path.Join(rd.root, name)
		if m.held[p] != nil || m.views[p] != nil {
			continue
		}
		err := m.be.bind(h.path, ro, rd.root, name)
		switch {
		case err == errTaken:
			continue
		case err == errSymlink:
			return nil, fmt.Errorf("target %q in plugin %q's media root is a symbolic link; mounts never follow links", name, r)
		case err != nil:
			return nil, fmt.Errorf("view for plugin %q: %v", r, err)
		}
		opts := slices.Clone(h.options)
		if ro && !h.readOnly {
			opts = append(opts, "ro")
		}
		return &held{plugin: r, name: name, path: p, guest: path.Join(rd.grant.Target, name), source: h.source, dev: h.dev,
			fstype: h.fstype, driver: h.driver, options: opts, readOnly: ro, from: h}, nil
	}
	return nil, fmt.Errorf("the names %s to %s-100 are all taken in plugin %q's media root", h.name, h.name, r)
}

// dropViewsLocked removes every reader's view of the owner's mount h,
// lazily (a reader's open file must not keep the owner's device), and
// tells each reader. It runs before h itself is unmounted.
func (m *Mount) dropViewsLocked(h *held, why string) {
	for _, v := range m.sortedViews(func(v *held) bool { return v.from == h }) {
		if _, err := m.unmountLocked(v, "owner's mount ended: "+why, true); err != nil {
			m.log.Error("removing a plugin's view of a shared mount failed", "plugin", v.plugin, "target", v.name, "owner", h.plugin, "error", err.Error())
			continue
		}
		m.tellReader(v, "unmounted", fmt.Sprintf("plugin %s's mount ended: %s", h.plugin, why))
	}
}

// endViewsLocked removes the plugin's views of others' mounts (its
// instance ended).
func (m *Mount) endViewsLocked(plugin, why string) {
	for _, v := range m.sortedViews(func(v *held) bool { return v.plugin == plugin }) {
		if _, err := m.unmountLocked(v, why, false); err != nil {
			m.log.Error("unmount of a shared view after the plugin's instance ended failed", "plugin", plugin, "target", v.name, "error", err.Error())
		}
	}
}

func (m *Mount) sortedViews(keep func(*held) bool) []*held {
	var out []*held
	for _, v := range m.views {
		if keep(v) {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path > out[j].path })
	return out
}

// tellReader sends the reader a mount event about its view v.
func (m *Mount) tellReader(v *held, action, reason string) {
	if m.deliver == nil {
		return
	}
	f := func(k, v string) abi.Field { return abi.Field{Key: k, Value: []byte(v)} }
	rec := abi.Record{f("action", action), f("target", v.name), f("source", v.source), f("device", v.dev.Node),
		f("reason", reason), f("owner", v.from.plugin), f("readonly", fmt.Sprint(v.readOnly))}
	if !m.deliver(v.plugin, capability.Event{Kind: uint32(abi.EventMount), Payload: abi.AppendRecord(nil, rec)}) {
		m.log.Warn("mount event not delivered (queue full or plugin stopped)", "plugin", v.plugin, "target", v.name)
	}
}

// bind on the simulated device: a view would need a second copy of the
// simulated partition, so sharing is refused there.
func (b *simBackend) bind(string, bool, string, string) error {
	return fmt.Errorf("the simulated device cannot share mounts (run with device = \"real\")")
}

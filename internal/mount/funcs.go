package mount

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/host/manifest"
)

// Host functions of airlock_mount_v1 (ABI.md §3.4).
const (
	FuncMount   = "mount"   // (req_ptr, req_len, out_ptr, out_cap, out_len_ptr) -> errno
	FuncUnmount = "unmount" // (target_ptr, target_len, out_ptr, out_cap, out_len_ptr) -> errno
	FuncList    = "list"    // (out_ptr, out_cap, out_len_ptr) -> errno
)

// MaxRequest bounds a mount request record.
const MaxRequest = 64 << 10

// Functions lists the host functions of airlock_mount_v1.
func (m *Mount) Functions() []capability.Func {
	return []capability.Func{
		capability.HostFunc(FuncMount, m.callMount, capability.Input{Name: "req", Max: MaxRequest, Record: true,
			TooLong:   func(uint32) error { return fail(abi.TooLarge, "mount request exceeds 64 KiB") },
			Malformed: func(err error) error { return fail(abi.Invalid, "mount request: %v", err) }}),
		capability.HostFunc(FuncUnmount, m.callUnmount, capability.Input{Name: "target"}),
		capability.HostFunc(FuncList, m.callList),
	}
}

func (m *Mount) callMount(ctx context.Context, in *capability.Caller, a *capability.Args) (abi.Record, error) {
	h, err := m.Mount(ctx, in, a.Record(0))
	if err != nil {
		return nil, err
	}
	return h.record(), nil
}

func (m *Mount) callUnmount(ctx context.Context, in *capability.Caller, a *capability.Args) (abi.Record, error) {
	target := string(a.Bytes(0))
	lazy, err := m.Unmount(ctx, in, target)
	if err != nil {
		return nil, err
	}
	return abi.Record{{Key: "target", Value: []byte(target)}, {Key: "lazy", Value: []byte(strconv.FormatBool(lazy))}}, nil
}

func (m *Mount) callList(_ context.Context, in *capability.Caller, _ *capability.Args) (abi.Record, error) {
	var rec abi.Record
	for _, h := range m.List(in.Plugin) {
		rec = append(rec, h.record()...)
	}
	return rec, nil
}

// record is a mount as the guest reads it (§3.4); "target" leads.
func (h *held) record() abi.Record {
	f := func(k, v string) abi.Field { return abi.Field{Key: k, Value: []byte(v)} }
	r := abi.Record{f("target", h.name), f("path", h.guest), f("source", h.source), f("device", h.dev.Node),
		f("fstype", h.fstype), f("label", h.dev.Label), f("uuid", h.dev.UUID),
		f("options", strings.Join(h.options, ",")), f("readonly", strconv.FormatBool(h.readOnly)),
		f("driver", h.driver)}
	if h.note != "" {
		r = append(r, f("note", h.note))
	}
	if h.from != nil {
		r = append(r, f("owner", h.from.plugin))
	}
	if h.shared != "" {
		r = append(r, f("shared", h.shared))
	}
	return r
}

// request is a decoded mount request.
type request struct {
	source, fstype, target string
	options                []string
	shares                 []string // plugins offered a view (share.go)
	shareRW                bool
}

func decodeRequest(rec abi.Record) (request, error) {
	var r request
	for _, f := range rec {
		v := string(f.Value)
		switch f.Key {
		case "source":
			r.source = v
		case "fstype":
			r.fstype = v
		case "target":
			r.target = v
		case "option":
			r.options = append(r.options, v)
		case "share":
			if !pluginID.MatchString(v) {
				return r, fail(abi.Invalid, "mount request: share %q is not a plugin name", v)
			}
			r.shares = append(r.shares, v)
		case "share_mode":
			if v != "ro" && v != "rw" {
				return r, fail(abi.Invalid, "mount request: share_mode %q is neither ro nor rw", v)
			}
			r.shareRW = v == "rw"
		default:
			return r, fail(abi.Invalid, "mount request: unknown field %q (this host knows source, fstype, target, option, share, share_mode)", f.Key)
		}
	}
	if r.source == "" {
		return r, fail(abi.Invalid, "mount request has no source (label:NAME, uuid:UUID, partlabel:NAME, partuuid:UUID or device:/dev/NAME)")
	}
	return r, nil
}

// Mount mounts what rec asks for, for in's plugin. Every allow and deny
// goes through the gate.
func (m *Mount) Mount(ctx context.Context, in *capability.Caller, rec abi.Record) (*held, error) {
	req, err := decodeRequest(rec)
	if err != nil {
		return nil, err
	}
	g := grant.Of(in)
	if g == nil || m.be == nil {
		return nil, fail(abi.Unavailable, "the mount capability is not provisioned")
	}
	op := req.source
	deny := func(format string, args ...any) error {
		return in.Check(ctx, "mount", op, gate.Deny(fmt.Sprintf(format, args...)))
	}
	sel, err := parseSelector(req.source)
	if err != nil {
		return nil, fail(abi.Invalid, "plugin %q: mount: %v", in.Plugin, err)
	}
	if req.target != "" {
		if err := validName(req.target); err != nil {
			return nil, deny("%v", err)
		}
	}
	for i, o := range req.options {
		if err := checkOptionText(o); err != nil {
			return nil, deny("%v", err)
		}
		req.options[i] = strings.TrimSpace(o)
	}
	// Before the lock: a device that does not answer its probe delays
	// this call by the probe's timeout at most, and no other call.
	devs, err := m.be.devices(ctx)
	if err != nil {
		return nil, fail(abi.Unavailable, "plugin %q: mount %s: listing block devices: %v", in.Plugin, op, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var found []*Device
	systemDisks := map[string]string{}
	for i := range devs {
		d := &devs[i]
		if systemLabels[d.Label] {
			systemDisks[d.Disk] = d.Label
		}
		if sel.matches(d) {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		hint := ""
		if m.sim {
			// airlock trigger delivers an event, not a device: on the
			// simulated device the stick is there only while the demo has
			// it plugged in.
			hint = " (on the simulated device the MEDIA stick, /dev/sdb1, is present from start until the demo pulls it out; set [scenario] play = \"none\" in runtime.toml to keep it in)"
		}
		return nil, fail(abi.NotFound, "plugin %q: mount %s: no block device with a filesystem has %s %q%s", in.Plugin, op, sel.kind, sel.value, hint)
	case 1:
	default:
		var nodes []string
		for _, d := range found {
			nodes = append(nodes, d.Node)
		}
		next := "mount by uuid: or device: instead"
		if sel.kind == "uuid" {
			// dd copies of one stick, or a RAID member: the UUID
			// cannot tell them apart.
			next = "they hold copies of one filesystem; mount by device: instead, or give one a new UUID (tune2fs -U, mlabel -n)"
		}
		return nil, fail(abi.Invalid, "plugin %q: mount %s: %d devices match (%s); %s", in.Plugin, op, len(found), strings.Join(nodes, ", "), next)
	}
	d := found[0]
	if systemLabels[d.Label] {
		return nil, deny("%s is a system partition of the device (label %s) and is never mounted for plugins", d.Node, d.Label)
	}
	if l, ok := systemDisks[d.Disk]; ok {
		return nil, deny("%s is on the boot disk %s (it holds %s), which is never mounted for plugins", d.Node, d.Disk, l)
	}
	if d.ProbeErr != "" {
		if why := m.be.inUse(d); why != "" {
			return nil, deny("%s %s", d.Node, why)
		}
		return nil, fail(abi.Unavailable, "plugin %q: mount %s: %s cannot be probed: %s", in.Plugin, op, d.Node, d.ProbeErr)
	}
	fstype := req.fstype
	switch {
	case fstype == "" && d.FSType == "":
		return nil, fail(abi.Invalid, "plugin %q: mount %s: no filesystem was found on %s; name one with fstype", in.Plugin, op, d.Node)
	case fstype == "":
		fstype = d.FSType
	case d.FSType != "" && !sameFamily(fstype, d.FSType):
		return nil, fail(abi.Invalid, "plugin %q: mount %s: %s holds %s, not %s", in.Plugin, op, d.Node, d.FSType, fstype)
	}
	info := fsTable[fstype]
	if info == nil {
		return nil, deny("fstype %s is not one the host mounts for plugins (%s)", fstype, strings.Join(fsNames(), ", "))
	}
	var extra []string
	for _, o := range req.options {
		key, _, _ := strings.Cut(o, "=")
		if forcedOff[key] {
			return nil, deny("option %q would undo nosuid,nodev,noexec, which are always forced", o)
		}
		if !info.allows(key) {
			return nil, deny("option %q is not valid for %s", o, fstype)
		}
		if o != "ro" { // asking for less never needs a grant
			extra = append(extra, o)
		}
	}
	reason, why := g.decide(d, fstype, extra)
	if why != nil {
		return nil, deny("%v", why)
	}
	for _, h := range m.held {
		if h.dev.Node == d.Node {
			return nil, fail(abi.Busy, "plugin %q: mount %s: %s is already mounted for plugin %q at %s", in.Plugin, op, d.Node, h.plugin, h.name)
		}
	}
	if why := m.be.inUse(d); why != "" {
		return nil, deny("%s %s", d.Node, why)
	}
	// The operator's list of disks to give out (runtime.toml [mount]).
	if why := m.disks.refuseDisk(d); why != "" {
		return nil, deny("%s", why)
	}
	// The audit says which driver mounts it (kernel, or fuse:HELPER).
	drv, derr := m.be.driver(fstype)
	if derr == nil {
		reason += "; driver=" + drv.String()
	}
	if err := m.checkSharesLocked(ctx, in, req); err != nil {
		return nil, err
	}
	if err := in.Check(ctx, "mount", op, gate.Allow(reason)); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, fail(abi.Unavailable, "plugin %q: mount %s: %v", in.Plugin, op, derr)
	}
	var p plan
	if drv.helper != nil {
		p, err = buildFusePlan(drv.helper, fstype, req.options, m.uid(), m.gid())
	} else {
		p, err = buildPlan(fstype, req.options, m.uid(), m.gid())
	}
	if err != nil {
		return nil, fail(abi.Invalid, "plugin %q: mount %s: %v", in.Plugin, op, err)
	}
	root := path.Join(m.base, manifest.StateName(in.Plugin))
	base := req.target
	if base == "" {
		base = targetFor(d)
	}
	note := ""
	for i := 1; i <= 100; i++ {
		name := base
		if i > 1 {
			name = base + "-" + strconv.Itoa(i)
		}
		host := path.Join(root, name)
		if m.held[host] != nil {
			continue
		}
		err := m.be.mount(d, drv, p, root, name)
		if !p.ro && (errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EROFS)) {
			// mount(2) does not fall back to read-only by itself: a
			// write-protected card says EACCES or EROFS.
			note = fmt.Sprintf("mounted read-only: a read-write mount failed (%v)", err)
			p = p.readOnly()
			err = m.be.mount(d, drv, p, root, name)
		}
		switch {
		case errors.Is(err, errTaken):
			continue
		case errors.Is(err, errSymlink):
			m.log.Warn("mount target is a symbolic link", "plugin", in.Plugin, "target", name)
			return nil, in.Check(ctx, "mount", op, gate.Deny(fmt.Sprintf("target %q in the media root is a symbolic link; mounts never follow links", name)))
		case err != nil:
			return nil, mountError(in.Plugin, op, d, fstype, err)
		}
		h := &held{plugin: in.Plugin, name: name, path: host, guest: path.Join(g.Target, name), source: req.source,
			dev: *d, fstype: fstype, driver: drv.String(), options: p.options, readOnly: p.ro, note: note}
		m.held[host] = h
		m.log.Info("mounted", "plugin", in.Plugin, "source", req.source, "device", d.Node, "fstype", fstype,
			"driver", drv.String(), "target", name, "options", strings.Join(p.options, ","), "readonly", p.ro)
		m.offerLocked(ctx, in, h, req)
		return h, nil
	}
	return nil, fail(abi.Busy, "plugin %q: mount %s: the names %s to %s-100 are all taken in the media root", in.Plugin, op, base, base)
}

// mountError turns a failed mount(2) into an errno and a message that says
// what to do.
func mountError(plugin, op string, d *Device, fstype string, err error) error {
	pre := fmt.Sprintf("plugin %q: mount %s: %s (%s)", plugin, op, d.Node, fstype)
	switch {
	case errors.Is(err, syscall.ENODEV):
		return fail(abi.Unavailable, "%s: the kernel has no %s driver: %v", pre, fstype, err)
	case errors.Is(err, syscall.EPERM):
		return fail(abi.Unavailable, "%s: the host may not mount (run airlock as root, or in a privileged container): %v", pre, err)
	case errors.Is(err, syscall.EBUSY):
		return fail(abi.Busy, "%s: %v", pre, err)
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENXIO), errors.Is(err, syscall.ENOTBLK):
		return fail(abi.NotFound, "%s: the device is gone: %v", pre, err)
	case errors.Is(err, syscall.EINVAL):
		return fail(abi.Failed, "%s: the kernel refused the filesystem or its options (a damaged filesystem, or a wrong fstype): %v", pre, err)
	}
	return fail(abi.Failed, "%s: %v", pre, err)
}

// Unmount unmounts a target that in's plugin mounted.
func (m *Mount) Unmount(ctx context.Context, in *capability.Caller, target string) (bool, error) {
	op := "unmount " + target
	if err := validName(target); err != nil {
		return false, in.Check(ctx, "mount", op, gate.Deny(err.Error()))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	host := path.Join(m.base, manifest.StateName(in.Plugin), target)
	h := m.held[host]
	if h == nil {
		h = m.views[host] // a view of another plugin's mount: the reader may drop it
	}
	if h == nil || h.plugin != in.Plugin {
		if m.be != nil && m.be.mountedElsewhere(host) {
			return false, in.Check(ctx, "mount", op, gate.Deny(fmt.Sprintf("%s was not mounted by plugin %q; a plugin can unmount only what it mounted", target, in.Plugin)))
		}
		return false, fail(abi.NotFound, "plugin %q: unmount %s: nothing is mounted there (list shows the plugin's mounts)", in.Plugin, target)
	}
	if err := in.Check(ctx, "mount", op, gate.Allow(fmt.Sprintf("plugin %q mounted %s", in.Plugin, h.dev.Node))); err != nil {
		return false, err
	}
	lazy, err := m.unmountLocked(h, "plugin asked", false)
	if err != nil {
		return false, fail(abi.Failed, "plugin %q: unmount %s: %v", in.Plugin, target, err)
	}
	return lazy, nil
}

// List returns the plugin's mounts, by target name.
func (m *Mount) List(plugin string) []*held {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*held
	for _, h := range m.held {
		if h.plugin == plugin {
			out = append(out, h)
		}
	}
	out = append(out, m.sortedViews(func(v *held) bool { return v.plugin == plugin })...)
	slices.SortFunc(out, func(a, b *held) int { return strings.Compare(a.name, b.name) })
	return out
}

package mount

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// A driver is what mounts one filesystem: the kernel's, named by the
// fstype that mount(2) takes, or a FUSE helper program that the host
// runs as its child (host/RATIONALE.md, "Why FUSE ...?").
type driver struct {
	fstype string      // for mount(2), or the plugin's fstype for a helper
	helper *fuseHelper // nil: the kernel's driver
	path   string      // the helper's absolute path
}

// String is how `list` and the audit name the driver: "kernel" or
// "fuse:ntfs-3g".
func (d driver) String() string {
	if d.helper == nil {
		return "kernel"
	}
	return "fuse:" + d.helper.name
}

// fuseHelper is one FUSE program that mounts a filesystem the kernel
// lacks. Each runs in the foreground, so that it stays the host's child.
type fuseHelper struct {
	name string // the program, looked up in helperPath once
	pkg  string // the Debian package that has it
	// foreground is the flag that keeps it from detaching, if it takes
	// one; fgOption is the -o option that does, if it takes that instead.
	foreground, fgOption string
	// rw is the -o option that allows writing ("" if writing is the
	// default): fusefat mounts read-only unless told rw+.
	rw string
	// fsname names the device in the mount table for a helper that does
	// not mount as fuseblk (the crash cleanup and the stray-mount check
	// find its mounts by it).
	fsname bool
	// options are the options it takes besides ro and rw.
	options []string
}

// fuseHelpers: a fixed table; nothing else is ever run to mount.
var fuseHelpers = map[string]*fuseHelper{
	"fusefat":          {name: "fusefat", pkg: "fusefat", foreground: "-f", rw: "rw+", fsname: true, options: []string{"uid", "gid", "umask"}},
	"mount.exfat-fuse": {name: "mount.exfat-fuse", pkg: "exfat-fuse", foreground: "-d", options: []string{"uid", "gid", "umask", "dmask", "fmask"}},
	"ntfs-3g":          {name: "ntfs-3g", pkg: "ntfs-3g", fgOption: "no_detach", options: []string{"uid", "gid", "umask", "dmask", "fmask", "windows_names"}},
}

// helperPath is where helpers are looked up: a fixed list, not $PATH.
var helperPath = []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// buildFusePlan is buildPlan for a FUSE helper. The kernel driver's
// defaults (shortname=mixed, errors=remount-ro, ...) do not apply; the
// helper gets the host's uid and gid and umask=0077 (no access for group
// or others) unless the plugin sets them. An option the grant allows but
// the helper does not take is refused with the reason, not dropped.
func buildFusePlan(h *fuseHelper, fstype string, extra []string, uid, gid int) (plan, error) {
	p := plan{flags: forcedFlags}
	set := map[string]bool{}
	for _, o := range extra {
		key, _, _ := strings.Cut(o, "=")
		set[key] = true
	}
	for _, d := range []string{"uid=" + strconv.Itoa(uid), "gid=" + strconv.Itoa(gid), "umask=0077"} {
		if key, _, _ := strings.Cut(d, "="); !set[key] {
			p.data = append(p.data, d)
		}
	}
	all := slices.Clone(p.data)
	for _, o := range extra {
		key, _, _ := strings.Cut(o, "=")
		switch {
		case key == "ro":
			p.flags |= msRdonly
			p.ro = true
		case key == "rw":
		case key == "noatime" || key == "nodiratime" || key == "relatime":
			// Per-mount flags: the host sets them itself (fuseMount).
			p.flags |= generic[key]
		case slices.Contains(h.options, key):
			p.data = append(p.data, o)
		default:
			return plan{}, fmt.Errorf("option %q is not taken by %s, the FUSE helper that mounts %s here (the kernel has no %s driver); it takes %s, ro, noatime, nodiratime, relatime",
				o, h.name, fstype, fstype, strings.Join(h.options, ", "))
		}
		all = append(all, o)
	}
	return p.finish(fsTable[fstype] != nil && fsTable[fstype].readOnly, all), nil
}

// fuseArgs is the helper's command line: it mounts dev at target.
func fuseArgs(h *fuseHelper, p plan, dev, target string) []string {
	opts := []string{"nosuid", "nodev", "noexec"}
	switch {
	case p.ro:
		opts = append(opts, "ro")
	case h.rw != "":
		opts = append(opts, h.rw)
	}
	if h.fgOption != "" {
		opts = append(opts, h.fgOption)
	}
	if h.fsname {
		opts = append(opts, "fsname="+dev)
	}
	opts = append(opts, p.data...)
	var args []string
	if h.foreground != "" {
		args = append(args, h.foreground)
	}
	return append(args, "-o", strings.Join(opts, ","), dev, target)
}

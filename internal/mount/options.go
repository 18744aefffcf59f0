package mount

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// fsInfo is what the host knows of one filesystem type: the options a
// plugin may ask for (beyond the generic ones) and the defaults it gets.
type fsInfo struct {
	// options are the fs-specific option keys a grant may list.
	options []string
	// defaults apply unless the plugin's own option sets the same key.
	// "$uid" and "$gid" are the host process's ids, so that the host can
	// read and write the files it serves to the plugin.
	defaults []string
	// readOnly filesystems are always mounted read-only.
	readOnly bool
	// kernel is the kernel driver's name in /proc/filesystems and for
	// mount(2), if it is not the fstype itself (ntfs: ntfs3).
	kernel string
	// fuse names the FUSE helper (fuseHelpers) that mounts the type when
	// the kernel lacks the driver; "" if there is none.
	fuse string
}

// generic options are valid on every filesystem; they become mount flags.
var generic = map[string]uintptr{
	"ro": msRdonly, "rw": 0, "sync": msSynchronous, "dirsync": msDirsync,
	"noatime": msNoatime, "nodiratime": msNodiratime, "relatime": msRelatime,
}

// forcedOff are the options that would undo nosuid,nodev,noexec.
var forcedOff = map[string]bool{"suid": true, "dev": true, "exec": true, "defaults": true, "bind": true, "remount": true, "move": true}

// fsTable follows udisks' per-filesystem allowlists: vfat gets
// uid,gid,shortname=mixed,utf8,flush; ext* and exfat errors=remount-ro
// (exfat's driver has it; vfat's does too, but udisks does not set it).
var fsTable = map[string]*fsInfo{
	"vfat": {
		options:  []string{"uid", "gid", "umask", "fmask", "dmask", "codepage", "iocharset", "shortname", "utf8", "flush", "showexec", "quiet", "tz", "time_offset", "errors", "discard"},
		defaults: []string{"uid=$uid", "gid=$gid", "shortname=mixed", "utf8", "flush"},
		fuse:     "fusefat",
	},
	"exfat": {
		options:  []string{"uid", "gid", "umask", "fmask", "dmask", "iocharset", "errors", "discard", "time_offset"},
		defaults: []string{"uid=$uid", "gid=$gid", "errors=remount-ro"},
		fuse:     "mount.exfat-fuse",
	},
	// ntfs is what the probe (and blkid) report; ntfs3 is the kernel
	// driver's name, kept for grants that name it.
	"ntfs": {
		options:  []string{"uid", "gid", "umask", "fmask", "dmask", "iocharset", "discard", "prealloc", "nohidden", "windows_names"},
		defaults: []string{"uid=$uid", "gid=$gid"},
		kernel:   "ntfs3",
		fuse:     "ntfs-3g",
	},
	"ntfs3": {
		options:  []string{"uid", "gid", "umask", "fmask", "dmask", "iocharset", "discard", "prealloc", "nohidden", "windows_names"},
		defaults: []string{"uid=$uid", "gid=$gid"},
		fuse:     "ntfs-3g",
	},
	"ext2":    {options: []string{"errors"}, defaults: []string{"errors=remount-ro"}},
	"ext3":    {options: []string{"errors", "data", "commit", "barrier", "discard"}, defaults: []string{"errors=remount-ro"}},
	"ext4":    {options: []string{"errors", "data", "commit", "barrier", "discard", "nodelalloc"}, defaults: []string{"errors=remount-ro"}},
	"btrfs":   {options: []string{"compress", "subvol", "discard", "commit"}},
	"xfs":     {options: []string{"discard", "nouuid"}},
	"iso9660": {options: []string{"uid", "gid", "iocharset", "utf8", "norock", "nojoliet"}, readOnly: true},
}

func fsNames() []string {
	out := make([]string, 0, len(fsTable))
	for k := range fsTable {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (f *fsInfo) allows(key string) bool {
	if _, ok := generic[key]; ok {
		return true
	}
	for _, o := range f.options {
		if o == key {
			return true
		}
	}
	return false
}

// sameFamily: the ext4 driver mounts ext2 and ext3 as well; ntfs3 is
// the kernel's name for ntfs.
func sameFamily(a, b string) bool {
	return a == b || strings.HasPrefix(a, "ext") && strings.HasPrefix(b, "ext") ||
		strings.HasPrefix(a, "ntfs") && strings.HasPrefix(b, "ntfs")
}

// checkOptionText refuses what could smuggle a second option into the
// comma-separated data string that mount(2) takes.
func checkOptionText(o string) error {
	if o == "" {
		return fmt.Errorf("empty option")
	}
	if strings.ContainsAny(o, ",\n\r\x00") {
		return fmt.Errorf("option %q contains a comma, a newline or a NUL", o)
	}
	if strings.HasPrefix(o, "=") {
		return fmt.Errorf("option %q has no name", o)
	}
	return nil
}

// Forced flags: what udisks (nosuid,nodev) and usbmount (noexec) force.
const forcedFlags = msNosuid | msNodev | msNoexec

// plan is the mount(2) call a request becomes.
type plan struct {
	flags   uintptr
	data    []string // fs-specific options, in order
	options []string // every option, for the reply and `list`
	ro      bool
}

// buildPlan merges the filesystem's defaults with the plugin's options
// (its keys win) and splits generic flags from fs data.
func buildPlan(fstype string, extra []string, uid, gid int) (plan, error) {
	info := fsTable[fstype]
	if info == nil {
		return plan{}, fmt.Errorf("unknown fstype %q", fstype)
	}
	p := plan{flags: forcedFlags}
	set := map[string]bool{}
	for _, o := range extra {
		key, _, _ := strings.Cut(o, "=")
		set[key] = true
	}
	var all []string
	for _, d := range info.defaults {
		key, _, _ := strings.Cut(d, "=")
		if set[key] {
			continue
		}
		d = strings.ReplaceAll(d, "$uid", strconv.Itoa(uid))
		d = strings.ReplaceAll(d, "$gid", strconv.Itoa(gid))
		all = append(all, d)
	}
	all = append(all, extra...)
	for _, o := range all {
		key, _, _ := strings.Cut(o, "=")
		if f, ok := generic[key]; ok {
			p.flags |= f
			if key == "ro" {
				p.ro = true
			}
			continue
		}
		p.data = append(p.data, o)
	}
	return p.finish(info.readOnly, all), nil
}

// finish forces read-only for a read-only type, and lists every option
// in effect (all: the defaults and the plugin's), forced ones first.
func (p plan) finish(readOnly bool, all []string) plan {
	if readOnly {
		p.flags |= msRdonly
		p.ro = true
	}
	p.options = append([]string{"nosuid", "nodev", "noexec"}, all...)
	if p.ro && !containsKey(all, "ro") {
		p.options = append(p.options, "ro")
	}
	return p
}

func containsKey(opts []string, key string) bool {
	for _, o := range opts {
		if k, _, _ := strings.Cut(o, "="); k == key {
			return true
		}
	}
	return false
}

// readOnly returns the plan for the read-only retry.
func (p plan) readOnly() plan {
	q := p
	q.flags |= msRdonly
	q.ro = true
	q.options = append(append([]string(nil), p.options...), "ro")
	if containsKey(p.options, "ro") {
		q.options = p.options
	}
	return q
}

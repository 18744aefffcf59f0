package mount

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/airlockhq/airlock/host/manifest"
)

// Config is runtime.toml's [mount] section: which disks plugins' mounts
// may take on this machine. A grant says which filesystems a plugin wants
// (by label, uuid or device); this says which disks the operator gives
// out at all, so that real mode on a machine with other programs' disks
// and loop devices takes only sticks.
type Config struct {
	// Disks lists what may be mounted: "removable" (a disk the kernel
	// marks removable, or one on USB), "loop" (every loop device), "any"
	// (every disk), or kernel disk names ("sdb", "loop7"). The boot disk
	// and the device's system partitions are never mounted, whatever it
	// says. Default: ["removable"].
	Disks []string
}

// DefaultDisks is what an absent [mount] disks means.
var DefaultDisks = []string{"removable"}

var diskNameRe = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// DecodeConfig decodes runtime.toml's [mount] into a *Config.
func (*Mount) DecodeConfig(s manifest.Section) (any, error) {
	var t struct {
		Disks *[]string `toml:"disks"`
	}
	if !s.Decode(&t) {
		return nil, fmt.Errorf("bad [mount] section")
	}
	if t.Disks == nil {
		return &Config{Disks: slices.Clone(DefaultDisks)}, nil
	}
	disks := *t.Disks
	ok := true
	for i, d := range disks {
		if d != "removable" && d != "loop" && d != "any" && !diskNameRe.MatchString(d) {
			s.Errorf("disks", `list "removable", "loop", "any" or kernel disk names such as "sdb"`, "entry %d: %q is not a disk class or a kernel disk name", i, d)
			ok = false
		}
	}
	if len(disks) == 0 {
		s.Errorf("disks", `list at least "removable", or remove the mount grants of your plugins`, "no disks may be mounted")
		ok = false
	}
	if !ok {
		return nil, fmt.Errorf("bad [mount] section")
	}
	return &Config{Disks: disks}, nil
}

// onUSB reports whether the device hangs off a USB bus.
func onUSB(d *Device) bool { return strings.Contains(d.DevPath, "/usb") }

// refuseDisk says why the runtime's [mount] disks does not give out d's
// disk, or "" if it does.
func (c *Config) refuseDisk(d *Device) string {
	disks := DefaultDisks
	if c != nil {
		disks = c.Disks
	}
	switch {
	case slices.Contains(disks, "any"),
		slices.Contains(disks, d.Disk),
		slices.Contains(disks, "loop") && d.Loop,
		slices.Contains(disks, "removable") && (d.Removable || onUSB(d)):
		return ""
	}
	kind := "neither removable nor on USB"
	if d.Loop {
		kind = "a loop device"
	}
	return fmt.Sprintf("%s is on disk %s, %s, and [mount] disks in runtime.toml gives out only %s (add %q to it to allow this disk)",
		d.Node, d.Disk, kind, strings.Join(disks, ", "), d.Disk)
}

// Package devnode gives the host a path to a block device from its device
// number, so that probing and mount(2) need neither udevd nor a populated
// /dev. In a container without udevd, /dev is a snapshot taken at start: a
// stick plugged in later has no node there, and a name reused since may
// name another device. The device's /dev node is used only when it is a
// block device with the expected number; otherwise the host makes one
// itself, in a private directory it owns, and removes it when done.
package devnode

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
)

// Nodes hands out device node paths. Its methods are safe for concurrent
// use: each node it makes has a name of its own.
type Nodes struct {
	// DevDir is where nodes are looked for first, "/dev" normally.
	DevDir string
	// Dir is the private directory (mode 0700) that nodes are made in.
	Dir string
}

// seq names the nodes this process makes, so that two users of one Dir
// (the udev prober and the mount backend) never collide.
var seq atomic.Uint64

// ParseMajMin parses "8:17" (sysfs's dev file, mountinfo's field).
func ParseMajMin(s string) (major, minor uint32, err error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), ":")
	ma, err1 := strconv.ParseUint(a, 10, 32)
	mi, err2 := strconv.ParseUint(b, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("device number %q is not MAJOR:MINOR", s)
	}
	return uint32(ma), uint32(mi), nil
}

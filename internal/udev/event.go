// Package udev is the device-event trigger: it reads kernel or udevd uevents
// (or a recorded stream), adds superblock facts the kernel leaves out, and
// routes each event once to every plugin whose [[trigger.udev]] rules match.
package udev

import (
	"path/filepath"
	"sort"
	"strings"

	"github.com/airlockhq/airlock/abi"
)

// UEvent is one device event, under udev's property names. The six
// promoted keys live in their own fields and never in Props, so that a
// property lookup has one place to look for each name.
type UEvent struct {
	Action    string // add, remove, change, move, online, offline, bind, unbind
	DevPath   string // /devices/..., relative to /sys
	Subsystem string
	DevType   string
	DevName   string // always /dev/..., as udev reports it, or ""
	SeqNum    string
	Props     map[string]string
}

// Promoted property names, in the order they lead an event's record.
const (
	keyAction    = "ACTION"
	keyDevPath   = "DEVPATH"
	keySubsystem = "SUBSYSTEM"
	keyDevType   = "DEVTYPE"
	keyDevName   = "DEVNAME"
	keySeqNum    = "SEQNUM"
)

// Synth is the property that marks an event the host made up rather than
// read: "coldplug" for a device present at start or when a plugin loads,
// "resync" for one found (or found gone) after the event stream lost
// messages. Real uevents never carry it.
const Synth = "AIRLOCK_SYNTH"

// Get returns a property by its udev name, promoted ones included; an
// absent property reads as "", as in udev rules.
func (e *UEvent) Get(key string) string {
	switch key {
	case keyAction:
		return e.Action
	case keyDevPath:
		return e.DevPath
	case keySubsystem:
		return e.Subsystem
	case keyDevType:
		return e.DevType
	case keyDevName:
		return e.DevName
	case keySeqNum:
		return e.SeqNum
	}
	return e.Props[key]
}

// NewEvent is a uevent made from its action, its devpath and properties
// by their udev names, as a test or the admin socket describes one:
// SUBSYSTEM, DEVTYPE, DEVNAME (a bare name is taken under /dev) and SEQNUM
// fill the event's fields, as in a kernel event; the rest are properties.
func NewEvent(action, devpath string, props map[string]string) UEvent {
	e := UEvent{Action: action, DevPath: devpath, Props: make(map[string]string, len(props)+1)}
	for k, v := range props {
		if k != keyAction && k != keyDevPath {
			e.set(k, v)
		}
	}
	return e
}

// set stores a property, promoting the six keys to their fields.
func (e *UEvent) set(key, value string) {
	switch key {
	case keyAction:
		e.Action = value
	case keyDevPath:
		e.DevPath = value
	case keySubsystem:
		e.Subsystem = value
	case keyDevType:
		e.DevType = value
	case keyDevName:
		e.DevName = devName(value)
	case keySeqNum:
		e.SeqNum = value
	default:
		if e.Props == nil {
			e.Props = make(map[string]string, 8)
		}
		e.Props[key] = value
	}
}

// Kernel is the kernel's name for the device, what udev's KERNEL== matches:
// the last element of DEVPATH.
func (e *UEvent) Kernel() string {
	if i := strings.LastIndexByte(e.DevPath, '/'); i >= 0 {
		return e.DevPath[i+1:]
	}
	return e.DevPath
}

// devName makes the kernel's relative DEVNAME ("sdb1") absolute, as udevd
// reports it ("/dev/sdb1"), so that a plugin sees one form from every
// source.
func devName(v string) string {
	if v == "" || strings.HasPrefix(v, "/") {
		return v
	}
	return "/dev/" + v
}

// devNode returns the device node to probe, or "" if DEVNAME does not name
// one safely under /dev.
func (e *UEvent) devNode() string {
	if e.DevName == "" {
		return ""
	}
	p := filepath.Clean(e.DevName)
	if !strings.HasPrefix(p, "/dev/") || p != e.DevName {
		return ""
	}
	return p
}

// clone returns a copy whose Props may be changed freely.
func (e *UEvent) clone() UEvent {
	c := *e
	c.Props = make(map[string]string, len(e.Props)+8)
	for k, v := range e.Props {
		c.Props[k] = v
	}
	return c
}

// Record encodes the event as the ABI's udev payload: the six promoted keys
// first, always, in a fixed order (so that a C guest can read them by
// position), then every other property sorted by name.
func (e *UEvent) Record() abi.Record {
	r := make(abi.Record, 0, 6+len(e.Props))
	r = append(r,
		abi.Field{Key: keyAction, Value: []byte(e.Action)},
		abi.Field{Key: keyDevPath, Value: []byte(e.DevPath)},
		abi.Field{Key: keySubsystem, Value: []byte(e.Subsystem)},
		abi.Field{Key: keyDevType, Value: []byte(e.DevType)},
		abi.Field{Key: keyDevName, Value: []byte(e.DevName)},
		abi.Field{Key: keySeqNum, Value: []byte(e.SeqNum)},
	)
	keys := make([]string, 0, len(e.Props))
	for k := range e.Props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		r = append(r, abi.Field{Key: k, Value: []byte(e.Props[k])})
	}
	return r
}

// Actions the kernel sends (lib/kobject_uevent.c's kobject_actions).
var actions = []string{"add", "remove", "change", "move", "online", "offline", "bind", "unbind"}

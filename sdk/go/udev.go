package airlock

import (
	"strconv"
	"strings"

	"github.com/airlockhq/airlock/sdk/go/abi"
)

// UEvent is a device event from a [[trigger.udev]] rule, under udev's
// names: what `udevadm monitor --property` prints for it.
type UEvent struct {
	Action    string // add, remove, change, move, online, offline, bind, unbind
	Subsystem string // block, usb, tty, net, ...
	DevType   string // disk, partition, usb_device, ...
	DevPath   string // /devices/..., the device's path under /sys
	DevName   string // /dev/sdb1, or "" for a device without a node
	// Props holds every property, the five above included (ACTION,
	// SUBSYSTEM, ...), and SEQNUM. For block devices the host fills in
	// ID_FS_TYPE, ID_FS_LABEL, ID_FS_UUID and their _ENC forms from the
	// superblock when the kernel's event lacks them. AIRLOCK_SYNTH is
	// "coldplug" for a device that was present before the plugin loaded.
	Props map[string]string
}

// Label returns the filesystem label as written on the device: udev's
// ID_FS_LABEL_ENC decoded (ID_FS_LABEL has spaces and unsafe bytes
// replaced by "_").
func (e UEvent) Label() string {
	if v, ok := e.Props["ID_FS_LABEL_ENC"]; ok {
		return decodeUdevString(v)
	}
	return e.Props["ID_FS_LABEL"]
}

// UUID returns the filesystem UUID (ID_FS_UUID), as blkid formats it.
func (e UEvent) UUID() string { return e.Props["ID_FS_UUID"] }

// FSType returns the filesystem type (ID_FS_TYPE): vfat, exfat, ext4, ...
func (e UEvent) FSType() string { return e.Props["ID_FS_TYPE"] }

// SeqNum returns the kernel's sequence number, or 0 for a synthetic event.
func (e UEvent) SeqNum() uint64 {
	n, _ := strconv.ParseUint(e.Props["SEQNUM"], 10, 64)
	return n
}

// Coldplug reports whether the device was already present when the plugin
// loaded, rather than just plugged in.
func (e UEvent) Coldplug() bool { return e.Props["AIRLOCK_SYNTH"] == "coldplug" }

// OnUdev runs h for each device event that the plugin's [[trigger.udev]]
// rules match.
func OnUdev(h func(UEvent) error) {
	Handle(abi.EventUdev, func(e Event) error {
		u := UEvent{Props: make(map[string]string, len(e.Fields))}
		for _, f := range e.Fields {
			u.Props[f.Key] = string(f.Value)
		}
		u.Action, u.Subsystem, u.DevType = u.Props["ACTION"], u.Props["SUBSYSTEM"], u.Props["DEVTYPE"]
		u.DevPath, u.DevName = u.Props["DEVPATH"], u.Props["DEVNAME"]
		return h(u)
	})
}

// decodeUdevString undoes udev's \xNN escaping of *_ENC properties.
func decodeUdevString(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Command automount mounts external storage by its label while it is
// plugged in: a partition, or a whole-disk ("superfloppy") filesystem,
// appears, it is mounted at /media/<label> (the UUID when it has no label;
// -2, -3 when two sticks share one; read-only when the card refuses
// writes), its files are listed, and it is unmounted when it goes away.
package main

import (
	"errors"
	"os"
	"strings"

	airlock "github.com/airlockhq/airlock/sdk/go"
	"github.com/airlockhq/airlock/sdk/go/abi"
)

// mounted holds this instance's mounts by device node.
var mounted = map[string]airlock.MountInfo{}

// pulledOut is logged once per stick that goes while mounted, whichever of
// the host's mount event and the device's own udev event comes first, and
// whoever of the host and the plugin unmounted it.
const pulledOut = "pulled out while mounted; unmounted (unplug only after unmounting to be sure writes are on it)"

func init() {
	airlock.OnUdev(func(e airlock.UEvent) error {
		switch {
		case e.Action == "remove":
			return detach(e, "device removed")
		case e.DevType == "disk" && !wholeDiskFS(e):
			// A partitioned disk is left to its partitions; a disk
			// whose medium went (a card taken out of its reader, a
			// loop device detached) is unmounted.
			return detach(e, "medium removed")
		case e.Action == "add":
			return attach(e)
		case e.Action == "change" && e.DevType == "disk":
			// A superfloppy announces its filesystem with a change:
			// a loop device attached, a card put in its reader.
			if m, ok := mounted[e.DevName]; ok {
				if m.UUID == e.UUID() {
					return nil // the same medium, still mounted
				}
				if err := detach(e, "medium changed"); err != nil {
					return err
				}
			}
			return attach(e)
		}
		return nil
	})
	airlock.OnMount(func(ev airlock.MountEvent) error {
		// Forget it, so that its udev event that may follow does not
		// log it again.
		if m, ok := mounted[ev.Device]; ok && m.Target == ev.Target {
			delete(mounted, ev.Device)
		}
		airlock.Warn(pulledOut, "target", ev.Target, "device", ev.Device, "reason", ev.Reason)
		return nil
	})
}

// wholeDiskFS reports whether a disk event is for a filesystem on the
// disk itself: a filesystem type, and no partition table.
func wholeDiskFS(e airlock.UEvent) bool {
	usage, ok := e.Props["ID_FS_USAGE"]
	return e.FSType() != "" && (!ok || usage == "filesystem") && e.Props["ID_PART_TABLE_TYPE"] == ""
}

func attach(e airlock.UEvent) error {
	if e.UUID() == "" {
		airlock.Warn("not mounted: the filesystem has no UUID", "device", e.DevName)
		return nil
	}
	// Mount by UUID, which is unique, and name the mount point after the
	// label: two sticks labelled MEDIA become MEDIA and MEDIA-2.
	opts := &airlock.MountOptions{Target: strings.ReplaceAll(strings.TrimSpace(e.Label()), "/", "_")}
	m, err := airlock.Mount.ByUUID(e.UUID(), opts)
	switch {
	case errors.Is(err, abi.Denied):
		airlock.Warn("not mounted: "+err.Error(), "device", e.DevName)
		return nil
	case errors.Is(err, abi.Busy):
		airlock.Info("already mounted", "device", e.DevName)
		return nil
	case err != nil:
		return err
	}
	mounted[m.Device] = m
	entries, err := os.ReadDir(m.Path)
	if err != nil {
		return err
	}
	airlock.Info("mounted", "device", m.Device, "path", m.Path, "fstype", m.FSType, "readonly", m.ReadOnly, "entries", len(entries))
	if m.Note != "" {
		airlock.Warn(m.Note, "path", m.Path)
	}
	if name, _ := airlock.Config("write_file"); name != "" && !m.ReadOnly {
		p := m.Path + "/" + name
		if err := os.WriteFile(p, []byte("written by the airlock automount plugin\n"), 0o644); err != nil {
			return err
		}
		airlock.Info("wrote", "path", p)
	}
	return nil
}

// detach unmounts the device's mount, if this instance holds one: the
// device went while mounted. When the host got there first (it saw the
// device go too), the unmount finds nothing and the host's mount event,
// queued behind this event, logs the stick: it is logged once either way.
func detach(e airlock.UEvent, why string) error {
	m, ok := mounted[e.DevName]
	if !ok {
		return nil
	}
	delete(mounted, e.DevName)
	switch err := airlock.Mount.Unmount(m.Target); {
	case errors.Is(err, abi.NotFound):
		return nil
	case err != nil:
		return err
	}
	airlock.Warn(pulledOut, "target", m.Target, "device", m.Device, "reason", why)
	return nil
}

func main() {}

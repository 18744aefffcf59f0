// Command automount mounts external storage by its label while it is
// plugged in: a partition appears, it is mounted at /media/<label> (the
// UUID when it has no label; -2, -3 when two sticks share one; read-only
// when the card refuses writes), its files are listed, and it is unmounted
// when it goes away.
package main

import (
	"errors"
	"os"
	"strings"

	"github.com/airlockhq/airlock/abi"
	airlock "github.com/airlockhq/airlock/sdk/go"
)

// mounted holds this instance's mounts by device node. A removed device
// may already have been detached by the host (it saw the same remove);
// the plugin's unmount then finds nothing, which is fine.
var mounted = map[string]airlock.MountInfo{}

func init() {
	airlock.OnUdev(func(e airlock.UEvent) error {
		switch e.Action {
		case "add":
			return attach(e)
		case "remove":
			return detach(e)
		}
		return nil
	})
	airlock.OnMount(func(ev airlock.MountEvent) error {
		airlock.Warn("pulled out while mounted; the host detached it (unplug only after unmounting to be sure writes are on it)",
			"target", ev.Target, "device", ev.Device, "reason", ev.Reason)
		return nil
	})
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

func detach(e airlock.UEvent) error {
	m, ok := mounted[e.DevName]
	if !ok {
		return nil
	}
	delete(mounted, e.DevName)
	if err := airlock.Mount.Unmount(m.Target); err != nil && !errors.Is(err, abi.NotFound) {
		return err
	}
	airlock.Info("unmounted", "device", m.Device, "path", m.Path)
	return nil
}

func main() {}

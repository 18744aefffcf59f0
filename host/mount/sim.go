package mount

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// simBackend is the simulated device's storage: each simulated partition
// is a directory under dir, seeded from simdata/. "Mounting" renames it
// onto the target (so the plugin's writes stay on the "stick"), and
// unmounting renames it back. The devices match the udev capability's
// built-in USB-stick scenario; the stick is present until that scenario
// removes it (and again when a scenario adds it).
type simBackend struct {
	dir  string
	devs []simDevice
}

type simDevice struct {
	Device
	present bool
}

//go:embed simdata
var simData embed.FS

// simMarker is a file at the top of each simulated partition that names
// it, so that a leftover mount can be given back after a crash.
const simMarker = ".airlock-sim-device"

// SimDevices are the simulated device's partitions: the USB stick of the
// udev scenario, and two of the device's own partitions, which are never
// mounted for plugins.
var SimDevices = []Device{
	{Node: "/dev/sdb1", Name: "sdb1", Disk: "sdb", MajMin: "8:17", Label: "MEDIA", UUID: "1234-ABCD", FSType: "vfat",
		DevPath: "/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/host6/target6:0:0/6:0:0:0/block/sdb/sdb1"},
	{Node: "/dev/mmcblk0p1", Name: "mmcblk0p1", Disk: "mmcblk0", MajMin: "179:1", Label: "resin-boot", UUID: "0A1B-2C3D", FSType: "vfat",
		DevPath: "/devices/platform/emmc/mmc_host/mmc0/mmc0:0001/block/mmcblk0/mmcblk0p1"},
	{Node: "/dev/mmcblk0p6", Name: "mmcblk0p6", Disk: "mmcblk0", MajMin: "179:6", Label: "resin-data", UUID: "6f1e2d3c-0000-4000-8000-000000000006", FSType: "ext4",
		DevPath: "/devices/platform/emmc/mmc_host/mmc0/mmc0:0001/block/mmcblk0/mmcblk0p6"},
}

func newSimBackend(dir string) (backend, error) {
	b := &simBackend{dir: dir}
	for _, d := range SimDevices {
		b.devs = append(b.devs, simDevice{Device: d, present: true})
	}
	return b, os.MkdirAll(dir, 0o755)
}

func (b *simBackend) devices() ([]Device, error) {
	var out []Device
	for _, d := range b.devs {
		if d.present {
			out = append(out, d.Device)
		}
	}
	return out, nil
}

func (b *simBackend) inUse(*Device) string { return "" }
func (b *simBackend) close()               {}

// driver: the simulated device mounts every type "through the kernel".
func (b *simBackend) driver(fstype string) (driver, error) { return driver{fstype: fstype}, nil }
func (b *simBackend) mountedElsewhere(string) bool         { return false }
func (b *simBackend) gone(*held) (bool, string)            { return false, "" }
func (b *simBackend) backing(d *Device) string             { return filepath.Join(b.dir, d.Name) }
func (b *simBackend) find(node string) *simDevice {
	for i := range b.devs {
		if b.devs[i].Node == node {
			return &b.devs[i]
		}
	}
	return nil
}

// seed makes a partition's directory from simdata/ the first time.
func (b *simBackend) seed(d *Device) error {
	dst := b.backing(d)
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	tmp := dst + ".seed"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, simMarker), []byte(d.Name+"\n"), 0o644); err != nil {
		return err
	}
	src := "simdata/" + d.Name
	if _, err := fs.Stat(simData, src); err == nil {
		err := fs.WalkDir(simData, src, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel := strings.TrimPrefix(strings.TrimPrefix(p, src), "/")
			if rel == "" {
				return nil
			}
			out := filepath.Join(tmp, rel)
			if e.IsDir() {
				return os.MkdirAll(out, 0o755)
			}
			data, err := simData.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(out, data, 0o644)
		})
		if err != nil {
			return err
		}
	}
	return os.Rename(tmp, dst)
}

func (b *simBackend) mount(d *Device, _ driver, p plan, root, name string) error {
	target := filepath.Join(root, name)
	if fi, err := os.Lstat(target); err == nil {
		if fi.Mode()&os.ModeSymlink != 0 {
			return errSymlink
		}
		if !fi.IsDir() {
			return errTaken
		}
		if entries, err := os.ReadDir(target); err != nil || len(entries) > 0 {
			return errTaken
		}
	} else if err := os.Mkdir(target, 0o755); err != nil {
		return err
	}
	if err := b.seed(d); err != nil {
		return fmt.Errorf("simulated partition %s: %w", d.Name, err)
	}
	// rename(2) of a directory onto an empty one replaces it (os.Rename
	// refuses to).
	return syscall.Rename(b.backing(d), target)
}

func (b *simBackend) unmount(path string, lazy bool) (bool, error) {
	name, err := os.ReadFile(filepath.Join(path, simMarker))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return lazy, nil // nothing mounted there
		}
		return false, err
	}
	dst := filepath.Join(b.dir, strings.TrimSpace(string(name)))
	if err := os.Rename(path, dst); err != nil {
		return false, err
	}
	return lazy, nil
}

// reconcile gives back partitions left "mounted" by an earlier run.
func (b *simBackend) reconcile(base string) []string {
	var out []string
	plugins, _ := os.ReadDir(base)
	for _, p := range plugins {
		targets, _ := os.ReadDir(filepath.Join(base, p.Name()))
		for _, t := range targets {
			path := filepath.Join(base, p.Name(), t.Name())
			if _, err := os.Stat(filepath.Join(path, simMarker)); err == nil {
				if _, err := b.unmount(path, false); err == nil {
					out = append(out, "gave back simulated partition at "+path)
				}
			}
		}
	}
	removeEmptyMountPoints(base)
	return out
}

// uevent follows the scenario: a removed partition is absent until added.
func (b *simBackend) uevent(ev deviceEvent) {
	if d := b.find(ev.node); d != nil {
		d.present = ev.action != "remove"
	}
}

// removeEmptyMountPoints removes empty directories in the media roots:
// mount points left by a crash.
func removeEmptyMountPoints(base string) {
	plugins, _ := os.ReadDir(base)
	for _, p := range plugins {
		targets, _ := os.ReadDir(filepath.Join(base, p.Name()))
		for _, t := range targets {
			if t.IsDir() {
				os.Remove(filepath.Join(base, p.Name(), t.Name())) // fails unless empty
			}
		}
	}
}

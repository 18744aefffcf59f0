package mount

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/airlockhq/airlock/internal/blockdev"
)

// simBackend is the simulated device's storage: each simulated partition
// is a directory under dir, seeded from simdata/. "Mounting" renames it
// onto the target (so the plugin's writes stay on the "stick"), and
// unmounting renames it back. The devices match the udev capability's
// built-in USB-stick scenario; the stick is present until that scenario
// removes it (and again when a scenario adds it).
type simBackend struct {
	dir string
	// mu guards present: devices runs without the capability's lock.
	mu   sync.Mutex
	devs []simDevice
}

type simDevice struct {
	Device
	present bool
	files   map[string]string // an extra stick's files (Stick.Files)
}

// Stick is an extra USB stick of the simulated device (plugintest and
// airlock test's [[stick]]): absent until plugged in (Mount.SimStick).
type Stick struct {
	Label  string
	FSType string            // default vfat
	UUID   string            // default made from its place in the list
	Files  map[string]string // path on the stick: content
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

func newSimBackend(dir string, sticks []Stick) (backend, error) {
	b := &simBackend{dir: dir}
	for _, d := range SimDevices {
		b.devs = append(b.devs, simDevice{Device: d, present: true})
	}
	for i, st := range sticks {
		disk := fmt.Sprintf("sd%c", 'c'+i)
		d := Device{Node: "/dev/" + disk + "1", Name: disk + "1", Disk: disk, MajMin: fmt.Sprintf("8:%d", 33+16*i),
			Label: st.Label, UUID: st.UUID, FSType: st.FSType, Removable: true,
			DevPath: fmt.Sprintf("/devices/pci0000:00/0000:00:14.0/usb1/1-%d/1-%d:1.0/host%d/target%d:0:0/%d:0:0:0/block/%s/%s1", 3+i, 3+i, 7+i, 7+i, 7+i, disk, disk)}
		if d.FSType == "" {
			d.FSType = "vfat"
		}
		if d.UUID == "" {
			d.UUID = fmt.Sprintf("571C-%04X", i+1)
		}
		b.devs = append(b.devs, simDevice{Device: d, files: st.Files})
	}
	return b, os.MkdirAll(dir, 0o755)
}

// SimStick plugs in (present) or pulls out the extra stick labelled label,
// and returns it, so that the caller sends its udev event. It fails on the
// real device and for a label no Stick has.
func (m *Mount) SimStick(label string, present bool) (Device, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.be.(*simBackend)
	if !ok {
		return Device{}, errors.New("sticks exist only on the simulated device")
	}
	d := b.stick(label)
	if d == nil {
		return Device{}, fmt.Errorf("no stick labelled %q (give it in Options.Sticks, or a [[stick]] table)", label)
	}
	b.mu.Lock()
	d.present = present
	b.mu.Unlock()
	return d.Device, nil
}

// SimStickFile reads a file on the extra stick labelled label, whether it
// is mounted (where the plugin sees it) or not.
func (m *Mount) SimStickFile(label, path string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.be.(*simBackend)
	if !ok {
		return nil, errors.New("sticks exist only on the simulated device")
	}
	d := b.stick(label)
	if d == nil {
		return nil, fmt.Errorf("no stick labelled %q", label)
	}
	dir := b.backing(&d.Device)
	for _, h := range m.held {
		if h.dev.Node == d.Node {
			dir = h.path
		}
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := b.seed(&d.Device); err != nil {
			return nil, err
		}
	}
	return os.ReadFile(filepath.Join(dir, filepath.Clean("/"+path)))
}

func (b *simBackend) stick(label string) *simDevice {
	for i := len(SimDevices); i < len(b.devs); i++ {
		if b.devs[i].Label == label {
			return &b.devs[i]
		}
	}
	return nil
}

func (b *simBackend) devices(context.Context) ([]Device, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
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
	if sd := b.find(d.Node); sd != nil {
		for p, content := range sd.files {
			out := filepath.Join(tmp, filepath.Clean("/"+p))
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(out, []byte(content), 0o644); err != nil {
				return err
			}
		}
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
func (b *simBackend) uevent(c blockdev.Change) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if d := b.find(c.Device.Node); d != nil {
		d.present = c.Action != "remove"
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

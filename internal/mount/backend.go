package mount

import (
	"context"
	"errors"

	"github.com/airlockhq/airlock/internal/blockdev"
)

// backend is where mounts happen: the real kernel, or a directory tree on
// the simulated device. The capability holds its lock around every call
// but devices.
type backend interface {
	// devices lists the present block devices that carry a filesystem,
	// probing (bounded) those that need it; it is called without the
	// capability's lock.
	devices(ctx context.Context) ([]Device, error)
	// inUse says why d may not be mounted for a plugin ("" if it may):
	// it is mounted already, or its disk holds the system's own mounts.
	inUse(d *Device) string
	// driver picks what mounts fstype: the kernel's driver if
	// /proc/filesystems has it, else its FUSE helper. The error says why
	// neither can, and what to install.
	driver(fstype string) (driver, error)
	// mount makes root/name (or reuses it if it is an empty directory)
	// and mounts d there with drv. It returns errTaken if the name is in use.
	mount(d *Device, drv driver, p plan, root, name string) error
	// unmount unmounts path: normally, or lazily if that is busy or if
	// lazy is set (the device is gone). It reports whether it was lazy.
	unmount(path string, lazy bool) (bool, error)
	// bind makes root/name as mount does and attaches there a clone of
	// the mount at src with nosuid,nodev,noexec, read-only if ro (share.go).
	bind(src string, ro bool, root, name string) error
	// mountedElsewhere reports whether path is a mount point that the
	// capability did not make (an operator's, or another run's).
	mountedElsewhere(path string) bool
	// gone reports whether a mounted device went away unannounced.
	gone(h *held) (bool, string)
	// reconcile undoes what an earlier run left under base, and says what.
	reconcile(base string) []string
	// uevent tells the backend of a block device's add or remove.
	uevent(c blockdev.Change)
	// close ends what the backend runs (FUSE helpers) once the
	// capability has unmounted everything (host shutdown).
	close()
}

// errTaken: the target name is a file, a non-empty directory or a mount
// point already; the capability tries the next suffix.
var errTaken = errors.New("target name taken")

// errSymlink: the target name is a symbolic link. Mounts never follow one.
var errSymlink = errors.New("target is a symbolic link")

//go:build !linux

package probe

import "os"

// diskOf: only Linux has sysfs, so no partition entry elsewhere.
func diskOf(*os.File, OpenDisk) (*Disk, func(), error) { return nil, nil, nil }

// DiskOf: only Linux has sysfs, so no partition entry elsewhere.
func DiskOf(uint32, uint32, OpenDisk) (*Disk, func(), error) { return nil, nil, nil }

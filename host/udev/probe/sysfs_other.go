//go:build !linux

package probe

import "os"

// diskOf: only Linux has sysfs, so no partition entry elsewhere.
func diskOf(*os.File, OpenDisk) (*Disk, func(), error) { return nil, nil, nil }

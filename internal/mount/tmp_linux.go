package mount

import (
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// errNoTmpfs marks a tmpfs that cannot be had here (not root, a sandbox
// without CAP_SYS_ADMIN): the caller falls back to a plain directory.
var errNoTmpfs = errors.New("no tmpfs")

// mountTmpfs mounts a tmpfs of size bytes on dir, with nosuid,nodev,noexec
// and mode 0700. dir is the host's own (<state_dir>/tmp/...), not the
// plugin's, so no link can be in its path.
func mountTmpfs(dir string, size uint64) error {
	err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC,
		fmt.Sprintf("size=%d,mode=0700", size))
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%w: the host may not mount (uid %d; run airlock as root, or in a privileged container, for a size-bounded tmpfs)", errNoTmpfs, os.Geteuid())
	}
	return err
}

// unmountAllUnder detaches every mount below dir, deepest first.
func unmountAllUnder(dir string) []string {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return []string{"reading the mount table: " + err.Error()}
	}
	sort.Slice(mounts, func(i, j int) bool { return mounts[i].Mountpoint > mounts[j].Mountpoint })
	var out []string
	for _, mi := range mounts {
		if err := unix.Unmount(mi.Mountpoint, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil {
			out = append(out, fmt.Sprintf("unmount %s: %v", mi.Mountpoint, err))
			continue
		}
		out = append(out, fmt.Sprintf("unmounted %s (%s)", mi.Mountpoint, mi.FSType))
	}
	return out
}

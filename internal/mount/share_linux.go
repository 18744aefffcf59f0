package mount

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// bind puts a view of the mount at src into root/name: a clone of that
// one mount (not its submounts) with nosuid,nodev,noexec and, when ro,
// MS_RDONLY set on the clone before it is attached, so the reader never
// sees it writable and the kernel refuses its writes with EROFS. The
// mount point is opened as the plugin's own mounts are (openMountPoint).
func (b *realBackend) bind(src string, ro bool, root, name string) error {
	sfd, err := unix.Open(src, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("shared mount: %w", err)
	}
	defer unix.Close(sfd)
	tree, err := unix.OpenTree(sfd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("open_tree %s: %w", src, err)
	}
	defer unix.Close(tree)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	if ro {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		return fmt.Errorf("mount_setattr (Linux 5.12 or later): %w", err)
	}
	rootfd, fd, created, err := openMountPoint(root, name)
	if err != nil {
		return err
	}
	defer unix.Close(rootfd)
	defer unix.Close(fd)
	err = unix.MoveMount(tree, "", fd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
	if err != nil && created {
		unix.Unlinkat(rootfd, name, unix.AT_REMOVEDIR)
	}
	return err
}

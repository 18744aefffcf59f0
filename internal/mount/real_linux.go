package mount

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/airlockhq/airlock/internal/blockdev"
	"github.com/airlockhq/airlock/internal/devnode"
)

// realBackend mounts with mount(2) and umount2(2).
type realBackend struct {
	base    string
	sysRoot string // "/sys"
	// nodes names each device by its number, for mount(2): /dev may lack
	// a stick plugged in after start (no udevd).
	nodes *devnode.Nodes
	devs  *blockdev.Table
	// helpers are the FUSE helpers' absolute paths, looked up once at
	// start ("" when one is not installed).
	helpers map[string]string
	// fuseMu guards fuse, the running FUSE helpers by mount point (also
	// changed by the goroutine that reaps each).
	fuseMu sync.Mutex
	fuse   map[string]*fuseProc
}

func newRealBackend(base string, nodes *devnode.Nodes, devs *blockdev.Table) (backend, error) {
	if err := nodes.Clean(); err != nil {
		return nil, fmt.Errorf("device nodes left by an earlier run: %w", err)
	}
	devs.UseNodes(nodes)
	return &realBackend{base: base, sysRoot: "/sys", nodes: nodes, devs: devs, helpers: lookupHelpers(), fuse: map[string]*fuseProc{}}, nil
}

// node returns a path to d's block device and a func that releases it.
func (b *realBackend) node(d *Device) (string, func(), error) {
	major, minor, err := devnode.ParseMajMin(d.MajMin)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", d.Node, err)
	}
	return b.nodes.Path(strings.TrimPrefix(d.Node, "/dev/"), major, minor)
}

func readTrim(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// devices looks the devices up in the block-device table, which probes
// only those it has not seen as they are now.
func (b *realBackend) devices(ctx context.Context) ([]Device, error) { return b.devs.Devices(ctx) }

// diskOf returns the kernel name of the disk that holds device maj:min.
func (b *realBackend) diskOf(major, minor int) string {
	real, err := filepath.EvalSymlinks(filepath.Join(b.sysRoot, "dev", "block", fmt.Sprintf("%d:%d", major, minor)))
	if err != nil {
		return ""
	}
	if _, err := os.Stat(filepath.Join(real, "partition")); err == nil {
		return filepath.Base(filepath.Dir(real))
	}
	return filepath.Base(real)
}

// inUse refuses a device that is mounted already, and any device on a disk
// that holds a mount outside the media roots: the boot disk (in a balena
// container, /etc/hostname and /etc/resolv.conf are bind mounts from the
// data partition, so the boot disk shows even there).
func (b *realBackend) inUse(d *Device) string {
	mounts, err := mountinfo.GetMounts(nil)
	if err != nil {
		return "cannot be checked against the mount table: " + err.Error()
	}
	for _, mi := range mounts {
		if mi.Major == 0 {
			continue // tmpfs, proc, overlay: no block device
		}
		if fmt.Sprintf("%d:%d", mi.Major, mi.Minor) == d.MajMin {
			return "is already mounted at " + mi.Mountpoint
		}
		if under(mi.Mountpoint, b.base) {
			continue
		}
		if disk := b.diskOf(mi.Major, mi.Minor); disk != "" && disk == d.Disk {
			return fmt.Sprintf("is on disk %s, which holds the system's mount %s", d.Disk, mi.Mountpoint)
		}
	}
	return ""
}

func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// kernelHas reports whether /proc/filesystems lists fstype.
func kernelHas(fstype string) bool {
	for _, l := range strings.Split(readTrim("/proc/filesystems"), "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && f[len(f)-1] == fstype {
			return true
		}
	}
	return false
}

// openBeneath opens name in the directory dirfd as an O_PATH directory,
// never following a symlink and never crossing into another mount (a
// target that is a mount point already is taken).
func openBeneath(dirfd int, name string) (int, error) {
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV}
	fd, err := unix.Openat2(dirfd, name, &how)
	if errors.Is(err, unix.ENOSYS) {
		// Before Linux 5.6. name is one component, so O_NOFOLLOW alone
		// refuses a symlink; the mount point check is in mount.
		fd, err = unix.Openat(dirfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	return fd, err
}

// openMountPoint makes root/name (or reuses it if it is an empty
// directory) and opens it without following a symlink or crossing a
// mount: errSymlink for a link, errTaken for a file, a mount point or a
// non-empty directory. created says whether it made the directory.
func openMountPoint(root, name string) (rootfd, fd int, created bool, err error) {
	rootfd, err = unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, -1, false, fmt.Errorf("media root: %w", err)
	}
	fail := func(err error) (int, int, bool, error) {
		unix.Close(rootfd)
		return -1, -1, false, err
	}
	created = true
	if err := unix.Mkdirat(rootfd, name, 0o755); errors.Is(err, unix.EEXIST) {
		created = false
	} else if err != nil {
		return fail(fmt.Errorf("mount point: %w", err))
	}
	fd, err = openBeneath(rootfd, name)
	switch {
	case errors.Is(err, unix.ELOOP):
		return fail(errSymlink)
	case errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.EXDEV):
		return fail(errTaken) // a file, or a mount point
	case err != nil:
		return fail(fmt.Errorf("mount point: %w", err))
	}
	if !created {
		if taken, err := notEmptyOrMounted(rootfd, fd, name); err != nil || taken {
			unix.Close(fd)
			return fail(errTaken)
		}
	}
	return rootfd, fd, created, nil
}

func (b *realBackend) mount(d *Device, drv driver, p plan, root, name string) error {
	rootfd, fd, created, err := openMountPoint(root, name)
	if err != nil {
		return err
	}
	defer unix.Close(rootfd)
	defer unix.Close(fd)
	// The kernel resolves /proc/self/fd/N to the directory we opened, so
	// nothing can swap a symlink in between the check and the mount.
	target := fmt.Sprintf("/proc/self/fd/%d", fd)
	src, release, err := b.node(d)
	if err == nil {
		// Once mounted, the kernel (or the helper) holds the device, not
		// the node.
		switch {
		case drv.helper != nil && !p.ro && readTrim(filepath.Join(b.sysRoot, "dev", "block", d.MajMin, "ro")) == "1":
			// Write-protected: fusefat would mount it read-write and
			// fail every write. The capability retries read-only.
			err = fmt.Errorf("%s is write-protected: %w", d.Node, unix.EROFS)
		case drv.helper != nil:
			err = b.fuseMount(drv, p, src, fd, filepath.Join(root, name))
		default:
			err = unix.Mount(src, target, drv.fstype, p.flags, strings.Join(p.data, ","))
		}
		release()
	}
	if err != nil && created {
		unix.Unlinkat(rootfd, name, unix.AT_REMOVEDIR)
	}
	return err
}

// notEmptyOrMounted reports whether an existing directory is in use: it
// has entries (mounting would hide them) or another filesystem.
func notEmptyOrMounted(rootfd, fd int, name string) (bool, error) {
	var rs, ts unix.Stat_t
	if err := unix.Fstat(rootfd, &rs); err != nil {
		return true, err
	}
	if err := unix.Fstat(fd, &ts); err != nil {
		return true, err
	}
	if rs.Dev != ts.Dev {
		return true, nil
	}
	dfd, err := unix.Openat(rootfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return true, err
	}
	f := os.NewFile(uintptr(dfd), name)
	defer f.Close()
	names, err := f.Readdirnames(1)
	return len(names) > 0, nil
}

func (b *realBackend) unmount(path string, lazy bool) (bool, error) {
	wasLazy, err := b.unmountPath(path, lazy)
	if err == nil {
		b.endFuse(path, lazy, wasLazy)
	}
	return wasLazy, err
}

func (b *realBackend) unmountPath(path string, lazy bool) (bool, error) {
	if !lazy {
		err := unix.Unmount(path, unix.UMOUNT_NOFOLLOW)
		if err == nil {
			return false, nil
		}
		if errors.Is(err, unix.EINVAL) {
			if m, _ := mountinfo.Mounted(path); !m {
				return false, nil // already unmounted from outside
			}
		}
		if !errors.Is(err, unix.EBUSY) {
			return false, err
		}
	}
	// Busy, or the device is gone: detach it now; the kernel finishes
	// when the last open file on it is closed.
	if err := unix.Unmount(path, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil {
		if errors.Is(err, unix.EINVAL) {
			if m, _ := mountinfo.Mounted(path); !m {
				return true, nil
			}
		}
		return false, err
	}
	return true, nil
}

func (b *realBackend) mountedElsewhere(path string) bool {
	m, _ := mountinfo.Mounted(path)
	return m
}

func (b *realBackend) gone(h *held) (bool, string) {
	if _, err := os.Stat(filepath.Join(b.sysRoot, "dev", "block", h.dev.MajMin)); errors.Is(err, os.ErrNotExist) {
		return true, "device removed"
	}
	if h.dev.Loop {
		loop := filepath.Join(b.sysRoot, "class", "block", h.dev.Disk, "loop")
		if _, err := os.Stat(loop); errors.Is(err, os.ErrNotExist) {
			return true, "loop device detached"
		}
		if !h.dev.LoopAutoclear && readTrim(filepath.Join(loop, "autoclear")) == "1" {
			// losetup -d on a device in use only marks it; the detach
			// happens when our mount lets go.
			return true, "loop device detached (losetup -d)"
		}
	}
	return false, ""
}

// reconcile unmounts what an earlier run left under base (a crash of the
// host itself) and removes the empty mount points.
func (b *realBackend) reconcile(base string) []string {
	var out []string
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(base))
	if err != nil {
		return []string{"reading the mount table: " + err.Error()}
	}
	sort.Slice(mounts, func(i, j int) bool { return mounts[i].Mountpoint > mounts[j].Mountpoint })
	for _, mi := range mounts {
		if mi.Mountpoint == base {
			continue
		}
		if err := unix.Unmount(mi.Mountpoint, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil {
			out = append(out, fmt.Sprintf("unmount %s: %v", mi.Mountpoint, err))
			continue
		}
		out = append(out, fmt.Sprintf("unmounted %s (%s on %s)", mi.Mountpoint, mi.FSType, mi.Source))
	}
	removeEmptyMountPoints(base)
	return out
}

func (b *realBackend) uevent(blockdev.Change) {}

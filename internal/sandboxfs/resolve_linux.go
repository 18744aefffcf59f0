package sandboxfs

import (
	"strings"

	"golang.org/x/sys/unix"
)

// resolveFlags make the kernel refuse, rather than follow, anything that could leave the
// root: ".." above it, absolute paths, symlinks in any component and /proc-style magic
// links. Mount points are crossed on purpose (no RESOLVE_NO_XDEV): /media holds USB sticks.
const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// resolver opens paths beneath root. It holds no mutable state, so one resolver serves all
// of a plugin's goroutines.
type resolver struct {
	// root is an O_PATH fd of the sandbox directory. Holding it, instead of the path, means
	// a rename of the directory on the host cannot redirect us elsewhere.
	root int
	// walk selects the component-by-component fallback for kernels without openat2
	// (< 5.6) or seccomp profiles that refuse it.
	walk bool
}

// probeOpenat2 reports whether openat2 works here. Old Docker seccomp profiles answer
// EPERM instead of ENOSYS for syscalls they do not know, so both mean "not available".
func probeOpenat2(root int) bool {
	fd, err := unix.Openat2(root, ".", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: resolveFlags})
	if err != nil {
		return err != unix.ENOSYS && err != unix.EPERM
	}
	unix.Close(fd)
	return true
}

// open opens name beneath the root with flags (open(2) flags) and mode.
//
// A symlink as the last component fails with ELOOP, except with O_PATH|O_NOFOLLOW, which
// returns an fd of the link itself (for Lstat and Readlink). A symlink anywhere before the
// last component always fails with ELOOP, and ".." above the root fails with EPERM, the
// errno wazero's WASI layer uses for paths that escape a preopen.
func (r *resolver) open(name string, flags int, mode uint32) (int, error) {
	name = relative(name)
	flags |= unix.O_CLOEXEC
	fd, err := r.resolve(name, flags, mode)
	if err == unix.ENOTDIR && flags&unix.O_DIRECTORY != 0 && r.isLink(name) {
		// O_DIRECTORY is checked before RESOLVE_NO_SYMLINKS on the last component, so a
		// link there says ENOTDIR. ELOOP tells the plugin what it actually ran into.
		err = unix.ELOOP
	}
	return fd, err
}

// isLink reports whether name, without trailing slashes, is a symlink beneath the root.
func (r *resolver) isLink(name string) bool {
	name = strings.TrimRight(name, "/")
	if name == "" {
		return false
	}
	fd, err := r.resolve(name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	t, err := fileType(fd)
	return err == nil && t == unix.S_IFLNK
}

func (r *resolver) resolve(name string, flags int, mode uint32) (int, error) {
	if r.walk {
		return r.walkOpen(name, flags, mode)
	}
	how := unix.OpenHow{Flags: uint64(flags), Resolve: resolveFlags}
	if flags&unix.O_CREAT != 0 {
		// openat2 rejects a mode without O_CREAT, unlike openat.
		how.Mode = uint64(mode)
	}
	for tries := 0; ; tries++ {
		fd, err := unix.Openat2(r.root, name, &how)
		switch {
		case err == nil:
			return fd, nil
		case (err == unix.EAGAIN || err == unix.EINTR) && tries < 16:
			// EAGAIN: a concurrent rename somewhere on the system made the kernel
			// unsure the walk stayed beneath the root; it asks us to retry.
			continue
		case err == unix.EXDEV:
			return -1, unix.EPERM
		default:
			return -1, err
		}
	}
}

// walkOpen is open without openat2: it walks one component at a time with
// openat(O_PATH|O_NOFOLLOW) relative to the fd of the directory before, so, like openat2,
// it never re-resolves a path and has no check-then-use window. ".." pops back to the fd
// we came through, which is the real parent because no link was followed to get here.
func (r *resolver) walkOpen(name string, flags int, mode uint32) (int, error) {
	wantLink := flags&(unix.O_PATH|unix.O_NOFOLLOW) == unix.O_PATH|unix.O_NOFOLLOW
	if strings.HasSuffix(name, "/") {
		flags |= unix.O_DIRECTORY // a trailing slash demands a directory, as in the kernel
	}
	var comps []string
	for _, c := range strings.Split(name, "/") {
		if c != "" && c != "." {
			comps = append(comps, c)
		}
	}
	last := "."
	if n := len(comps); n > 0 && comps[n-1] != ".." {
		last, comps = comps[n-1], comps[:n-1]
	}

	dirs := []int{r.root} // dirs[0] is borrowed; the rest are ours to close
	defer func() {
		for _, fd := range dirs[1:] {
			unix.Close(fd)
		}
	}()
	for _, c := range comps {
		if c == ".." {
			if len(dirs) == 1 {
				return -1, unix.EPERM
			}
			unix.Close(dirs[len(dirs)-1])
			dirs = dirs[:len(dirs)-1]
			continue
		}
		fd, err := unix.Openat(dirs[len(dirs)-1], c, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, err
		}
		dirs = append(dirs, fd)
		switch t, err := fileType(fd); {
		case err != nil:
			return -1, err
		case t == unix.S_IFLNK:
			return -1, unix.ELOOP
		case t != unix.S_IFDIR:
			return -1, unix.ENOTDIR
		}
	}

	fd, err := unix.Openat(dirs[len(dirs)-1], last, flags|unix.O_NOFOLLOW, mode)
	if err != nil {
		return -1, err
	}
	if flags&unix.O_PATH != 0 && !wantLink {
		// O_PATH|O_NOFOLLOW opened the link itself; the caller asked us to refuse it.
		if t, err := fileType(fd); err != nil || t == unix.S_IFLNK {
			unix.Close(fd)
			if err == nil {
				err = unix.ELOOP
			}
			return -1, err
		}
	}
	return fd, nil
}

// parent opens the directory that holds name and returns it with name's last component,
// so that mutations run as *at(2) calls on a directory we resolved safely and never look
// the last component up through a link. trailing reports a trailing slash, which we strip
// because the kernel would follow a symlink named "link/".
func (r *resolver) parent(name string) (dirfd int, base string, trailing bool, err error) {
	name = relative(name)
	trimmed := strings.TrimRight(name, "/")
	trailing = len(trimmed) != len(name)
	dir, base := ".", trimmed
	if i := strings.LastIndexByte(trimmed, '/'); i >= 0 {
		dir, base = trimmed[:i+1], trimmed[i+1:]
	}
	if base == "" || base == "." || base == ".." {
		return -1, base, trailing, unix.EINVAL
	}
	dirfd, err = r.open(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	return dirfd, base, trailing, err
}

// relative turns wazero's guest paths ("", "/", "a/b") into paths relative to the root;
// RESOLVE_BENEATH refuses absolute ones.
func relative(name string) string {
	name = strings.TrimLeft(name, "/")
	if name == "" {
		return "."
	}
	return name
}

func fileType(fd int) (uint32, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, err
	}
	return st.Mode & unix.S_IFMT, nil
}

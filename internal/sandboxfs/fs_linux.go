package sandboxfs

import (
	"fmt"
	"io/fs"
	"runtime"
	"sync/atomic"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
	"golang.org/x/sys/unix"
)

// New returns a wazero sys.FS rooted at dir that never follows a symlink: a symlink in the
// middle of a path, or last in a path given to an operation that would follow it (OpenFile,
// Stat, Chmod, Utimens), fails with ELOOP; Lstat, Readlink, Rename and Unlink act on the
// link itself. ".." above dir fails with EPERM. Symlink and Link always fail with EPERM.
// So a plugin cannot make a link, and a link it finds (on a USB stick, say) is a dead end
// rather than a door. OpenFile also refuses FIFOs, sockets and device nodes with EACCES.
//
// We refuse all links rather than follow the ones that stay inside, because "stays inside"
// depends on the state of the tree at the moment of each lookup, which the plugin controls;
// the kernel's RESOLVE_NO_SYMLINKS makes "never" a property of one syscall instead. Kernels
// without openat2 (< 5.6) get an openat(O_NOFOLLOW) walk that holds the same line.
//
// dir itself is resolved once, here, by the host (links in it are the host's own choice).
// If it cannot be opened, every operation returns the errno of that failure. The returned
// FS is safe for concurrent use; its Files, like wazero's, are not.
func New(dir string, opts Options) experimentalsys.FS {
	return newFS(dir, opts, false)
}

// newFS lets tests force the openat fallback on kernels that have openat2.
func newFS(dir string, opts Options, forceWalk bool) experimentalsys.FS {
	s := &sandbox{dir: dir, readOnly: opts.ReadOnly, maxOpen: int64(opts.MaxOpen), onLimit: opts.OnLimit}
	if s.maxOpen <= 0 {
		s.maxOpen = DefaultMaxOpen
	}
	if !opts.ReadOnly {
		s.ledger = newLedger(dir, opts)
	}
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		s.rootErr = experimentalsys.UnwrapOSError(err)
		return s
	}
	s.resolver = resolver{root: root, walk: forceWalk || !probeOpenat2(root)}
	// wazero's FS has no Close, so the root fd lives as long as the FS value does.
	runtime.AddCleanup(s, func(fd int) { unix.Close(fd) }, root)
	return s
}

type sandbox struct {
	resolver
	dir       string
	readOnly  bool
	rootErr   experimentalsys.Errno
	ledger    *ledger // nil without a quota
	openFiles atomic.Int64
	maxOpen   int64
	onLimit   func(string)
}

func (s *sandbox) String() string { return fmt.Sprintf("sandboxfs(%s)", s.dir) }

// OpenFile implements experimentalsys.FS. The file is opened by the kernel beneath the root
// and wrapped as is, so what the plugin reads and writes is exactly what was checked.
func (s *sandbox) OpenFile(name string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	if s.rootErr != 0 {
		return nil, s.rootErr
	}
	if s.readOnly && writes(flag) {
		if flag&experimentalsys.O_DIRECTORY != 0 {
			return nil, experimentalsys.EISDIR
		}
		return nil, experimentalsys.EROFS
	}
	if s.openFiles.Add(1) > s.maxOpen {
		s.openFiles.Add(-1)
		if s.onLimit != nil {
			s.onLimit("open files")
		}
		return nil, errQuota
	}
	f, errno := s.openFile(name, flag, perm)
	if errno != 0 {
		s.openFiles.Add(-1)
	}
	return f, errno
}

func (s *sandbox) openFile(name string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	l := s.ledger
	var before sys.Stat_t
	existed := true
	if l != nil {
		l.mu.Lock()
		defer l.mu.Unlock()
		if writes(flag) {
			// The ledger's lock is held, and only this sandbox changes the tree, so what
			// is here now is what open will find.
			var errno experimentalsys.Errno
			before, errno = s.Lstat(name)
			existed = errno != experimentalsys.ENOENT
			if !existed && flag&experimentalsys.O_CREAT != 0 {
				if errno := l.newEntry(0); errno != 0 {
					return nil, errno
				}
			}
		}
	}
	// O_NONBLOCK, so that opening a FIFO found on a USB stick cannot hang the host thread
	// waiting for a writer; it is cleared again below unless the plugin asked for it.
	fd, err := s.open(name, openFlags(flag)|unix.O_NOFOLLOW|unix.O_NONBLOCK, uint32(perm.Perm()))
	if err != nil {
		return nil, experimentalsys.UnwrapOSError(err)
	}
	f := newFile(fd, flag, s.readOnly)
	st, errno := f.Stat()
	if errno == 0 && l != nil {
		switch {
		case !existed:
			l.files++
			l.bytes += charge(st.Mode, st.Size)
		case before.Mode.IsRegular() && before.Ino == st.Ino:
			l.bytes += charge(st.Mode, st.Size) - charge(before.Mode, before.Size) // O_TRUNC
		}
	}
	if errno == 0 && !st.Mode.IsRegular() && !st.Mode.IsDir() {
		// A plugin's directory holds files and directories. FIFOs, sockets and device
		// nodes can only come from outside (WASI cannot make them), so we refuse them;
		// mounting media with nodev keeps a device node from being opened at all.
		errno = experimentalsys.EACCES
	}
	if errno == 0 && flag&experimentalsys.O_NONBLOCK == 0 {
		errno = experimentalsys.UnwrapOSError(unix.SetNonblock(fd, false))
	}
	if errno != 0 {
		f.close()
		return nil, errno
	}
	f.sandbox = s // from here on, Close gives back the open file and the ledger's entry
	if l != nil {
		l.opened(st.Ino)
	}
	return f, 0
}

// Lstat implements experimentalsys.FS. It may name a symlink: stat-ing the link itself
// reads nothing behind it.
func (s *sandbox) Lstat(name string) (sys.Stat_t, experimentalsys.Errno) {
	return s.stat(name, unix.O_PATH|unix.O_NOFOLLOW)
}

// Stat implements experimentalsys.FS. It would follow a final symlink, so on one it fails
// with ELOOP, like open(O_NOFOLLOW).
func (s *sandbox) Stat(name string) (sys.Stat_t, experimentalsys.Errno) {
	return s.stat(name, unix.O_PATH)
}

func (s *sandbox) stat(name string, flags int) (sys.Stat_t, experimentalsys.Errno) {
	if s.rootErr != 0 {
		return sys.Stat_t{}, s.rootErr
	}
	fd, err := s.open(name, flags, 0)
	if err != nil {
		return sys.Stat_t{}, experimentalsys.UnwrapOSError(err)
	}
	defer unix.Close(fd)
	return fstat(fd)
}

// Mkdir implements experimentalsys.FS.
func (s *sandbox) Mkdir(name string, perm fs.FileMode) experimentalsys.Errno {
	if errno := s.writable(); errno != 0 {
		return errno
	}
	dirfd, base, _, err := s.parent(name)
	if err == unix.EINVAL {
		return experimentalsys.EEXIST // parent refuses only the root, "." and "..", which exist
	}
	if err == nil {
		defer unix.Close(dirfd)
		if l := s.ledger; l != nil {
			l.mu.Lock()
			defer l.mu.Unlock()
			if _, exists := lstatAt(dirfd, base); !exists {
				if errno := l.newEntry(block); errno != 0 {
					return errno
				}
			}
		}
		err = unix.Mkdirat(dirfd, base, uint32(perm.Perm()))
		if err == nil && s.ledger != nil {
			s.ledger.files++
			s.ledger.bytes += block
		}
	}
	errno := experimentalsys.UnwrapOSError(err)
	if errno == experimentalsys.ENOTDIR {
		errno = experimentalsys.ENOENT // as wazero's DirFS: a parent that is a file is missing
	}
	return errno
}

// Chmod implements experimentalsys.FS. It changes the file the path names, never a link's
// target: the file is pinned as an O_PATH fd first and changed through that fd.
func (s *sandbox) Chmod(name string, perm fs.FileMode) experimentalsys.Errno {
	if errno := s.writable(); errno != 0 {
		return errno
	}
	fd, err := s.open(name, unix.O_PATH, 0)
	if err != nil {
		return experimentalsys.UnwrapOSError(err)
	}
	defer unix.Close(fd)
	// fchmodat2(AT_EMPTY_PATH) needs Linux 6.6; before that, chmod through the fd's
	// /proc entry reaches the same inode without a path lookup we do not control.
	err = unix.Fchmodat(fd, "", uint32(perm.Perm()), unix.AT_EMPTY_PATH)
	if err == unix.EOPNOTSUPP || err == unix.ENOSYS || err == unix.EINVAL {
		err = unix.Chmod(procFd(fd), uint32(perm.Perm()))
	}
	return experimentalsys.UnwrapOSError(err)
}

// Rename implements experimentalsys.FS. Renaming a symlink moves the link, not its target.
func (s *sandbox) Rename(from, to string) experimentalsys.Errno {
	if errno := s.writable(); errno != 0 {
		return errno
	}
	if from == to {
		return 0
	}
	fromDir, fromBase, fromTrailing, err := s.parent(from)
	if err != nil {
		return experimentalsys.UnwrapOSError(err)
	}
	defer unix.Close(fromDir)
	toDir, toBase, toTrailing, err := s.parent(to)
	if err != nil {
		return experimentalsys.UnwrapOSError(err)
	}
	defer unix.Close(toDir)
	if fromTrailing || toTrailing { // a trailing slash on either side means directories
		if errno := s.isDirAt(fromDir, fromBase); errno != 0 {
			return errno
		}
	}
	return s.removing(toDir, toBase, func() error { return unix.Renameat(fromDir, fromBase, toDir, toBase) })
}

// removing runs op, which may remove base from dirfd (unlink, rmdir, or a rename over
// it), and credits the quota with what was there if op succeeds.
func (s *sandbox) removing(dirfd int, base string, op func() error) experimentalsys.Errno {
	l := s.ledger
	if l == nil {
		return experimentalsys.UnwrapOSError(op())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	st, existed := lstatAt(dirfd, base)
	err := op()
	if err == nil && existed {
		l.gone(&st)
	}
	return experimentalsys.UnwrapOSError(err)
}

// Rmdir implements experimentalsys.FS.
func (s *sandbox) Rmdir(name string) experimentalsys.Errno {
	if errno := s.writable(); errno != 0 {
		return errno
	}
	dirfd, base, _, err := s.parent(name)
	if err != nil {
		return experimentalsys.UnwrapOSError(err)
	}
	defer unix.Close(dirfd)
	return s.removing(dirfd, base, func() error { return unix.Unlinkat(dirfd, base, unix.AT_REMOVEDIR) })
}

// Unlink implements experimentalsys.FS. Unlinking a symlink removes the link itself.
func (s *sandbox) Unlink(name string) experimentalsys.Errno {
	if errno := s.writable(); errno != 0 {
		return errno
	}
	dirfd, base, trailing, err := s.parent(name)
	if err != nil {
		return experimentalsys.UnwrapOSError(err)
	}
	defer unix.Close(dirfd)
	if trailing {
		// unlink("x/") never succeeds: EISDIR for a directory, ENOTDIR for anything else.
		if errno := s.isDirAt(dirfd, base); errno != 0 {
			return errno
		}
		return experimentalsys.EISDIR
	}
	errno := s.removing(dirfd, base, func() error { return unix.Unlinkat(dirfd, base, 0) })
	if errno == experimentalsys.EPERM {
		errno = experimentalsys.EISDIR // as wazero's DirFS: some systems say EPERM for a dir
	}
	return errno
}

// Link implements experimentalsys.FS. A hard link could pin a file the host later moves
// out of the sandbox, or, on a shared mount, name a file from elsewhere, so we make none.
func (s *sandbox) Link(_, _ string) experimentalsys.Errno { return experimentalsys.EPERM }

// Symlink implements experimentalsys.FS. Links are never followed, so making one has no
// use inside the sandbox, and it would plant a trap for host tools that do follow them.
func (s *sandbox) Symlink(_, _ string) experimentalsys.Errno { return experimentalsys.EPERM }

// Readlink implements experimentalsys.FS. Reading a link's text is harmless: the plugin
// learns a string, and cannot use it to open anything.
func (s *sandbox) Readlink(name string) (string, experimentalsys.Errno) {
	if s.rootErr != 0 {
		return "", s.rootErr
	}
	fd, err := s.open(name, unix.O_PATH|unix.O_NOFOLLOW, 0)
	if err != nil {
		return "", experimentalsys.UnwrapOSError(err)
	}
	defer unix.Close(fd)
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(fd, "", buf)
		if err == unix.ENOENT {
			return "", experimentalsys.EINVAL // readlinkat(fd, "") says ENOENT for a non-link
		} else if err != nil {
			return "", experimentalsys.UnwrapOSError(err)
		}
		if n < size {
			return string(buf[:n]), 0
		}
	}
}

// Utimens implements experimentalsys.FS. Like Chmod, it changes the pinned file.
func (s *sandbox) Utimens(name string, atim, mtim int64) experimentalsys.Errno {
	if errno := s.writable(); errno != 0 {
		return errno
	}
	fd, err := s.open(name, unix.O_PATH, 0)
	if err != nil {
		return experimentalsys.UnwrapOSError(err)
	}
	defer unix.Close(fd)
	ts, ok := timespecs(atim, mtim)
	if !ok {
		return 0
	}
	// utimensat(AT_EMPTY_PATH) needs Linux 5.8; /proc is the older way to the same inode.
	err = unix.UtimesNanoAt(fd, "", ts[:], unix.AT_EMPTY_PATH)
	if err == unix.EINVAL || err == unix.ENOENT {
		err = unix.UtimesNanoAt(unix.AT_FDCWD, procFd(fd), ts[:], 0)
	}
	return experimentalsys.UnwrapOSError(err)
}

func (s *sandbox) writable() experimentalsys.Errno {
	if s.rootErr != 0 {
		return s.rootErr
	}
	if s.readOnly {
		return experimentalsys.EROFS
	}
	return 0
}

// isDirAt returns 0 if base in dirfd is a directory and ENOTDIR otherwise. It only picks an
// errno; the operation that follows does not trust it.
func (s *sandbox) isDirAt(dirfd int, base string) experimentalsys.Errno {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return experimentalsys.UnwrapOSError(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return experimentalsys.ENOTDIR
	}
	return 0
}

// openFlags maps wazero's portable flags to Linux open(2) flags.
func openFlags(flag experimentalsys.Oflag) int {
	var f int
	switch flag & (experimentalsys.O_RDONLY | experimentalsys.O_RDWR | experimentalsys.O_WRONLY) {
	case experimentalsys.O_RDWR:
		f = unix.O_RDWR
	case experimentalsys.O_WRONLY:
		f = unix.O_WRONLY
	default:
		f = unix.O_RDONLY
	}
	for _, m := range [...]struct {
		from experimentalsys.Oflag
		to   int
	}{
		{experimentalsys.O_APPEND, unix.O_APPEND},
		{experimentalsys.O_CREAT, unix.O_CREAT},
		{experimentalsys.O_DIRECTORY, unix.O_DIRECTORY},
		{experimentalsys.O_DSYNC, unix.O_DSYNC},
		{experimentalsys.O_EXCL, unix.O_EXCL},
		{experimentalsys.O_NONBLOCK, unix.O_NONBLOCK},
		{experimentalsys.O_RSYNC, unix.O_RSYNC},
		{experimentalsys.O_SYNC, unix.O_SYNC},
		{experimentalsys.O_TRUNC, unix.O_TRUNC},
	} {
		if flag&m.from != 0 {
			f |= m.to
		}
	}
	return f
}

func procFd(fd int) string { return fmt.Sprintf("/proc/self/fd/%d", fd) }

// timespecs converts wazero's times; ok is false when both are UTIME_OMIT (nothing to do).
func timespecs(atim, mtim int64) (ts [2]unix.Timespec, ok bool) {
	if atim == experimentalsys.UTIME_OMIT && mtim == experimentalsys.UTIME_OMIT {
		return ts, false
	}
	for i, t := range [2]int64{atim, mtim} {
		if t == experimentalsys.UTIME_OMIT {
			ts[i] = unix.Timespec{Nsec: unix.UTIME_OMIT}
		} else {
			ts[i] = unix.NsecToTimespec(t)
		}
	}
	return ts, true
}

func fstat(fd int) (sys.Stat_t, experimentalsys.Errno) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return sys.Stat_t{}, experimentalsys.UnwrapOSError(err)
	}
	return sys.Stat_t{
		Dev:   uint64(st.Dev),
		Ino:   st.Ino,
		Mode:  fileMode(st.Mode),
		Nlink: uint64(st.Nlink),
		Size:  st.Size,
		Atim:  st.Atim.Nano(),
		Mtim:  st.Mtim.Nano(),
		Ctim:  st.Ctim.Nano(),
	}, 0
}

// fileMode converts st_mode as os.Stat does.
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	mode |= typeMode(m & unix.S_IFMT)
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

func typeMode(ifmt uint32) fs.FileMode {
	switch ifmt {
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFLNK:
		return fs.ModeSymlink
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	}
	return 0
}

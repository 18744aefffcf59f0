package sandboxfs

import (
	"encoding/binary"
	"io"
	"io/fs"
	"unsafe"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
	"golang.org/x/sys/unix"
)

// file is an experimentalsys.File over an fd that open resolved. wazero has no public way
// to wrap an fd or *os.File (its osFile is internal, and OpenOSFile takes a path it would
// resolve again, following links), so we implement the interface on raw syscalls. None of
// them takes a path, so nothing here can leave the sandbox.
//
// Like wazero's own files, a file is owned by one guest instance and is not safe for
// concurrent use.
type file struct {
	fileSeek[int64]

	fd       int
	flag     experimentalsys.Oflag // only O_APPEND changes after open
	readOnly bool
	closed   bool
	// sandbox is the FS that opened the file: its open-file count and its
	// quota's ledger, if it has one. nil until the open has succeeded.
	sandbox *sandbox

	// stat caches what cannot change while the fd is open.
	statDone bool
	dev      uint64
	ino      sys.Inode
	isDir    bool

	// dirents read from the kernel but not yet returned, and whether the
	// directory is exhausted until the next rewind.
	dirents []experimentalsys.Dirent
	dirEOF  bool
	dirBuf  []byte
}

// file is a PollableFile because wazero's fd_fdstat_set_flags answers EISDIR or ENOSYS
// for files that are not, where its own osFile succeeds.
var _ experimentalsys.PollableFile = (*file)(nil)

func newFile(fd int, flag experimentalsys.Oflag, readOnly bool) *file {
	f := &file{fd: fd, flag: flag, readOnly: readOnly}
	f.fileSeek.f = f
	return f
}

func (f *file) cached() experimentalsys.Errno {
	if f.statDone {
		return 0
	}
	_, errno := f.Stat()
	return errno
}

// Dev implements experimentalsys.File.
func (f *file) Dev() (uint64, experimentalsys.Errno) {
	errno := f.cached()
	return f.dev, errno
}

// Ino implements experimentalsys.File.
func (f *file) Ino() (sys.Inode, experimentalsys.Errno) {
	errno := f.cached()
	return f.ino, errno
}

// IsDir implements experimentalsys.File.
func (f *file) IsDir() (bool, experimentalsys.Errno) {
	errno := f.cached()
	return f.isDir, errno
}

// IsAppend implements experimentalsys.File.
func (f *file) IsAppend() bool { return f.flag&experimentalsys.O_APPEND != 0 }

// SetAppend implements experimentalsys.File. Linux can flip O_APPEND on an open fd, so
// unlike wazero's osFile we need not reopen by path.
func (f *file) SetAppend(enable bool) experimentalsys.Errno {
	if f.closed {
		return experimentalsys.EBADF
	}
	fl, err := unix.FcntlInt(uintptr(f.fd), unix.F_GETFL, 0)
	if err == nil {
		if enable {
			fl |= unix.O_APPEND
		} else {
			fl &^= unix.O_APPEND
		}
		_, err = unix.FcntlInt(uintptr(f.fd), unix.F_SETFL, fl)
	}
	if err != nil {
		return experimentalsys.UnwrapOSError(err)
	}
	if enable {
		f.flag |= experimentalsys.O_APPEND
	} else {
		f.flag &^= experimentalsys.O_APPEND
	}
	return 0
}

// Stat implements experimentalsys.File.
func (f *file) Stat() (sys.Stat_t, experimentalsys.Errno) {
	if f.closed {
		return sys.Stat_t{}, experimentalsys.EBADF
	}
	st, errno := fstat(f.fd)
	if errno == 0 {
		f.statDone, f.dev, f.ino, f.isDir = true, st.Dev, st.Ino, st.Mode.IsDir()
	}
	return st, errno
}

// IsNonblock implements experimentalsys.PollableFile.
func (f *file) IsNonblock() bool { return f.flag&experimentalsys.O_NONBLOCK != 0 }

// SetNonblock implements experimentalsys.PollableFile.
func (f *file) SetNonblock(enable bool) experimentalsys.Errno {
	if f.closed {
		return experimentalsys.EBADF
	}
	if err := unix.SetNonblock(f.fd, enable); err != nil {
		return experimentalsys.UnwrapOSError(err)
	}
	if enable {
		f.flag |= experimentalsys.O_NONBLOCK
	} else {
		f.flag &^= experimentalsys.O_NONBLOCK
	}
	return 0
}

// Poll implements experimentalsys.Pollable as wazero's osFile does: POLLIN only.
func (f *file) Poll(flag experimentalsys.Pflag, timeoutMillis int32) (bool, experimentalsys.Errno) {
	if f.closed {
		return false, experimentalsys.EBADF
	}
	if flag != experimentalsys.POLLIN {
		return false, experimentalsys.ENOTSUP
	}
	n, err := unix.Poll([]unix.PollFd{{Fd: int32(f.fd), Events: unix.POLLIN}}, int(timeoutMillis))
	return n > 0, experimentalsys.UnwrapOSError(err)
}

// Read implements experimentalsys.File.
func (f *file) Read(buf []byte) (int, experimentalsys.Errno) {
	if f.closed {
		return 0, experimentalsys.EBADF
	}
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := retry(func() (int, error) { return unix.Read(f.fd, buf) })
	return n, experimentalsys.UnwrapOSError(err)
}

// Pread implements experimentalsys.File.
func (f *file) Pread(buf []byte, off int64) (int, experimentalsys.Errno) {
	if f.closed {
		return 0, experimentalsys.EBADF
	}
	if off < 0 {
		return 0, experimentalsys.EINVAL
	}
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := retry(func() (int, error) { return unix.Pread(f.fd, buf, off) })
	return n, experimentalsys.UnwrapOSError(err)
}

// fileSeek carries file's Seek. go vet's stdmethods check wants every Seek(int64, int) to
// return error, as io.Seeker does, but wazero's File returns Errno. Declaring the offset as
// a type parameter (always int64) satisfies wazero without switching that check off.
type fileSeek[Offset ~int64] struct{ f *file }

// Seek implements experimentalsys.File.
func (s fileSeek[Offset]) Seek(offset Offset, whence int) (int64, experimentalsys.Errno) {
	return s.f.seek(int64(offset), whence)
}

// seek is Seek. On a directory only a rewind is allowed, because other offsets there are
// opaque kernel cookies, not positions the guest could compute.
func (f *file) seek(offset int64, whence int) (int64, experimentalsys.Errno) {
	if f.closed {
		return 0, experimentalsys.EBADF
	}
	if whence < io.SeekStart || whence > io.SeekEnd {
		return 0, experimentalsys.EINVAL
	}
	isDir, errno := f.IsDir()
	if errno != 0 {
		return 0, errno
	}
	if isDir {
		if offset != 0 || whence != io.SeekStart {
			return 0, experimentalsys.EISDIR
		}
		f.dirents, f.dirEOF = nil, false
	}
	n, err := unix.Seek(f.fd, offset, whence)
	return n, experimentalsys.UnwrapOSError(err)
}

// Readdir implements experimentalsys.File. It returns up to n entries (all when n <= 0),
// fewer only at the end, without "." and "..", which wazero adds itself.
func (f *file) Readdir(n int) ([]experimentalsys.Dirent, experimentalsys.Errno) {
	if f.closed {
		return nil, experimentalsys.EBADF
	}
	if isDir, errno := f.IsDir(); errno != 0 {
		return nil, errno
	} else if !isDir {
		return nil, experimentalsys.EBADF // wazero's convention for readdir on a file
	}
	for (n <= 0 || len(f.dirents) < n) && !f.dirEOF {
		if f.dirBuf == nil {
			f.dirBuf = make([]byte, 8192)
		}
		m, err := retry(func() (int, error) { return unix.Getdents(f.fd, f.dirBuf) })
		if err != nil {
			return nil, experimentalsys.UnwrapOSError(err)
		}
		if m == 0 {
			f.dirEOF = true
			break
		}
		if errno := f.appendDirents(f.dirBuf[:m]); errno != 0 {
			return nil, errno
		}
	}
	take := len(f.dirents)
	if n > 0 && take > n {
		take = n
	}
	out := f.dirents[:take:take]
	f.dirents = f.dirents[take:]
	return out, 0
}

// appendDirents decodes struct linux_dirent64 records.
func (f *file) appendDirents(b []byte) experimentalsys.Errno {
	const nameOff = 19 // d_ino u64, d_off s64, d_reclen u16, d_type u8
	for len(b) >= nameOff {
		reclen := int(binary.NativeEndian.Uint16(b[16:18]))
		if reclen < nameOff || reclen > len(b) {
			return experimentalsys.EIO
		}
		rec := b[:reclen]
		b = b[reclen:]
		name := rec[nameOff:]
		for i, c := range name {
			if c == 0 {
				name = name[:i]
				break
			}
		}
		if string(name) == "." || string(name) == ".." {
			continue
		}
		d := experimentalsys.Dirent{Ino: binary.NativeEndian.Uint64(rec[0:8]), Name: string(name)}
		switch rec[18] {
		case unix.DT_REG:
		case unix.DT_DIR:
			d.Type = fs.ModeDir
		case unix.DT_LNK:
			d.Type = fs.ModeSymlink
		case unix.DT_FIFO:
			d.Type = fs.ModeNamedPipe
		case unix.DT_SOCK:
			d.Type = fs.ModeSocket
		case unix.DT_CHR:
			d.Type = fs.ModeDevice | fs.ModeCharDevice
		case unix.DT_BLK:
			d.Type = fs.ModeDevice
		default: // DT_UNKNOWN: some filesystems (e.g. old XFS) leave the type to stat
			var st unix.Stat_t
			if err := unix.Fstatat(f.fd, d.Name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
				d.Type = typeMode(st.Mode & unix.S_IFMT)
			}
		}
		f.dirents = append(f.dirents, d)
	}
	return 0
}

// Write implements experimentalsys.File.
func (f *file) Write(buf []byte) (int, experimentalsys.Errno) {
	if errno := f.writable(); errno != 0 {
		return 0, errno
	}
	if len(buf) == 0 {
		return 0, 0
	}
	var off int64
	if !f.IsAppend() && f.ledger() != nil {
		var err error
		if off, err = unix.Seek(f.fd, 0, io.SeekCurrent); err != nil {
			return 0, experimentalsys.UnwrapOSError(err)
		}
	}
	return f.account(off, len(buf), f.IsAppend(), func(n int) (int, error) {
		return retry(func() (int, error) { return unix.Write(f.fd, buf[:n]) })
	})
}

// Pwrite implements experimentalsys.File.
func (f *file) Pwrite(buf []byte, off int64) (int, experimentalsys.Errno) {
	if errno := f.writable(); errno != 0 {
		return 0, errno
	}
	if off < 0 {
		return 0, experimentalsys.EINVAL
	}
	if len(buf) == 0 {
		return 0, 0
	}
	// Linux's pwrite on an O_APPEND file appends, whatever off says.
	return f.account(off, len(buf), f.IsAppend(), func(n int) (int, error) {
		return retry(func() (int, error) { return unix.Pwrite(f.fd, buf[:n], off) })
	})
}

// Truncate implements experimentalsys.File.
func (f *file) Truncate(size int64) experimentalsys.Errno {
	if errno := f.writable(); errno != 0 {
		return errno
	}
	if size < 0 {
		return experimentalsys.EINVAL
	}
	_, errno := f.account(size, 0, false, func(int) (int, error) {
		err := unix.Ftruncate(f.fd, size)
		if err == unix.EINVAL {
			err = unix.EBADF // size is valid, so the fd is not open for writing
		}
		return 0, err
	})
	return errno
}

// Sync implements experimentalsys.File.
func (f *file) Sync() experimentalsys.Errno {
	if f.closed {
		return experimentalsys.EBADF
	}
	return experimentalsys.UnwrapOSError(unix.Fsync(f.fd))
}

// Datasync implements experimentalsys.File.
func (f *file) Datasync() experimentalsys.Errno {
	if f.closed {
		return experimentalsys.EBADF
	}
	return experimentalsys.UnwrapOSError(unix.Fdatasync(f.fd))
}

// Utimens implements experimentalsys.File.
func (f *file) Utimens(atim, mtim int64) experimentalsys.Errno {
	if f.closed || f.readOnly {
		return experimentalsys.EBADF // wazero's ReadFS answers EBADF here too
	}
	ts, ok := timespecs(atim, mtim)
	if !ok {
		return 0
	}
	// utimensat(fd, NULL, ...) is futimens: it acts on the fd, with no path at all.
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(f.fd), 0, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
	if e != 0 {
		return experimentalsys.UnwrapOSError(e)
	}
	return 0
}

// Close implements experimentalsys.File. A second Close is a no-op, so that a closed fd
// number, which the kernel may hand to another file, is never touched again.
func (f *file) Close() experimentalsys.Errno {
	if f.closed {
		return 0
	}
	if s := f.sandbox; s != nil {
		if l := s.ledger; l != nil {
			l.mu.Lock()
			l.closed(f.fd, uint64(f.ino))
			l.mu.Unlock()
		}
		s.openFiles.Add(-1)
	}
	return f.close()
}

func (f *file) close() experimentalsys.Errno {
	f.closed = true
	return experimentalsys.UnwrapOSError(unix.Close(f.fd))
}

// ledger is the quota's ledger, or nil: none, or a directory (whose size the guest does
// not write).
func (f *file) ledger() *ledger {
	if f.sandbox == nil || f.sandbox.ledger == nil {
		return nil
	}
	if isDir, _ := f.IsDir(); isDir {
		return nil
	}
	return f.sandbox.ledger
}

// account runs write, which writes at most n bytes at off (or at the end, if appending),
// within the quota: the write is cut to what fits, and the ledger charged with the size
// the file has after it. Without a quota it writes all n.
func (f *file) account(off int64, n int, appending bool, write func(n int) (int, error)) (int, experimentalsys.Errno) {
	l := f.ledger()
	if l == nil {
		m, err := write(n)
		return m, f.writeErr(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	size, errno := fileSize(f.fd)
	if errno != 0 {
		return 0, errno
	}
	if appending {
		off = size
	}
	n, errno = l.limitWrite(size, off, n)
	if errno != 0 {
		return 0, errno
	}
	m, err := write(n)
	l.grow(f.fd, size)
	return m, f.writeErr(err)
}

// writable gives the errno for writing through a read-only sandbox, as wazero's ReadFS
// does: EISDIR for a directory, EBADF for a file.
func (f *file) writable() experimentalsys.Errno {
	if f.closed {
		return experimentalsys.EBADF
	}
	if f.readOnly {
		if isDir, _ := f.IsDir(); isDir {
			return experimentalsys.EISDIR
		}
		return experimentalsys.EBADF
	}
	return 0
}

// writeErr reports EISDIR for writes to a directory, which the kernel calls EBADF because
// directories are only ever open for reading.
func (f *file) writeErr(err error) experimentalsys.Errno {
	errno := experimentalsys.UnwrapOSError(err)
	if errno == experimentalsys.EBADF {
		if isDir, _ := f.IsDir(); isDir {
			return experimentalsys.EISDIR
		}
	}
	return errno
}

// retry repeats a syscall interrupted by a signal. Go's handlers use SA_RESTART, but
// FUSE and network filesystems can still answer EINTR, which the guest should not see.
func retry(call func() (int, error)) (int, error) {
	for {
		n, err := call()
		if err == unix.EINTR {
			continue
		}
		if n < 0 {
			n = 0
		}
		return n, err
	}
}

package sandboxfs

import (
	"io/fs"
	"path/filepath"
	"sync"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"golang.org/x/sys/unix"
)

// block is the unit a quota charges in: a file's apparent size rounded up
// to it, and one for each directory.
const block = 4096

func blocks(size int64) int64 {
	if size <= 0 {
		return 0
	}
	return (size + block - 1) / block * block
}

// charge is what an existing entry costs. A file is charged its apparent
// size, not its allocated blocks: a sparse file could later be filled
// without a size change the host would see, so its holes count.
func charge(mode fs.FileMode, size int64) int64 {
	switch {
	case mode.IsDir():
		return block
	case mode.IsRegular():
		return blocks(size)
	}
	return 0
}

func chargeStat(st *unix.Stat_t) int64 { return charge(fileMode(st.Mode), st.Size) }

// errQuota is what the guest reads when a quota refuses an operation. The
// kernel's ENOSPC would be the right word, but wazero's errno set has none
// (a real full disk reaches the guest as EIO as well); the host's log and
// audit say which limit it was.
const errQuota = experimentalsys.EIO

// ledger is a sandbox's account of its bytes, entries and open files. Its
// lock is held across the check, the syscall and the update, so that two
// calls cannot both take the last block; a plugin's calls into one sandbox
// are serialized by it, which is the price of an exact account.
type ledger struct {
	mu              sync.Mutex
	bytes, maxBytes int64
	files, maxFiles int64
	open            map[uint64]int  // open fds by inode
	orphans         map[uint64]bool // unlinked while open: charged until the last close
	onLimit         func(what string)
}

// newLedger counts what dir holds now: existing content counts against the
// quota from the start. It returns nil if opts set no quota.
func newLedger(dir string, opts Options) *ledger {
	if opts.Quota <= 0 && opts.MaxFiles <= 0 {
		return nil
	}
	l := &ledger{maxBytes: opts.Quota, maxFiles: opts.MaxFiles, open: map[uint64]int{}, orphans: map[uint64]bool{}, onLimit: opts.OnLimit}
	if l.maxBytes <= 0 {
		l.maxBytes = 1<<63 - 1
	}
	if l.maxFiles <= 0 {
		l.maxFiles = 1<<63 - 1
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return nil
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) == nil {
			l.files++
			l.bytes += chargeStat(&st)
		}
		return nil
	})
	return l
}

// Usage reports what a sandbox made with a quota holds, as the quota
// counts it; ok is false for a sandbox without one.
func Usage(f experimentalsys.FS) (bytes, files int64, ok bool) {
	s, isSandbox := f.(*sandbox)
	if !isSandbox || s.ledger == nil {
		return 0, 0, false
	}
	s.ledger.mu.Lock()
	defer s.ledger.mu.Unlock()
	return s.ledger.bytes, s.ledger.files, true
}

func (l *ledger) refuse(what string) experimentalsys.Errno {
	if l.onLimit != nil {
		l.onLimit(what)
	}
	return errQuota
}

// room returns how many more bytes may be charged.
func (l *ledger) room() int64 { return l.maxBytes - l.bytes }

// newEntry checks that one more entry costing cost fits.
func (l *ledger) newEntry(cost int64) experimentalsys.Errno {
	if l.files >= l.maxFiles {
		return l.refuse("files")
	}
	if cost > l.room() {
		return l.refuse("bytes")
	}
	return 0
}

// gone credits an entry that left the tree; a file still open is credited
// at its last close instead, since its blocks stay in use until then.
func (l *ledger) gone(st *unix.Stat_t) {
	l.files--
	if st.Mode&unix.S_IFMT == unix.S_IFREG && l.open[st.Ino] > 0 {
		l.orphans[st.Ino] = true
		return
	}
	l.bytes -= chargeStat(st)
}

// opened and closed track a file's open fds.
func (l *ledger) opened(ino uint64) { l.open[ino]++ }

func (l *ledger) closed(fd int, ino uint64) {
	l.open[ino]--
	if l.open[ino] > 0 {
		return
	}
	delete(l.open, ino)
	if l.orphans[ino] {
		delete(l.orphans, ino)
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil {
			l.bytes -= chargeStat(&st)
		}
	}
}

// grow charges a change of fd's size from old to the size it has now.
func (l *ledger) grow(fd int, old int64) {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) == nil {
		l.bytes += blocks(st.Size) - blocks(old)
	}
}

// limitWrite returns how many of n bytes written at off into a file of
// size may be written within the quota; 0 with an errno when none.
func (l *ledger) limitWrite(size, off int64, n int) (int, experimentalsys.Errno) {
	end := off + int64(n)
	if end <= size || blocks(end)-blocks(size) <= l.room() {
		return n, 0
	}
	// The furthest end the quota allows, a whole block past the charged
	// ones; a write is cut there, as the kernel cuts one at a full disk.
	maxEnd := (blocks(size) + l.room()) / block * block
	if maxEnd <= off {
		return 0, l.refuse("bytes")
	}
	return int(maxEnd - off), 0
}

// fileSize is fd's apparent size.
func fileSize(fd int) (int64, experimentalsys.Errno) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, experimentalsys.UnwrapOSError(err)
	}
	return st.Size, 0
}

// lstatAt stats base in dirfd without following a link; ok is false if it
// does not exist (or cannot be stat-ed, in which case the operation that
// follows fails on its own).
func lstatAt(dirfd int, base string) (st unix.Stat_t, ok bool) {
	return st, unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
}

// DefaultMaxOpen bounds a sandbox's open files when Options.MaxOpen is 0.
// Each is a host fd, and the host's are shared by every plugin: a plugin
// that opened files without end would leave the host none.
const DefaultMaxOpen = 256

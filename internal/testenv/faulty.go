package testenv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// FaultyFile serves the file backing at a path of its own through a
// minimal FUSE server in this process: reads are passed through, except
// that a read overlapping one of the byte ranges bad ([start, end))
// fails with EIO, as a disk with bad blocks does. Attach the path with
// losetup for a failing block device. Needs root and /dev/fuse; unmounted
// when the test ends.
func FaultyFile(t testing.TB, backing string, bad [][2]int64) string {
	t.Helper()
	return serveFile(t, backing, bad, nil)
}

// HangingFile is FaultyFile whose reads all hang, as a dying stick's do,
// until release is called (at the latest when the test ends). Attach it
// with losetup without -P (a partition scan would hang losetup itself).
func HangingFile(t testing.TB, backing string) (path string, release func()) {
	t.Helper()
	hang := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(hang) }) }
	path = serveFile(t, backing, nil, hang)
	t.Cleanup(release) // before the FUSE server stops
	return path, release
}

func serveFile(t testing.TB, backing string, bad [][2]int64, hang chan struct{}) string {
	t.Helper()
	NeedRoot(t, "serve a FUSE file with bad blocks")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		Missing(t, "/dev/fuse (load the fuse module: modprobe fuse)")
	}
	src, err := os.Open(backing)
	if err != nil {
		t.Fatal(err)
	}
	st, err := src.Stat()
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open /dev/fuse: %v", err)
	}
	dir := t.TempDir()
	opts := fmt.Sprintf("fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other", fd)
	if err := unix.Mount("airlock-faulty", dir, "fuse", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		unix.Close(fd)
		t.Fatalf("mount fuse on %s: %v", dir, err)
	}
	fs := &faultyFS{fd: fd, src: src, size: st.Size(), bad: bad, hang: hang}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); fs.serve() }()
	t.Cleanup(func() {
		unix.Unmount(dir, unix.MNT_DETACH)
		fs.pending.Wait() // hung reads, answered once released
		unix.Close(fd)    // ends a serve blocked in read
		wg.Wait()
		src.Close()
	})
	return filepath.Join(dir, "disk")
}

type faultyFS struct {
	fd   int
	src  *os.File
	size int64
	bad  [][2]int64
	hang chan struct{} // non-nil: a read is answered once it is closed
	// pending counts the hung reads not yet answered.
	pending sync.WaitGroup
}

// FUSE opcodes and sizes (linux/fuse.h, protocol 7.31).
const (
	fuseLookup     = 1
	fuseForget     = 2
	fuseGetattr    = 3
	fuseOpen       = 14
	fuseRead       = 15
	fuseRelease    = 18
	fuseFlush      = 25
	fuseInit       = 26
	fuseOpendir    = 27
	fuseReleasedir = 29
	fuseInterrupt  = 36
	fuseDestroy    = 38
	fuseBatchForg  = 42
	fuseInHeader   = 40
	fuseAttrSize   = 88
	fuseFileIno    = 2
	fuseMaxRead    = 128 << 10
)

func (fs *faultyFS) serve() {
	buf := make([]byte, fuseMaxRead+64<<10)
	for {
		n, err := unix.Read(fs.fd, buf)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EAGAIN) {
			continue
		}
		if err != nil || n < fuseInHeader {
			return // unmounted (ENODEV) or closed
		}
		req := buf[:n]
		op := binary.LittleEndian.Uint32(req[4:])
		unique := binary.LittleEndian.Uint64(req[8:])
		node := binary.LittleEndian.Uint64(req[16:])
		body := req[fuseInHeader:]
		switch op {
		case fuseForget, fuseBatchForg, fuseInterrupt:
			continue // no reply
		case fuseInit:
			out := make([]byte, 64)
			binary.LittleEndian.PutUint32(out[0:], 7)
			binary.LittleEndian.PutUint32(out[4:], 31)
			binary.LittleEndian.PutUint32(out[8:], fuseMaxRead)  // max_readahead
			binary.LittleEndian.PutUint16(out[16:], 16)          // max_background
			binary.LittleEndian.PutUint16(out[18:], 12)          // congestion_threshold
			binary.LittleEndian.PutUint32(out[20:], fuseMaxRead) // max_write
			binary.LittleEndian.PutUint32(out[24:], 1)           // time_gran
			binary.LittleEndian.PutUint16(out[28:], fuseMaxRead/4096)
			fs.reply(unique, 0, out)
		case fuseLookup:
			if node != 1 || string(body[:max(len(body)-1, 0)]) != "disk" {
				fs.reply(unique, unix.ENOENT, nil)
				continue
			}
			out := make([]byte, 40+fuseAttrSize)
			binary.LittleEndian.PutUint64(out[0:], fuseFileIno)
			fs.attr(out[40:], fuseFileIno)
			fs.reply(unique, 0, out)
		case fuseGetattr:
			out := make([]byte, 16+fuseAttrSize)
			fs.attr(out[16:], node)
			fs.reply(unique, 0, out)
		case fuseOpen, fuseOpendir:
			fs.reply(unique, 0, make([]byte, 16))
		case fuseRead:
			off := int64(binary.LittleEndian.Uint64(body[8:]))
			size := int64(binary.LittleEndian.Uint32(body[16:]))
			if fs.hang != nil {
				// Answered later, out of order, as FUSE allows: the
				// server goes on serving everything else.
				fs.pending.Add(1)
				go func() { defer fs.pending.Done(); <-fs.hang; fs.read(unique, off, size) }()
				continue
			}
			fs.read(unique, off, size)
		case fuseRelease, fuseReleasedir, fuseFlush, fuseDestroy:
			fs.reply(unique, 0, nil)
		default:
			fs.reply(unique, unix.ENOSYS, nil)
		}
	}
}

// read answers a read of size bytes at off.
func (fs *faultyFS) read(unique uint64, off, size int64) {
	if fs.isBad(off, off+size) {
		fs.reply(unique, unix.EIO, nil)
		return
	}
	out := make([]byte, size)
	k, err := fs.src.ReadAt(out, off)
	if err != nil && k == 0 && off < fs.size {
		fs.reply(unique, unix.EIO, nil)
		return
	}
	fs.reply(unique, 0, out[:k])
}

func (fs *faultyFS) isBad(lo, hi int64) bool {
	for _, b := range fs.bad {
		if lo < b[1] && b[0] < hi {
			return true
		}
	}
	return false
}

// attr fills a fuse_attr: the root directory or the one file.
func (fs *faultyFS) attr(b []byte, ino uint64) {
	binary.LittleEndian.PutUint64(b[0:], ino)
	mode, nlink := uint32(syscall.S_IFDIR|0o755), uint32(2)
	if ino == fuseFileIno {
		binary.LittleEndian.PutUint64(b[8:], uint64(fs.size))
		binary.LittleEndian.PutUint64(b[16:], uint64(fs.size+511)/512)
		mode, nlink = syscall.S_IFREG|0o644, 1
	}
	binary.LittleEndian.PutUint32(b[60:], mode)
	binary.LittleEndian.PutUint32(b[64:], nlink)
	binary.LittleEndian.PutUint32(b[80:], 4096) // blksize
}

func (fs *faultyFS) reply(unique uint64, errno unix.Errno, body []byte) {
	out := make([]byte, 16+len(body))
	binary.LittleEndian.PutUint32(out[0:], uint32(len(out)))
	binary.LittleEndian.PutUint32(out[4:], uint32(-int32(errno)))
	binary.LittleEndian.PutUint64(out[8:], unique)
	copy(out[16:], body)
	unix.Write(fs.fd, out)
}

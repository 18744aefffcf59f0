package blockdev

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/airlockhq/airlock/host/udev/probe"
)

// Timeout bounds how long one probe waits for a superblock. A dying USB
// stick can block a read for minutes; the device is then reported with
// ProbeErr rather than holding up every other device.
const Timeout = 2 * time.Second

// ErrTimeout: the device did not answer within Timeout. Its read may still
// be running; a later one waits for that read instead of starting another.
var ErrTimeout = errors.New("probe timed out (the device did not answer its read)")

// fdReader reads a device with pread, so that no *os.File (and no poller
// registration of a block device) is involved.
type fdReader int

func (f fdReader) ReadAt(b []byte, off int64) (int, error) {
	n, err := unix.Pread(int(f), b, off)
	if n < 0 {
		n = 0
	}
	return n, err
}

// ProbeNode reads the superblock of a block device node (or an image
// file) with host/udev/probe. It opens the node read-only and non-blocking,
// so a tape or a device with no medium does not wait; a read that hangs
// anyway is abandoned after timeout (its goroutine ends when the read
// does). No filesystem signature gives a zero Result and no error. A
// partition also gets its entry in its disk's table (Result.Part), from
// the disk that open gives (nil: /dev/<DEVNAME>); a disk that cannot be
// read leaves it out.
func ProbeNode(node string, timeout time.Duration, open probe.OpenDisk) (probe.Result, error) {
	done := make(chan result, 1)
	go func() { done <- probeNode(node, open) }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-done:
		return r.res, r.err
	case <-t.C:
		return probe.Result{}, ErrTimeout
	}
}

type result struct {
	res probe.Result
	err error
}

func probeNode(node string, open probe.OpenDisk) result {
	fd, err := unix.Open(node, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return result{err: err}
	}
	defer unix.Close(fd)
	size, err := unix.Seek(fd, 0, 2)
	if err != nil {
		return result{err: fmt.Errorf("size: %w", err)}
	}
	var o probe.Options
	var st unix.Stat_t
	if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK {
		if disk, release, err := probe.DiskOf(unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)), open); err == nil && disk != nil {
			defer release()
			o.Disk = disk
		}
	}
	res, err := probe.ProbeWith(fdReader(fd), size, o)
	if errors.Is(err, probe.ErrUnknown) {
		return result{}
	}
	return result{res, err}
}

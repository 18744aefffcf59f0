package udev

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/airlockhq/airlock/host/udev/probe"
)

// probeTimeout bounds how long one event waits for its superblock. A dying
// USB stick can block a read for minutes; the event then goes out without
// ID_FS_* rather than holding up every other device's events.
const probeTimeout = 2 * time.Second

var errProbeTimeout = errors.New("probe timed out")

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

// probeNode reads the filesystem facts of a block device node as udev's
// ID_FS_* properties. It opens the node read-only and non-blocking, so a
// tape or a device with no medium does not wait; a read that hangs anyway
// is abandoned after timeout (its goroutine ends when the read does).
// A device with no or two filesystem signatures gives no properties. A
// partition also gets its entry in its disk's table (ID_PART_ENTRY_*),
// from the disk that open gives (nil: /dev/<DEVNAME>); a disk that cannot
// be read leaves them out.
func probeNode(node string, timeout time.Duration, open probe.OpenDisk) (map[string]string, error) {
	type result struct {
		props map[string]string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		fd, err := unix.Open(node, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			done <- result{nil, err}
			return
		}
		defer unix.Close(fd)
		size, err := unix.Seek(fd, 0, 2)
		if err != nil {
			done <- result{nil, fmt.Errorf("size: %w", err)}
			return
		}
		var o probe.Options
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK {
			if disk, release, err := probe.DiskOf(unix.Major(st.Rdev), unix.Minor(st.Rdev), open); err == nil && disk != nil {
				defer release()
				o.Disk = disk
			}
		}
		res, err := probe.ProbeWith(fdReader(fd), size, o)
		switch {
		case errors.Is(err, probe.ErrUnknown):
			done <- result{}
		case err != nil:
			done <- result{nil, err}
		default:
			done <- result{res.Properties(), nil}
		}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-done:
		return r.props, r.err
	case <-t.C:
		return nil, errProbeTimeout
	}
}

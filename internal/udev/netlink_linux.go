package udev

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/pilebones/go-udev/netlink"
)

// errOverflow means the socket's queue overflowed (ENOBUFS): events were
// lost, so the caller reopens and rescans /sys to learn what changed.
var errOverflow = errors.New("netlink receive queue overflowed; events were lost")

// netlinkSource reads uevents from a NETLINK_KOBJECT_UEVENT socket. go-udev
// sets the socket up (close-on-exec, SO_PASSCRED for sender checks, a
// 2 MiB receive queue, a 200 ms receive timeout) and binds it; we read it
// ourselves so that we can tell ENOBUFS (resync) from other errors, stop
// on our context without racing a Close against a blocked read, and parse
// messages that go-udev's parser refuses (see ParseUEvent).
type netlinkSource struct {
	mode   netlink.Mode
	log    *slog.Logger
	conn   *netlink.UEventConn
	rcvbuf int // the receive queue asked for, in bytes
	count  *lossCount

	// Owned by the goroutine that runs (and reopens) the source.
	lastSeq uint64 // the SEQNUM of the last event read, 0 before the first
	gap     bool   // the socket overflowed since lastSeq: the next SEQNUM tells how many were lost
	// lostFrom to lostUpTo were counted lost when the socket was reopened;
	// one that arrives after all (sent as the new socket bound) is
	// taken back.
	lostFrom, lostUpTo uint64
}

// seqnumFile holds the SEQNUM of the kernel's last uevent.
const seqnumFile = "/sys/kernel/uevent_seqnum"

func (s *netlinkSource) String() string {
	if s.mode == netlink.UdevEvent {
		return "udev (netlink group 2)"
	}
	return "kernel (netlink group 1)"
}

func (s *netlinkSource) open() error {
	// go-udev asks for ReceiveBufferSize with SO_RCVBUFFORCE (root:
	// above net.core.rmem_max), else SO_RCVBUF (capped by it).
	s.conn = &netlink.UEventConn{ReceiveBufferSize: s.rcvbuf}
	if err := s.conn.Connect(s.mode); err != nil {
		s.conn = nil
		return fmt.Errorf("open netlink uevent socket: %w", err)
	}
	if s.gap && s.lastSeq != 0 {
		// Everything numbered after the last event read and before this
		// socket was bound was lost: what overflowed, what the old
		// socket still held, and what came while it was closed.
		if b, err := os.ReadFile(seqnumFile); err == nil {
			if now, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && now >= s.lastSeq {
				s.lose(s.lastSeq+1, now)
				s.lastSeq, s.gap = now, false
			}
		}
	}
	// The kernel reports twice what it grants (it counts its overhead).
	if got, err := syscall.GetsockoptInt(s.conn.Fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF); err == nil {
		s.count.rcvbuf.Store(uint64(got / 2))
		if got/2 < s.rcvbuf {
			s.log.Warn("netlink receive queue smaller than [udev] receive_buffer asks (SO_RCVBUFFORCE needs root or CAP_NET_ADMIN; otherwise net.core.rmem_max caps it); a burst may overflow it (counted)",
				"asked", s.rcvbuf, "granted", got/2)
		}
	}
	return nil
}

func (s *netlinkSource) close() {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

// run reads until ctx ends (nil) or the socket fails. Only this goroutine
// touches the socket while it runs.
func (s *netlinkSource) run(ctx context.Context, emit func(UEvent)) error {
	fd := s.conn.Fd
	buf := make([]byte, maxMessage)
	oob := make([]byte, 2*syscall.CmsgSpace(syscall.SizeofUcred))
	for ctx.Err() == nil {
		n, oobn, flags, from, err := syscall.Recvmsg(fd, buf, oob, 0)
		switch {
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
			continue // the receive timeout: look at ctx again
		case errors.Is(err, syscall.ENOBUFS):
			// Counted here; how many were lost, the next SEQNUM says.
			s.count.overflows.Add(1)
			s.gap = true
			return errOverflow
		case err != nil:
			return fmt.Errorf("read netlink uevent socket: %w", err)
		case flags&(syscall.MSG_TRUNC|syscall.MSG_CTRUNC) != 0:
			s.log.Warn("uevent message truncated; dropped", "bytes", n)
			continue
		}
		if err := trusted(from, oob[:oobn], s.mode); err != nil {
			s.log.Warn("uevent from an untrusted sender; dropped", "error", err.Error())
			continue
		}
		ev, err := ParseUEvent(buf[:n])
		if err != nil {
			s.log.Warn("uevent dropped", "error", err.Error())
			continue
		}
		s.count.received.Add(1)
		s.sequence(ev.SeqNum)
		emit(ev)
	}
	return nil
}

// sequence notes an event's SEQNUM. The kernel numbers every uevent it
// sends, one after the other, so after an overflow the jump from the last
// number read to the kernel's number when the socket is reopened (or, if
// that cannot be read, to the next event's) is how many events were
// lost, exactly (each
// netlink listener is sent every uevent of its network namespace; only
// uevents of network devices in another namespace are numbered and not
// sent here, and those would count too). Gaps without an overflow (udevd's
// group, which skips events its rules drop) are not losses of ours.
func (s *netlinkSource) sequence(seqnum string) {
	seq, err := strconv.ParseUint(seqnum, 10, 64)
	if err != nil || seq == 0 {
		return
	}
	if s.lostFrom <= seq && seq <= s.lostUpTo {
		s.count.lost.Add(^uint64(0)) // not lost after all
	}
	if s.gap && s.lastSeq != 0 && seq > s.lastSeq+1 {
		s.lose(s.lastSeq+1, seq-1)
	}
	if seq > s.lastSeq {
		s.lastSeq = seq
	}
	s.gap = false
}

// lose counts the uevents numbered from to upTo as lost.
func (s *netlinkSource) lose(from, upTo uint64) {
	if upTo < from {
		return
	}
	s.count.lost.Add(upTo - from + 1)
	s.lostFrom, s.lostUpTo = from, upTo
	s.log.Warn("uevents lost to the netlink receive queue's overflow (counted; /sys is rescanned)", "lost", upTo-from+1, "from_seqnum", from, "to_seqnum", upTo)
}

// trusted applies libudev's (and go-udev's) sender checks: a uevent must be
// multicast, kernel-group messages must come from the kernel (port 0), and
// the sender must not be an unprivileged process. Otherwise any local
// process could make plugins act on a device that does not exist.
func trusted(from syscall.Sockaddr, oob []byte, mode netlink.Mode) error {
	sa, ok := from.(*syscall.SockaddrNetlink)
	if !ok {
		return errors.New("not a netlink sender")
	}
	if sa.Groups == 0 {
		return fmt.Errorf("unicast from port %d", sa.Pid)
	}
	if mode == netlink.KernelEvent && sa.Pid != 0 {
		return fmt.Errorf("kernel group message from port %d", sa.Pid)
	}
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return err
	}
	for i := range msgs {
		if msgs[i].Header.Level != syscall.SOL_SOCKET || msgs[i].Header.Type != syscall.SCM_CREDENTIALS {
			continue
		}
		cred, err := syscall.ParseUnixCredentials(&msgs[i])
		if err != nil {
			return err
		}
		// In a user namespace the kernel's uid 0 may read as the overflow
		// uid, so only a positively unprivileged process is refused.
		if cred.Pid != 0 && cred.Uid != 0 {
			return fmt.Errorf("sent by pid %d as uid %d", cred.Pid, cred.Uid)
		}
		return nil
	}
	return errors.New("no sender credentials")
}

// udevdHere reports whether a udevd runs in our network namespace, the only
// case where its netlink group-2 events reach us: balena's base images
// start udevd with `unshare --net`, so its events never leave it.
func udevdHere() bool {
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return false
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		switch strings.TrimSpace(string(b)) {
		case "systemd-udevd", "udevd":
			if ns, err := os.Readlink(filepath.Join(filepath.Dir(p), "ns/net")); err == nil && ns == self {
				return true
			}
		}
	}
	return false
}

func newNetlinkSource(udev bool, log *slog.Logger, rcvbuf int, count *lossCount) source {
	m := netlink.KernelEvent
	if udev {
		m = netlink.UdevEvent
	}
	return &netlinkSource{mode: m, log: log, rcvbuf: rcvbuf, count: count}
}

// quietProbeError: no medium in a card reader, or a device already gone.
func quietProbeError(err error) bool {
	return errors.Is(err, syscall.ENOMEDIUM) || errors.Is(err, syscall.ENXIO) || errors.Is(err, syscall.ENODEV)
}

package udev

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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
	mode netlink.Mode
	log  *slog.Logger
	conn *netlink.UEventConn
}

func (s *netlinkSource) String() string {
	if s.mode == netlink.UdevEvent {
		return "udev (netlink group 2)"
	}
	return "kernel (netlink group 1)"
}

func (s *netlinkSource) open() error {
	s.conn = &netlink.UEventConn{}
	if err := s.conn.Connect(s.mode); err != nil {
		s.conn = nil
		return fmt.Errorf("open netlink uevent socket: %w", err)
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
		emit(ev)
	}
	return nil
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

func newNetlinkSource(udev bool, log *slog.Logger) source {
	m := netlink.KernelEvent
	if udev {
		m = netlink.UdevEvent
	}
	return &netlinkSource{mode: m, log: log}
}

// quietProbeError: no medium in a card reader, or a device already gone.
func quietProbeError(err error) bool {
	return errors.Is(err, syscall.ENOMEDIUM) || errors.Is(err, syscall.ENXIO) || errors.Is(err, syscall.ENODEV)
}

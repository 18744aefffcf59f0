package blockdev

import (
	"errors"
	"time"

	"github.com/airlockhq/airlock/internal/udev/probe"
)

// Timeout bounds how long one probe waits for a superblock. A dying USB
// stick can block a read for minutes; the device is then reported with
// ProbeErr rather than holding up every other device.
const Timeout = 2 * time.Second

// ErrTimeout: the device did not answer within Timeout. Its read may still
// be running; a later one waits for that read instead of starting another.
var ErrTimeout = errors.New("probe timed out (the device did not answer its read)")

// ProbeNode reads the superblock of a block device node (or an image file)
// with probe.ProbeFileWith, and gives up after timeout (the read's
// goroutine ends when the read does). No filesystem signature gives a zero
// Result and no error. open reaches a partition's disk (nil: /dev/<DEVNAME>).
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
	res, err := probe.ProbeFileWith(node, open, nil)
	if errors.Is(err, probe.ErrUnknown) {
		return result{}
	}
	return result{res, err}
}

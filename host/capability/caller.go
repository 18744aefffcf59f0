package capability

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/gate"
)

// MaxResult bounds one result or event payload, so that a backend reply
// cannot make the host copy without limit into a guest.
const MaxResult = 1 << 20

// Caller is the host's side of one plugin, as its host functions see it.
// It lives as long as the plugin is loaded, across its instantiations
// (plugin.Instance is one of those), and is owned by the plugin's
// goroutine: host functions run there, one at a time, so its fields need
// no lock.
type Caller struct {
	Plugin string
	Grants map[string]any // decoded grants by capability name
	Config map[string]string
	Log    *slog.Logger
	Gate   *gate.Gate

	// pending is the result that did not fit the guest's buffer, or the
	// current event's payload, until result_read takes it.
	pending    []byte
	hasPending bool

	args Args // the running host function's inputs; see HostFunc
}

// Check asks the gate about op on capability, with the capability's own
// decision, and returns nil or a *gate.Denial.
func (c *Caller) Check(ctx context.Context, capability, op string, d gate.Decision) error {
	return c.Gate.Check(ctx, c.Plugin, capability, op, d)
}

// Read returns the guest bytes at [ptr, ptr+n), or false if they are not all
// inside memory. The slice aliases guest memory: use it before the guest
// runs again.
func Read(m api.Module, ptr, n uint32) ([]byte, bool) {
	return m.Memory().Read(ptr, n)
}

// reply ends a host function that returns data, following the ABI's result
// convention: the length goes to *outLenPtr; the bytes go to out if they fit,
// otherwise they wait for result_read. e is the errno to return; for a
// non-zero e, data is the error message. A bad out pointer gives abi.Fault.
func (c *Caller) reply(m api.Module, outPtr, outCap, outLenPtr uint32, data []byte, e abi.Errno) abi.Errno {
	if len(data) > MaxResult {
		data, e = []byte("result exceeds 1 MiB"), abi.TooLarge
	}
	mem := m.Memory()
	if !mem.WriteUint32Le(outLenPtr, uint32(len(data))) {
		return abi.Fault
	}
	c.pending, c.hasPending = nil, false
	if uint32(len(data)) <= outCap {
		if !mem.Write(outPtr, data) {
			return abi.Fault
		}
		return e
	}
	c.pending, c.hasPending = append([]byte(nil), data...), true
	return e
}

// outOK reports whether a result's ranges are inside guest memory: the
// 4 bytes at outLenPtr and the outCap bytes at outPtr. HostFunc checks it
// before its handler runs, so that a call the guest cannot receive
// the answer of returns abi.Fault without side effects (ABI §2), instead of
// rebooting or mounting and then failing to say so.
func outOK(mem api.Memory, outPtr, outCap, outLenPtr uint32) bool {
	size := uint64(mem.Size())
	return uint64(outLenPtr)+4 <= size && uint64(outPtr)+uint64(outCap) <= size
}

// replyErr is reply for an error: it picks the errno from err (see ErrnoOf)
// and passes err's message to the guest, or the result an error gives with
// an ErrorResult method (D-Bus's error records, ABI §3.3.3).
func (c *Caller) replyErr(m api.Module, outPtr, outCap, outLenPtr uint32, err error) abi.Errno {
	data := []byte(err.Error())
	var r interface{ ErrorResult() []byte }
	if errors.As(err, &r) {
		data = r.ErrorResult()
	}
	return c.reply(m, outPtr, outCap, outLenPtr, data, ErrnoOf(err))
}

// SetPending makes data the pending result, as for an event payload.
func (c *Caller) SetPending(data []byte) {
	c.pending, c.hasPending = data, true
}

// TakePending copies the pending result into guest memory at out and drops
// it. It implements result_read.
func (c *Caller) TakePending(m api.Module, outPtr, outCap, outLenPtr uint32) abi.Errno {
	if !c.hasPending {
		if !m.Memory().WriteUint32Le(outLenPtr, 0) {
			return abi.Fault
		}
		return abi.NoResult
	}
	n := uint32(len(c.pending))
	if !m.Memory().WriteUint32Le(outLenPtr, n) {
		return abi.Fault
	}
	if n > outCap {
		return abi.TooLarge // keep it; the guest may retry with a larger buffer
	}
	if !m.Memory().Write(outPtr, c.pending) {
		return abi.Fault
	}
	c.pending, c.hasPending = nil, false
	return abi.OK
}

// Reset forgets the pending result, for a fresh instantiation.
func (c *Caller) Reset() { c.pending, c.hasPending = nil, false }

// ErrnoOf maps an error to the ABI's error space: an error that carries its
// own Errno (a *gate.Denial, a capability's typed error) keeps it; deadline
// and cancellation become abi.Timeout; anything else is abi.Failed.
func ErrnoOf(err error) abi.Errno {
	var e interface{ Errno() abi.Errno }
	switch {
	case err == nil:
		return abi.OK
	case errors.As(err, &e):
		return e.Errno()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return abi.Timeout
	}
	var en abi.Errno
	if errors.As(err, &en) {
		return en
	}
	return abi.Failed
}

// Remaining returns the time left before ctx's deadline, or a day if it has
// none.
func Remaining(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return time.Until(d)
	}
	return 24 * time.Hour
}

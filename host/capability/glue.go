package capability

import (
	"context"
	"fmt"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/manifest"
)

// Input is one range a host function reads from the guest, passed as the
// two parameters NAME_ptr and NAME_len.
type Input struct {
	// Name is the parameters' stem: "req" names req_ptr and req_len.
	Name string
	// Max is the longest input the host takes; 0 means any length inside
	// memory.
	Max uint32
	// TooLong is the error the guest gets for a length over Max: its errno
	// and message (see ErrnoOf). Nil means abi.TooLarge and "NAME of N
	// bytes exceeds MAX".
	TooLong func(n uint32) error
	// Record decodes the input as a record (ABI §2) for Args.Record.
	Record bool
	// Malformed is the error the guest gets for a Record input that is
	// not one. Nil means abi.Invalid and "NAME is not a record: ...".
	Malformed func(err error) error
}

// maxInputs is the most input ranges a host function reads (supervisor's
// call reads an op and a request).
const maxInputs = 2

// Args are a call's inputs in the order of its Inputs, after the glue
// checked that they are inside memory and within their bounds. They are
// valid until the handler returns: the glue reuses them for the caller's
// next call (a pointer into the Caller costs neither a copy nor an
// allocation per call).
type Args struct {
	bytes  [maxInputs][]byte
	recs   [maxInputs]abi.Record
	outCap uint32
}

// Bytes returns input i. It aliases guest memory: copy what outlives the
// call (string(b) does).
func (a *Args) Bytes(i int) []byte { return a.bytes[i] }

// OutCap is the guest's result buffer's size: a result no longer than it
// is delivered at once, without result_read (http's body_read reads a
// chunk of that size).
func (a *Args) OutCap() uint32 { return a.outCap }

// Record returns input i decoded, for an Input with Record set. Its values
// alias guest memory, as Bytes does.
func (a *Args) Record(i int) abi.Record { return a.recs[i] }

// Handler answers one call of a host function, once the glue has checked
// every range: its record is the result (with abi.OK), or its error is the
// message and errno (ErrnoOf).
type Handler func(ctx context.Context, c *Caller, a *Args) (abi.Record, error)

// BytesHandler is a Handler whose result is bytes, not a record
// (config_get's value).
type BytesHandler func(ctx context.Context, c *Caller, a *Args) ([]byte, error)

// HostFunc is the one way a host function reads a request and replies.
// Its parameters are each input's (NAME_ptr, NAME_len), then the result
// convention's (out_ptr, out_cap, out_len_ptr); it returns an errno. A
// call runs these steps, and h runs only after all the checks:
//
//  1. every input range and the result's ranges (the 4 bytes at
//     out_len_ptr, the out_cap bytes at out_ptr) must be inside memory, or
//     the call returns abi.Fault with no message and no effect (ABI §2);
//  2. each input in turn: one longer than its Max gets TooLong's error,
//     and a Record input that does not decode gets Malformed's;
//  3. h runs, and its record or error is the reply, by the result
//     convention (ABI §2): a result that does not fit out_cap waits for
//     result_read.
func HostFunc(name string, h Handler, inputs ...Input) Func {
	return hostFunc(name, inputs, func(ctx context.Context, c *Caller, a *Args) ([]byte, error) {
		rec, err := h(ctx, c, a)
		if err != nil {
			return nil, err
		}
		return abi.AppendRecord(nil, rec), nil
	})
}

// HostFuncBytes is HostFunc for a handler whose result is bytes.
func HostFuncBytes(name string, h BytesHandler, inputs ...Input) Func {
	return hostFunc(name, inputs, h)
}

func hostFunc(name string, inputs []Input, h BytesHandler) Func {
	if len(inputs) > maxInputs {
		panic(fmt.Sprintf("capability: host function %s reads %d ranges, more than %d", name, len(inputs), maxInputs))
	}
	inputs = append([]Input(nil), inputs...)
	f := Func{Name: name, Results: []api.ValueType{api.ValueTypeI32}}
	for _, in := range inputs {
		f.ParamNames = append(f.ParamNames, in.Name+"_ptr", in.Name+"_len")
	}
	f.ParamNames = append(f.ParamNames, "out_ptr", "out_cap", "out_len_ptr")
	for range f.ParamNames {
		f.Params = append(f.Params, api.ValueTypeI32)
	}
	f.Call = (&hostFn{inputs, h}).call
	return f
}

// hostFn is one HostFunc: its inputs and its handler.
type hostFn struct {
	inputs []Input
	h      BytesHandler
}

// call is one call of a HostFunc; see there for its steps. The inputs go
// in the Caller's Args, which hold nothing between calls.
func (f *hostFn) call(ctx context.Context, c *Caller, m api.Module, stack []uint64) {
	stack[0] = uint64(f.serve(ctx, c, m, stack))
	c.args = Args{}
}

func (f *hostFn) serve(ctx context.Context, c *Caller, m api.Module, stack []uint64) abi.Errno {
	mem := m.Memory()
	o := 2 * len(f.inputs)
	out, outCap, outLen := uint32(stack[o]), uint32(stack[o+1]), uint32(stack[o+2])
	a := &c.args
	a.outCap = outCap
	for i := range f.inputs {
		b, ok := mem.Read(uint32(stack[2*i]), uint32(stack[2*i+1]))
		if !ok {
			return abi.Fault
		}
		a.bytes[i] = b
	}
	if !outOK(mem, out, outCap, outLen) {
		return abi.Fault
	}
	// From here on every answer reaches the guest.
	for i := range f.inputs {
		in := &f.inputs[i]
		if n := uint32(len(a.bytes[i])); in.Max > 0 && n > in.Max {
			return c.replyErr(m, out, outCap, outLen, in.tooLong(n))
		}
		if !in.Record {
			continue
		}
		rec, err := abi.DecodeRecord(a.bytes[i])
		if err != nil {
			return c.replyErr(m, out, outCap, outLen, in.malformed(err))
		}
		a.recs[i] = rec
	}
	data, err := f.h(ctx, c, a)
	if err != nil {
		return c.replyErr(m, out, outCap, outLen, err)
	}
	return c.reply(m, out, outCap, outLen, data, abi.OK)
}

func (in *Input) tooLong(n uint32) error {
	if in.TooLong != nil {
		return in.TooLong(n)
	}
	return Errorf(abi.TooLarge, "%s of %d bytes exceeds %d", in.Name, n, in.Max)
}

func (in *Input) malformed(err error) error {
	if in.Malformed != nil {
		return in.Malformed(err)
	}
	return Errorf(abi.Invalid, "%s is not a record: %v", in.Name, err)
}

// Errorf returns an error that carries its errno (see ErrnoOf): the guest
// gets e and the formatted message.
func Errorf(e abi.Errno, format string, args ...any) error {
	return &errnoError{e, fmt.Sprintf(format, args...)}
}

type errnoError struct {
	errno abi.Errno
	msg   string
}

func (e *errnoError) Error() string    { return e.msg }
func (e *errnoError) Errno() abi.Errno { return e.errno }

// CallContext returns a context for a backend call made from a host
// function: it ends at ctx's deadline (the handler's) or after limit,
// whichever is first (limit <= 0: the deadline alone). The handler's
// context has a deadline but no Done channel, by design (see
// plugin.handlerCtx), so a context derived from it the usual way would
// never fire; this one does. Call cancel when the call returns.
func CallContext(ctx context.Context, limit time.Duration) (context.Context, context.CancelFunc) {
	now := time.Now()
	d, ok := ctx.Deadline()
	if !ok {
		d = now.Add(Remaining(ctx))
	}
	if limit > 0 && now.Add(limit).Before(d) {
		d = now.Add(limit)
	}
	return context.WithDeadline(context.WithoutCancel(ctx), d)
}

// GrantKey names a capability's grant and its Go type once, so that its
// host functions read the grant typed:
//
//	var grant = capability.GrantKey[*Grant]("dbus")
//	g := grant.Of(caller) // nil if the plugin has no [dbus]
type GrantKey[G any] string

// Of returns c's plugin's grant, or the zero G if it has none.
func (k GrantKey[G]) Of(c *Caller) G { return k.from(c.Grants) }

// In returns m's grant, or the zero G if it has none.
func (k GrantKey[G]) In(m *manifest.Manifest) G { return k.from(m.Grants) }

// Name is the capability's name, the key of its grant.
func (k GrantKey[G]) Name() string { return string(k) }

func (k GrantKey[G]) from(grants map[string]any) G {
	g, _ := grants[string(k)].(G)
	return g
}

package capability_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/manifest"
)

// onePage is a module with one page (64 KiB) of memory and nothing else.
var onePage = []byte("\x00asm\x01\x00\x00\x00\x05\x03\x01\x00\x01")

const pageSize = 1 << 16

func guest(t testing.TB) api.Module {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	t.Cleanup(func() { r.Close(ctx) })
	m, err := r.Instantiate(ctx, onePage)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Guest addresses used below: a request at req, the result at out, its
// length at outLen.
const (
	req    = 0x100
	out    = 0x8000
	outLen = 0x7000
	far    = 0x7fff_0000 // outside the one page
)

// recordFunc is a host function of two inputs, op (at most 8 bytes) and a
// record req, that counts its handler's calls.
func recordFunc(calls *int) capability.Func {
	return capability.HostFunc("call", func(_ context.Context, c *capability.Caller, a *capability.Args) (abi.Record, error) {
		*calls++
		v, _ := a.Record(1).Get("say")
		return abi.Record{{Key: "op", Value: a.Bytes(0)}, {Key: "heard", Value: []byte(v)}}, nil
	}, capability.Input{Name: "op", Max: 8}, capability.Input{Name: "req", Max: 64, Record: true})
}

// TestHostFuncChecksBeforeHandler: no handler runs for a call whose input
// is outside memory, over its bound or not a record, or whose answer could
// not be delivered (ABI §2). A glue that checked after calling the handler
// would count calls here.
func TestHostFuncChecksBeforeHandler(t *testing.T) {
	m := guest(t)
	mem := m.Memory()
	request := abi.AppendRecord(nil, abi.Record{{Key: "say", Value: []byte("hi")}})
	mem.Write(req, request)
	mem.Write(req+0x200, []byte("ping"))
	opPtr, opLen := uint64(req+0x200), uint64(4)
	reqPtr, reqLen := uint64(req), uint64(len(request))
	for _, tc := range []struct {
		name  string
		stack []uint64
		errno abi.Errno
		msg   string // the message written at out, for errors other than fault
	}{
		{"op outside memory", []uint64{far, opLen, reqPtr, reqLen, out, 64, outLen}, abi.Fault, ""},
		{"request wraps around", []uint64{opPtr, opLen, 0xffff_fff0, 0x20, out, 64, outLen}, abi.Fault, ""},
		{"request longer than memory", []uint64{opPtr, opLen, reqPtr, 0xffff_ffff, out, 64, outLen}, abi.Fault, ""},
		{"out_len outside memory", []uint64{opPtr, opLen, reqPtr, reqLen, out, 64, far}, abi.Fault, ""},
		{"out_len straddles the end", []uint64{opPtr, opLen, reqPtr, reqLen, out, 64, pageSize - 2}, abi.Fault, ""},
		{"out buffer past the end", []uint64{opPtr, opLen, reqPtr, reqLen, out, pageSize, outLen}, abi.Fault, ""},
		{"out outside memory, out_cap 0", []uint64{opPtr, opLen, reqPtr, reqLen, far, 0, outLen}, abi.Fault, ""},
		{"op over its bound", []uint64{req, 9, reqPtr, reqLen, out, 64, outLen}, abi.TooLarge, "op of 9 bytes exceeds 8"},
		{"request over its bound", []uint64{opPtr, opLen, reqPtr, 65, out, 64, outLen}, abi.TooLarge, "req of 65 bytes exceeds 64"},
		{"request not a record", []uint64{opPtr, opLen, reqPtr, 3, out, 64, outLen}, abi.Invalid, "req is not a record: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			f := recordFunc(&calls)
			mem.WriteUint32Le(outLen, 0xdead)
			c := &capability.Caller{Plugin: "p"}
			stack := append([]uint64(nil), tc.stack...)
			f.Call(context.Background(), c, m, stack)
			if calls != 0 {
				t.Errorf("the handler ran %d times", calls)
			}
			if got := abi.Errno(stack[0]); got != tc.errno {
				t.Fatalf("errno %s, want %s", got, tc.errno)
			}
			n, _ := mem.ReadUint32Le(outLen)
			if tc.errno == abi.Fault {
				if n != 0xdead {
					t.Errorf("a fault wrote the result length (%d)", n)
				}
				return
			}
			msg, _ := mem.Read(out, n)
			if len(msg) < len(tc.msg) || string(msg[:len(tc.msg)]) != tc.msg {
				t.Errorf("message %q, want it to start with %q", msg, tc.msg)
			}
		})
	}

	t.Run("a good call reaches the handler once and replies", func(t *testing.T) {
		calls := 0
		f := recordFunc(&calls)
		stack := []uint64{opPtr, opLen, reqPtr, reqLen, out, 64, outLen}
		f.Call(context.Background(), &capability.Caller{}, m, stack)
		n, _ := mem.ReadUint32Le(outLen)
		b, _ := mem.Read(out, n)
		rec, err := abi.DecodeRecord(b)
		if calls != 1 || abi.Errno(stack[0]) != abi.OK || err != nil {
			t.Fatalf("calls %d, errno %s, reply %q (%v)", calls, abi.Errno(stack[0]), b, err)
		}
		if op, _ := rec.Get("op"); op != "ping" {
			t.Errorf("reply %v", rec)
		}
		if v, _ := rec.Get("heard"); v != "hi" {
			t.Errorf("reply %v", rec)
		}
	})
}

// TestHostFuncErrors: a handler's error is the reply, with its errno.
func TestHostFuncErrors(t *testing.T) {
	m := guest(t)
	f := capability.HostFunc("list", func(context.Context, *capability.Caller, *capability.Args) (abi.Record, error) {
		return nil, capability.Errorf(abi.Busy, "try %s", "later")
	})
	stack := []uint64{out, 64, outLen}
	f.Call(context.Background(), &capability.Caller{}, m, stack)
	n, _ := m.Memory().ReadUint32Le(outLen)
	msg, _ := m.Memory().Read(out, n)
	if abi.Errno(stack[0]) != abi.Busy || string(msg) != "try later" {
		t.Errorf("errno %s, message %q", abi.Errno(stack[0]), msg)
	}
}

func TestHostFuncSignature(t *testing.T) {
	for _, tc := range []struct {
		f    capability.Func
		want string
	}{
		{recordFunc(new(int)), "call(op_ptr, op_len, req_ptr, req_len, out_ptr, out_cap, out_len_ptr)"},
		{capability.HostFunc("list", nil), "list(out_ptr, out_cap, out_len_ptr)"},
	} {
		if got := tc.f.Signature(); got != tc.want {
			t.Errorf("signature %s, want %s", got, tc.want)
		}
		if len(tc.f.Params) != len(tc.f.ParamNames) || len(tc.f.Results) != 1 {
			t.Errorf("%s: %d params, %d names, %d results", tc.want, len(tc.f.Params), len(tc.f.ParamNames), len(tc.f.Results))
		}
	}
}

// bytesFunc is a config_get-like function of one input, and a call of it.
func bytesFunc(t testing.TB) (capability.Func, api.Module, []uint64) {
	m := guest(t)
	m.Memory().Write(req, []byte("key"))
	value := []byte("value")
	f := capability.HostFuncBytes("config_get", func(_ context.Context, _ *capability.Caller, a *capability.Args) ([]byte, error) {
		return value, nil
	}, capability.Input{Name: "key", Max: 64})
	return f, m, []uint64{req, 3, out, 64, outLen}
}

// TestHostFuncAllocs: the glue itself allocates nothing per call.
func TestHostFuncAllocs(t *testing.T) {
	f, m, call := bytesFunc(t)
	c, ctx, stack := &capability.Caller{}, context.Background(), make([]uint64, len(call))
	allocs := testing.AllocsPerRun(100, func() {
		copy(stack, call)
		f.Call(ctx, c, m, stack)
	})
	if allocs != 0 || abi.Errno(stack[0]) != abi.OK {
		t.Errorf("%v allocations per call (errno %s)", allocs, abi.Errno(stack[0]))
	}
}

// BenchmarkHostFunc is the glue's own cost per call, without wazero.
func BenchmarkHostFunc(b *testing.B) {
	f, m, call := bytesFunc(b)
	c, ctx, stack := &capability.Caller{}, context.Background(), make([]uint64, len(call))
	b.ReportAllocs()
	for b.Loop() {
		copy(stack, call)
		f.Call(ctx, c, m, stack)
	}
}

// handlerCtx is a context like the plugin's handler context: a deadline,
// but no Done channel.
type handlerCtx struct {
	context.Context
	deadline time.Time
}

func (h handlerCtx) Deadline() (time.Time, bool) { return h.deadline, true }
func (handlerCtx) Done() <-chan struct{}         { return nil }

func TestCallContext(t *testing.T) {
	t.Run("ends at the handler's deadline", func(t *testing.T) {
		ctx := handlerCtx{context.Background(), time.Now().Add(-time.Second)}
		cctx, cancel := capability.CallContext(ctx, 0)
		defer cancel()
		select {
		case <-cctx.Done():
		case <-time.After(time.Minute): // only a hang fails
			t.Fatal("the call context never ended")
		}
		if !errors.Is(cctx.Err(), context.DeadlineExceeded) {
			t.Errorf("err %v", cctx.Err())
		}
	})
	t.Run("never after it", func(t *testing.T) {
		hd := time.Now().Add(time.Hour)
		cctx, cancel := capability.CallContext(handlerCtx{context.Background(), hd}, 2*time.Hour)
		defer cancel()
		if d, ok := cctx.Deadline(); !ok || d.After(hd) {
			t.Errorf("deadline %v, after the handler's %v", d, hd)
		}
	})
	t.Run("a shorter limit wins", func(t *testing.T) {
		hd := time.Now().Add(time.Hour)
		cctx, cancel := capability.CallContext(handlerCtx{context.Background(), hd}, time.Minute)
		defer cancel()
		if d, ok := cctx.Deadline(); !ok || !d.Before(hd.Add(-30*time.Minute)) {
			t.Errorf("deadline %v, want the limit's, well before %v", d, hd)
		}
	})
}

type testGrant struct{ n int }

func TestGrantKey(t *testing.T) {
	key := capability.GrantKey[*testGrant]("test")
	g := &testGrant{1}
	c := &capability.Caller{Grants: map[string]any{"test": g, "other": &testGrant{2}}}
	if key.Of(c) != g || key.Name() != "test" {
		t.Errorf("Of = %v", key.Of(c))
	}
	if key.In(&manifest.Manifest{Grants: c.Grants}) != g {
		t.Error("In did not find the grant")
	}
	if key.Of(&capability.Caller{}) != nil {
		t.Error("a plugin without the grant has one")
	}
	wrong := capability.GrantKey[*testGrant]("other2")
	if wrong.Of(&capability.Caller{Grants: map[string]any{"other2": "a string"}}) != nil {
		t.Error("a grant of another type came back")
	}
}

package wasmbin

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/airlockhq/airlock/internal/isolate"
)

// A tiny assembler, enough for the modules below.

func section(id byte, body []byte) []byte {
	return append(AppendU32([]byte{id}, uint32(len(body))), body...)
}

func vec(items ...[]byte) []byte {
	b := AppendU32(nil, uint32(len(items)))
	for _, it := range items {
		b = append(b, it...)
	}
	return b
}

func wasmName(s string) []byte { return append(AppendU32(nil, uint32(len(s))), s...) }

func body(code ...byte) []byte {
	b := append([]byte{0x00}, code...) // no locals
	return append(AppendU32(nil, uint32(len(b))), b...)
}

// spinModule is
//
//	(global $started (export "started") (mut i32) (i32.const 0))
//	(func (export "spin") (global.set $started (i32.const 1)) (loop (br 0)))
//	(func (export "leaf") (result i32) (i32.const 7))
//	(func (export "count") (param i32) (result i32)   ;; sums 1..n in a loop
//	  (local i32) ...)
func spinModule() []byte {
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, section(1, vec(
		[]byte{0x60, 0x00, 0x00},             // () -> ()
		[]byte{0x60, 0x00, 0x01, 0x7f},       // () -> i32
		[]byte{0x60, 0x01, 0x7f, 0x01, 0x7f}, // i32 -> i32
	))...)
	m = append(m, section(3, vec([]byte{0}, []byte{1}, []byte{2}))...)
	m = append(m, section(6, vec([]byte{0x7f, 0x01, 0x41, 0x00, 0x0b}))...)
	m = append(m, section(7, vec(
		append(wasmName("started"), 0x03, 0x00),
		append(wasmName("spin"), 0x00, 0x00),
		append(wasmName("leaf"), 0x00, 0x01),
		append(wasmName("count"), 0x00, 0x02),
	))...)
	count := []byte{0x01, 0x01, 0x7f, // one i32 local: the sum
		0x02, 0x40, 0x03, 0x40, // block loop
		0x20, 0x00, 0x45, 0x0d, 0x01, // br_if 1 (n == 0)
		0x20, 0x01, 0x20, 0x00, 0x6a, 0x21, 0x01, // sum += n
		0x20, 0x00, 0x41, 0x01, 0x6b, 0x21, 0x00, // n--
		0x0c, 0x00, 0x0b, 0x0b, // br 0, end, end
		0x20, 0x01, 0x0b}
	m = append(m, section(10, vec(
		body(0x41, 0x01, 0x24, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b),
		body(0x41, 0x07, 0x0b),
		append(AppendU32(nil, uint32(len(count))), count...),
	))...)
	return m
}

func instantiate(t *testing.T, wasm []byte) api.Module {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	t.Cleanup(func() { r.Close(ctx) })
	mod, err := r.Instantiate(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	unlimit(mod)
	return mod
}

// unlimit sets the budget and the stack limit of an instrumented module,
// which let nothing through until the host sets them, as high as they go.
func unlimit(mod api.Module) {
	for _, name := range []string{BudgetExport, StackLimitExport} {
		if g, ok := mod.ExportedGlobal(name).(api.MutableGlobal); ok {
			g.Set(1<<31 - 1)
		}
	}
}

func flagOf(t *testing.T, mod api.Module) api.MutableGlobal {
	t.Helper()
	g, ok := mod.ExportedGlobal(InterruptExport).(api.MutableGlobal)
	if !ok {
		t.Fatalf("no mutable global exported as %s", InterruptExport)
	}
	return g
}

// spin instruments spinModule, starts its spin export and returns once the
// guest is inside the loop (past the entry's check), with the call's result
// to come on done.
func spin(t *testing.T) (mod api.Module, done <-chan error) {
	t.Helper()
	wasm, err := Instrument(spinModule())
	if err != nil {
		t.Fatal(err)
	}
	mod = instantiate(t, wasm)
	ch := make(chan error, 1)
	go func() {
		_, err := mod.ExportedFunction("spin").Call(context.Background())
		ch <- err
	}()
	for mod.ExportedGlobal("started").Get() == 0 {
		time.Sleep(time.Millisecond)
	}
	return mod, ch
}

func TestInstrumentStopsALoop(t *testing.T) {
	mod, done := spin(t)
	select {
	case err := <-done:
		t.Fatalf("spin returned before it was interrupted: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	flagOf(t, mod).Set(1)
	if err := <-done; err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("spin: got %v, want an unreachable trap", err)
	}
}

func TestInstrumentChecksAtEntry(t *testing.T) {
	wasm, err := Instrument(spinModule())
	if err != nil {
		t.Fatal(err)
	}
	mod := instantiate(t, wasm)
	ctx := context.Background()
	leaf := mod.ExportedFunction("leaf")
	if res, err := leaf.Call(ctx); err != nil || res[0] != 7 {
		t.Fatalf("leaf with the flag clear: %v %v, want 7", res, err)
	}
	if res, err := mod.ExportedFunction("count").Call(ctx, 100); err != nil || res[0] != 5050 {
		t.Fatalf("count(100) with the flag clear: %v %v, want 5050", res, err)
	}
	// With the flag set, a function with no loop traps at an entry check
	// that goes through Go: one within yieldEvery calls.
	flagOf(t, mod).Set(1)
	for i := 1; ; i++ {
		_, err := leaf.Call(ctx)
		if err != nil {
			if !strings.Contains(err.Error(), "unreachable") {
				t.Fatalf("leaf with the flag set: got %v, want an unreachable trap", err)
			}
			break
		}
		if i > yieldEvery {
			t.Fatalf("leaf ran %d times with the flag set", i)
		}
	}
}

// A guest spinning in native code must not hold up the collector's
// stop-the-world: without the trips through Go, runtime.GC here never
// returns, and the whole host stops with it.
func TestInstrumentedLoopLetsTheCollectorStopTheWorld(t *testing.T) {
	mod, done := spin(t)
	for range 3 {
		runtime.GC()
	}
	select {
	case err := <-done:
		t.Fatalf("spin returned before it was interrupted: %v", err)
	default:
	}
	flagOf(t, mod).Set(1)
	if err := <-done; err == nil {
		t.Fatal("spin returned without a trap")
	}
}

func TestInstrumentAddsSectionsAModuleLacks(t *testing.T) {
	// Only a type, a function and a code section: no global, no export.
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, section(1, vec([]byte{0x60, 0x00, 0x00}))...)
	m = append(m, section(3, vec([]byte{0}))...)
	m = append(m, section(0, append(wasmName("note"), "custom sections pass through"...))...)
	m = append(m, section(10, vec(body(0x0b)))...)
	wasm, err := Instrument(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(wasm, []byte("custom sections pass through")) {
		t.Error("the custom section was lost")
	}
	mod := instantiate(t, wasm)
	flagOf(t, mod)
	if mod.Memory() == nil || mod.Memory().Size() != 0 {
		t.Error("want an empty memory added for memory.grow")
	}
}

func TestInstrumentRefuses(t *testing.T) {
	good := spinModule()
	for _, tc := range []struct {
		name, want string
		wasm       []byte
	}{
		{"not wasm", "not a WebAssembly 1.0", []byte("\x7fELF\x02\x01\x01\x00")},
		{"truncated", "truncated", good[:len(good)-3]},
		{"sections out of order", "out of order", append(append([]byte(nil), good...), section(1, vec())...)},
		{"names the flag's index", "global 0 does not exist", withCode(body(0x23, 0x00, 0x1a, 0x0b))},
		{"unknown opcode", "unknown opcode", withCode(body(0xd5, 0x0b))},
		{"code after the end", "code after the function's end", withCode(body(0x0b, 0x01))},
		{"no final end", "no final end", withCode(body(0x02, 0x40, 0x0b))},
		{"bytes after the exports", "export section: bytes after the last entry", withSection(section(7, append(vec(), 0x80, 0x80, 0x80, 0x30)))},
		{"bytes after the globals", "global section: bytes after the last entry", withSection(section(6, append(vec([]byte{0x7f, 0x00, 0x41, 0x00, 0x0b}), 0x01)))},
	} {
		_, err := Instrument(tc.wasm)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	for _, name := range ReservedExports {
		m := []byte("\x00asm\x01\x00\x00\x00")
		m = append(m, section(1, vec([]byte{0x60, 0x00, 0x00}))...)
		m = append(m, section(3, vec([]byte{0}))...)
		m = append(m, section(7, vec(append(wasmName(name), 0x00, 0x00)))...)
		m = append(m, section(10, vec(body(0x0b)))...)
		if _, err := Instrument(m); err == nil || !strings.Contains(err.Error(), "reserves") {
			t.Errorf("an export named %s: got %v, want it refused", name, err)
		}
	}
}

// withSection makes a module of one empty function and sec, placed before
// the code section (as a global or an export section must be).
func withSection(sec []byte) []byte {
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, section(1, vec([]byte{0x60, 0x00, 0x00}))...)
	m = append(m, section(3, vec([]byte{0}))...)
	m = append(m, sec...)
	return append(m, section(10, vec(body(0x0b)))...)
}

// withCode makes a module of the given bodies, all of type () -> ().
func withCode(bodies ...[]byte) []byte {
	out := []byte("\x00asm\x01\x00\x00\x00")
	out = append(out, section(1, vec([]byte{0x60, 0x00, 0x00}))...)
	types := make([][]byte, len(bodies))
	for i := range types {
		types[i] = []byte{0}
	}
	out = append(out, section(3, vec(types...))...)
	return append(out, section(10, vec(bodies...))...)
}

// BenchmarkLoop sums 1..1e6 in a wasm loop: as compiled, with Instrument's
// checks, and with wazero's WithCloseOnContextDone, the mechanism they
// replace. The figure is per loop iteration.
func BenchmarkLoop(b *testing.B) {
	const n = 1_000_000
	const sum uint64 = n * (n + 1) / 2 // wraps in the guest's i32
	patched, err := Instrument(spinModule())
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name          string
		wasm          []byte
		closeOnCtxEnd bool
	}{
		{"raw", spinModule(), false},
		{"instrumented", patched, false},
		{"close-on-context-done", spinModule(), true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCloseOnContextDone(bc.closeOnCtxEnd))
			defer r.Close(ctx)
			mod, err := r.Instantiate(ctx, bc.wasm)
			if err != nil {
				b.Fatal(err)
			}
			unlimit(mod)
			count := mod.ExportedFunction("count")
			stack := make([]uint64, 1)
			b.ResetTimer()
			for range b.N {
				stack[0] = n
				if err := count.CallWithStack(ctx, stack); err != nil {
					b.Fatal(err)
				}
				if got, want := uint32(stack[0]), uint32(sum&0xffffffff); got != want {
					b.Fatalf("count: %d", got)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/iteration")
		})
	}
}

// startGrowModule is a module whose start function grows its memory by a
// page: a start section and a memory.grow, both of which instrument
// rewrites.
func startGrowModule() []byte {
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, section(1, vec([]byte{0x60, 0x00, 0x00}))...)
	m = append(m, section(3, vec([]byte{0}))...)
	m = append(m, section(5, vec([]byte{0x00, 0x01}))...)
	m = append(m, section(8, []byte{0x00})...)
	return append(m, section(10, vec(body(0x41, 0x01, 0x40, 0x00, 0x1a, 0x0b)))...)
}

// fibModule is (func (export "fib") (param i32) (result i32)), the
// recursive Fibonacci: almost nothing but calls and returns.
func fibModule() []byte {
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, section(1, vec([]byte{0x60, 0x01, 0x7f, 0x01, 0x7f}))...)
	m = append(m, section(3, vec([]byte{0}))...)
	m = append(m, section(7, vec(append(wasmName("fib"), 0x00, 0x00)))...)
	// n < 2 ? n : fib(n-1) + fib(n-2)
	return append(m, section(10, vec(body(0x20, 0x00, 0x41, 0x02, 0x48, 0x04, 0x7f, 0x20, 0x00, 0x05,
		0x20, 0x00, 0x41, 0x01, 0x6b, 0x10, 0x00, 0x20, 0x00, 0x41, 0x02, 0x6b, 0x10, 0x00, 0x6a, 0x0b, 0x0b)))...)
}

// BenchmarkCalls runs fib(25), 242785 calls, as compiled and with
// Instrument's checks (the entry check and the frame count). The figure
// is per call.
func BenchmarkCalls(b *testing.B) {
	patched, err := Instrument(fibModule())
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		wasm []byte
	}{{"raw", fibModule()}, {"instrumented", patched}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
			defer r.Close(ctx)
			mod, err := r.Instantiate(ctx, bc.wasm)
			if err != nil {
				b.Fatal(err)
			}
			unlimit(mod)
			fib := mod.ExportedFunction("fib")
			stack := make([]uint64, 1)
			b.ResetTimer()
			for range b.N {
				stack[0] = 25
				if err := fib.CallWithStack(ctx, stack); err != nil || stack[0] != 75025 {
					b.Fatalf("fib(25): %d, %v", stack[0], err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/242785, "ns/call")
		})
	}
}

// FuzzInstrument feeds Instrument guest bytes. It must never panic, and a
// module wazero accepts must still be accepted once instrumented, with the
// same functions: the host compiles only the instrumented bytes, so a
// mistake here would refuse good plugins or, worse, change what they do.
func FuzzInstrument(f *testing.F) {
	f.Add(spinModule())
	f.Add(withCode(body(0x02, 0x40, 0x03, 0x40, 0x0c, 0x01, 0x0b, 0x0b, 0x0b)))
	f.Add(withCode(body(0x41, 0x00, 0x04, 0x40, 0x01, 0x05, 0x01, 0x0b, 0x0b), body(0x10, 0x00, 0x0b)))
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Add(startGrowModule())
	f.Add(fibModule())
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	f.Cleanup(func() { r.Close(ctx) })
	f.Fuzz(func(t *testing.T, wasm []byte) {
		if CheckCounts(wasm) != nil {
			return // Prepare refuses it before Instrument or wazero sees it
		}
		patched, err := Instrument(wasm)
		if err != nil {
			return
		}
		// Through isolate.Compile, as plugin.Prepare compiles: a module wazero
		// panics on is refused, not a crash of the host.
		orig, err := isolate.Compile(ctx, r, wasm)
		if err != nil {
			return
		}
		defer orig.Close(ctx)
		got, err := isolate.Compile(ctx, r, patched)
		if err != nil {
			t.Fatalf("wazero accepts the module but not its instrumented copy: %v", err)
		}
		defer got.Close(ctx)
		exported := got.ExportedFunctions()
		delete(exported, StartExport) // the start section's function, which the host calls
		if len(exported) != len(orig.ExportedFunctions()) || len(got.ImportedFunctions()) != len(orig.ImportedFunctions()) {
			t.Fatal("instrument changed the module's functions")
		}
	})
}

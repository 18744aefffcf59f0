package plugin_test

import (
	"context"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/internal/plugin"
	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/wasmbin"
)

// The hostile modules below are assembled by hand (testenv.Module): no
// compiler emits a table with no maximum grown in a loop, or a start
// section that never returns.

// instantiate loads wasm as plugin "p" with the manifest lines extra and
// makes an instance, which delivers the start event. It fails the test if
// that does not return within a minute: a hang, not a slow machine.
func instantiate(t *testing.T, wasm []byte, extra string) (*plugin.Instance, error) {
	t.Helper()
	p := load(t, wasm, extra, slog.New(slog.DiscardHandler))
	type result struct {
		in  *plugin.Instance
		err error
	}
	done := make(chan result, 1)
	go func() {
		in, err := p.Instantiate(context.Background())
		done <- result{in, err}
	}()
	select {
	case r := <-done:
		if r.in != nil {
			t.Cleanup(r.in.Close)
		}
		return r.in, r.err
	case <-time.After(time.Minute):
		t.Fatal("Instantiate did not return: the guest ran unwatched")
		return nil, nil
	}
}

const limit16 = "[limits]\nmemory = \"16MiB\"\nhandler_timeout = \"5s\"\n"

// Every way a guest grows a table counts against limits.memory, with its
// linear memory: past it, table.grow traps and the error names the limit
// and the entries asked for. Before, a table with no maximum grew until the
// host ran out of memory (issue 15: 1.9 GiB under a 16 MiB limit).
func TestTableGrowCountsAgainstMemoryLimit(t *testing.T) {
	const want = "start handler trapped: table.grow would take the tables to "
	for _, tc := range []struct {
		name string
		m    testenv.Module
	}{
		{"funcref table with no maximum", testenv.Module{
			Tables:        [][]byte{testenv.Table(testenv.Funcref, testenv.NoMax(1))},
			HandlerLocals: testenv.LoopLocal, Handler: testenv.Code(testenv.GrowLoop(0, testenv.Funcref, 65536, 256), testenv.Return0)}},
		{"externref table with no maximum", testenv.Module{
			Tables:        [][]byte{testenv.Table(testenv.Externref, testenv.NoMax(0))},
			HandlerLocals: testenv.LoopLocal, Handler: testenv.Code(testenv.GrowLoop(0, testenv.Externref, 65536, 256), testenv.Return0)}},
		{"a maximum of 2^32-1 entries", testenv.Module{
			Tables:        [][]byte{testenv.Table(testenv.Funcref, []byte{0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0x0f})},
			HandlerLocals: testenv.LoopLocal, Handler: testenv.Code(testenv.GrowLoop(0, testenv.Funcref, 65536, 256), testenv.Return0)}},
		{"one big step", testenv.Module{
			Tables:  [][]byte{testenv.Table(testenv.Funcref, testenv.NoMax(0))},
			Handler: testenv.Code(testenv.Grow(0, testenv.Funcref, 8<<20), testenv.Return0)}},
		{"two tables, each under the limit alone", testenv.Module{
			Tables:        [][]byte{testenv.Table(testenv.Funcref, testenv.NoMax(0)), testenv.Table(testenv.Externref, testenv.NoMax(0))},
			HandlerLocals: testenv.LoopLocal, Handler: testenv.Code(testenv.Grow(0, testenv.Funcref, 1<<20), testenv.GrowLoop(1, testenv.Externref, 65536, 256), testenv.Return0)}},
		{"many tables grown in turn", testenv.Module{
			Tables: [][]byte{testenv.Table(testenv.Funcref, testenv.NoMax(0)), testenv.Table(testenv.Funcref, testenv.NoMax(0)), testenv.Table(testenv.Externref, testenv.NoMax(0)), testenv.Table(testenv.Funcref, testenv.NoMax(0))},
			Handler: testenv.Code(testenv.Grow(0, testenv.Funcref, 600_000), testenv.Grow(1, testenv.Funcref, 600_000), testenv.Grow(2, testenv.Externref, 600_000),
				testenv.Grow(3, testenv.Funcref, 600_000), testenv.Return0)}},
		{"memory first, then tables", testenv.Module{
			Tables:        [][]byte{testenv.Table(testenv.Funcref, testenv.NoMax(0))},
			HandlerLocals: testenv.LoopLocal, Handler: testenv.Code(testenv.MemoryGrow(192), []byte{0x1a}, testenv.GrowLoop(0, testenv.Funcref, 65536, 256), testenv.Return0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := instantiate(t, tc.m.Wasm(), limit16)
			t.Log(err)
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "past limits.memory = 16MiB") {
				t.Fatalf("got %v\nwant %q ... past limits.memory = 16MiB", err, want)
			}
		})
	}
}

// A memory.grow that would take linear memory and tables together past
// limits.memory fails (-1), as one past the memory's own limit does; the
// memory stays where it was.
func TestMemoryGrowCountsTables(t *testing.T) {
	// Tables of 12 MiB, then 8 MiB more memory: -1, or unreachable.
	m := testenv.Module{
		Tables:  [][]byte{testenv.Table(testenv.Funcref, testenv.NoMax(0))},
		Handler: testenv.Code(testenv.Grow(0, testenv.Funcref, 12<<20/8), testenv.MemoryGrow(128), []byte{0x41, 0x7f, 0x47, 0x04, 0x40, 0x00, 0x0b}, testenv.Return0),
	}
	in, err := instantiate(t, m.Wasm(), limit16)
	if err != nil {
		t.Fatalf("got %v, want memory.grow to fail with -1 and the handler to return", err)
	}
	if in.MemorySize() != 65536 {
		t.Errorf("memory is %d bytes, want the one page it started with", in.MemorySize())
	}
}

// Linear memory alone stays within limits.memory, whatever maximum the
// module declares: memory.grow a page at a time returns -1 at the limit,
// and the memory is then exactly 16 MiB.
func TestLinearMemoryStaysWithinLimit(t *testing.T) {
	// Grow one page at a time, up to 1000 times or until -1.
	loop := []byte{0x02, 0x40, 0x03, 0x40, 0x41, 0x01, 0x40, 0x00, 0x41, 0x7f, 0x46, 0x0d, 0x01,
		0x20, 0x02, 0x41, 0x01, 0x6a, 0x22, 0x02, 0x41, 0xe8, 0x07, 0x49, 0x0d, 0x00, 0x0b, 0x0b}
	for _, tc := range []struct {
		name   string
		limits []byte
	}{
		{"no maximum", testenv.NoMax(1)},
		{"a maximum of 4 GiB", []byte{0x01, 0x01, 0x80, 0x80, 0x04}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := testenv.Module{Memory: tc.limits, HandlerLocals: testenv.LoopLocal, Handler: testenv.Code(loop, testenv.Return0)}
			in, err := instantiate(t, m.Wasm(), limit16)
			if err != nil {
				t.Fatal(err)
			}
			if got := in.MemorySize(); got != 16<<20 {
				t.Errorf("memory grew to %d bytes, want 16 MiB exactly", got)
			}
		})
	}
}

// What a module declares for instantiation counts against limits.memory
// too: Load refuses it, saying what it needs.
func TestLoadRefusesAFootprintPastMemoryLimit(t *testing.T) {
	globals := make([][]byte, 400_000)
	for i := range globals {
		globals[i] = []byte{0x7f, 0x00, 0x41, 0x00, 0x0b}
	}
	elems := []byte{0x01, 0x00, 0x80, 0x9b, 0xee, 0x02} // passive, funcref indices, 6,000,000 of them
	elems = append(elems, make([]byte, 6_000_000)...)   // function 0, each
	for _, tc := range []struct {
		name, want string
		m          testenv.Module
	}{
		{"tables of 24 MiB at start", "3000000 table entries", testenv.Module{
			Tables: [][]byte{testenv.Table(testenv.Funcref, testenv.NoMax(3_000_000))}, Handler: testenv.Return0}},
		{"400000 globals", `4000\d\d globals`, testenv.Module{Globals: globals, Handler: testenv.Return0}},
		{"a segment of 6 million elements", "element entries", testenv.Module{
			Tables: [][]byte{testenv.Table(testenv.Funcref, testenv.NoMax(0))}, Elems: [][]byte{elems}, Handler: testenv.Return0}},
		{"300000 functions", `3000\d\d functions`, testenv.Module{Funcs: emptyFuncs(300_000), Handler: testenv.Return0}},
		{"300000 exports", `3000\d\d imports and exports`, testenv.Module{Funcs: []testenv.Func{{Type: 0, Code: []byte{0x0b}}},
			Handler: testenv.Return0, Exports: exportsOf2(300_000)}},
		{"memory and tables, each under the limit alone", "600000 table entries", testenv.Module{
			Memory: testenv.NoMax(200), Tables: [][]byte{testenv.Table(testenv.Funcref, testenv.NoMax(600_000))}, Handler: testenv.Return0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := onDisk(t, tc.m.Wasm(), limit16, "", slog.New(slog.DiscardHandler)).load(t)
			if err == nil || !strings.Contains(err.Error(), "above limits.memory = 16MiB") || !regexp.MustCompile(tc.want).MatchString(err.Error()) {
				t.Fatalf("got %v\nwant a refusal naming %q and limits.memory", err, tc.want)
			}
		})
	}
}

// A module the host cannot instrument (it exports the reserved name) keeps
// wazero's memory limit but not the budget check on table.grow: Load
// refuses it if its tables could grow past limits.memory.
func TestLoadRefusesUninstrumentedGrowableTables(t *testing.T) {
	for _, limits := range [][]byte{testenv.NoMax(1), {0x01, 0x01, 0x80, 0x80, 0x80, 0x01}} {
		m := testenv.Module{Tables: [][]byte{testenv.Table(testenv.Funcref, limits)}, Handler: testenv.Return0,
			Funcs: []testenv.Func{{Type: 0, Code: []byte{0x0b}, Export: wasmbin.InterruptExport}}}
		_, err := onDisk(t, m.Wasm(), limit16, "", slog.New(slog.DiscardHandler)).load(t)
		if err == nil || !strings.Contains(err.Error(), "cannot bound table.grow") {
			t.Errorf("limits % x: got %v, want a refusal", limits, err)
		}
	}
	// With a maximum that fits, it loads.
	m := testenv.Module{Tables: [][]byte{testenv.Table(testenv.Funcref, []byte{0x01, 0x01, 0x10})}, Handler: testenv.Return0,
		Funcs: []testenv.Func{{Type: 0, Code: []byte{0x0b}, Export: wasmbin.InterruptExport}}}
	if _, err := onDisk(t, m.Wasm(), limit16, "", slog.New(slog.DiscardHandler)).load(t); err != nil {
		t.Errorf("a table of at most 16 entries: %v", err)
	}
}

// Every guest instruction from instantiation on runs under the watchdog:
// the start section, _initialize and the start event, each with a
// deadline of limits.handler_timeout. Before, a start section that looped
// was never stopped (issue 15: "starting" forever at 99% CPU).
func TestStartFunctionsRunUnderTheWatchdog(t *testing.T) {
	const timeout = "[limits]\nmemory = \"16MiB\"\nhandler_timeout = \"100ms\"\n"
	const startFn = "the module's start function (its wasm start section) "
	reserved := testenv.Func{Type: 0, Code: []byte{0x0b}, Export: wasmbin.InterruptExport}
	for _, tc := range []struct {
		name, want string
		m          testenv.Module
	}{
		{"start section that loops", startFn + "ran past limits.handler_timeout = 100ms",
			testenv.Module{Funcs: []testenv.Func{{Type: 0, Code: testenv.Spin}}, Start: 2, Handler: testenv.Return0}},
		{"start section that loops, module not instrumented", startFn + "ran past limits.handler_timeout = 100ms",
			testenv.Module{Funcs: []testenv.Func{{Type: 0, Code: testenv.Spin}, reserved}, Start: 2, Handler: testenv.Return0}},
		// Growing to the limit takes longer than 100 ms under the race
		// detector, so this case has a deadline that only a hang reaches.
		{"start section that grows a table", startFn + "trapped: table.grow would take the tables to",
			testenv.Module{Tables: [][]byte{testenv.Table(testenv.Funcref, testenv.NoMax(0))}, Start: 2, Handler: testenv.Return0,
				Funcs: []testenv.Func{{Type: 0, Locals: []byte{0x01, 0x03, 0x7f}, Code: testenv.Code(testenv.GrowLoop(0, testenv.Funcref, 65536, 256), []byte{0x0b})}}}},
		{"start section that traps", startFn + "trapped (wasm error: unreachable)",
			testenv.Module{Funcs: []testenv.Func{{Type: 0, Code: []byte{0x00, 0x0b}}}, Start: 2, Handler: testenv.Return0}},
		{"_initialize that loops", "_initialize handler ran past limits.handler_timeout = 100ms",
			testenv.Module{Funcs: []testenv.Func{{Type: 0, Code: testenv.Spin, Export: "_initialize"}}, Handler: testenv.Return0}},
		{"start handler that loops", "start handler ran past limits.handler_timeout = 100ms",
			testenv.Module{Handler: []byte{0x03, 0x40, 0x0c, 0x00, 0x0b, 0x00, 0x0b}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			limits := timeout
			if strings.Contains(tc.want, "table.grow") {
				limits = "[limits]\nmemory = \"16MiB\"\nhandler_timeout = \"60s\"\n"
			}
			_, err := instantiate(t, tc.m.Wasm(), limits)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant %q", err, tc.want)
			}
		})
	}
}

// The start section still runs before anything else, once: a start
// function that sets a global, read by the handler, is seen by the start
// event; and _start, a command's entry point, is never called (a reactor
// plugin has none, and one that loops does not hold the host).
func TestStartSectionRunsFirst(t *testing.T) {
	m := testenv.Module{
		Globals: [][]byte{{0x7f, 0x01, 0x41, 0x00, 0x0b}},
		Funcs: []testenv.Func{
			{Type: 0, Code: []byte{0x23, 0x00, 0x41, 0x01, 0x6a, 0x24, 0x00, 0x0b}}, // g += 1
			{Type: 0, Code: testenv.Spin, Export: "_start"},
		},
		Start: 2,
		// The handler traps unless g == 1.
		Handler: []byte{0x23, 0x00, 0x41, 0x01, 0x47, 0x04, 0x40, 0x00, 0x0b, 0x41, 0x00, 0x0b},
	}
	if _, err := instantiate(t, m.Wasm(), "[limits]\nhandler_timeout = \"100ms\"\n"); err != nil {
		t.Fatal(err)
	}
}

// recurse is function 2, of type (i32) -> i32, calling itself forever.
var recurse = testenv.Func{Type: 2, Code: []byte{0x20, 0x00, 0x41, 0x01, 0x6a, 0x10, 0x02, 0x0b}}

// callRecurse is a handler that calls function 2 with 0.
var callRecurse = []byte{0x41, 0x00, 0x10, 0x02, 0x1a, 0x41, 0x00, 0x0b}

// The guest's call stack counts against limits.memory too: a quarter of it,
// with each frame counted at 64 bytes and 16 a parameter or local. Past
// it, the call traps and the error says so. Before, wazero let the stack
// grow to 84 MiB (and allocated 161 MiB on the way) whatever the limit.
func TestRecursionCountsAgainstMemoryLimit(t *testing.T) {
	const want = "start handler trapped: its call stack would take "
	fat := recurse
	fat.Locals = []byte{0x01, 0xe8, 0x07, 0x7e}                                                     // 1000 i64 locals
	indirect := testenv.Func{Type: 2, Code: []byte{0x20, 0x00, 0x41, 0x00, 0x11, 0x02, 0x00, 0x0b}} // call_indirect (type 2) table 0, slot 0
	for _, tc := range []struct {
		name string
		m    testenv.Module
	}{
		{"small frames", testenv.Module{Funcs: []testenv.Func{recurse}, Handler: callRecurse}},
		{"frames of 1000 locals", testenv.Module{Funcs: []testenv.Func{fat}, Handler: callRecurse}},
		{"through a table", testenv.Module{Funcs: []testenv.Func{indirect}, Handler: callRecurse,
			Tables: [][]byte{testenv.Table(testenv.Funcref, testenv.NoMax(1))},
			Elems:  [][]byte{{0x00, 0x41, 0x00, 0x0b, 0x01, 0x02}}}}, // slot 0: function 2
		{"in the start section", testenv.Module{Funcs: []testenv.Func{recurse,
			{Type: 0, Code: []byte{0x41, 0x00, 0x10, 0x02, 0x1a, 0x0b}}}, Start: 3, Handler: testenv.Return0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := instantiate(t, tc.m.Wasm(), limit16)
			t.Log(err)
			w := want
			if tc.m.Start != 0 {
				w = "the module's start function (its wasm start section) trapped: its call stack would take "
			}
			if err == nil || !strings.Contains(err.Error(), w) || !strings.Contains(err.Error(), "past its limit of 4194304, a quarter of limits.memory = 16MiB") {
				t.Fatalf("got %v\nwant %q ... past its limit of 4194304", err, w)
			}
		})
	}
}

// What the stack count adds comes off as each function returns, however it
// returns: by its end, by return from inside blocks, by a branch to its
// label (br, br_if), with one result or two. Functions that recurse 1000
// deep in each of these ways, run 200 times, stay well under the limit; a
// count that leaked a frame on any of the ways would trap.
func TestStackCountComesOffOnEveryReturn(t *testing.T) {
	// Function 2, (i32) -> i32: n == 0 ? 0 : f(n-1) + 1, returning by
	// the way n % 4 chooses.
	ways := testenv.Func{Type: 2, Locals: []byte{0x01, 0x01, 0x7f}, Code: []byte{
		0x20, 0x00, 0x45, 0x04, 0x40, 0x41, 0x00, 0x0f, 0x0b, // if n == 0: return 0
		0x20, 0x00, 0x41, 0x01, 0x6b, 0x10, 0x02, 0x41, 0x01, 0x6a, 0x21, 0x01, // r = f(n-1) + 1
		0x02, 0x40, 0x02, 0x40, 0x02, 0x40, 0x02, 0x40, // four blocks
		0x20, 0x00, 0x41, 0x04, 0x70, 0x0e, 0x03, 0x00, 0x01, 0x02, 0x03, // br_table by n % 4
		0x0b, 0x02, 0x40, 0x20, 0x01, 0x0f, 0x0b, 0x00, // 0: return r from inside a block
		0x0b, 0x20, 0x01, 0x0c, 0x02, // 1: br 2, the function's label
		0x0b, 0x20, 0x01, 0x41, 0x01, 0x0d, 0x01, 0x1a, 0x00, // 2: br_if 1, the function's label
		0x0b, 0x20, 0x01, 0x0b, // 3: the end
	}}
	// Function 3, (i32) -> (i32, i32): (f(n-1) summed, n), by return at 0.
	pair := testenv.Func{Type: 3, Code: []byte{
		0x20, 0x00, 0x45, 0x04, 0x40, 0x41, 0x00, 0x41, 0x00, 0x0f, 0x0b,
		0x20, 0x00, 0x41, 0x01, 0x6b, 0x10, 0x03, 0x6a, 0x20, 0x00, 0x0b,
	}}
	handler := []byte{
		0x02, 0x40, 0x03, 0x40,
		0x41, 0xe8, 0x07, 0x10, 0x02, 0x41, 0xe8, 0x07, 0x47, 0x04, 0x40, 0x00, 0x0b, // f(1000) != 1000: unreachable
		0x41, 0xe8, 0x07, 0x10, 0x03, 0x1a, 0x1a,
		0x20, 0x02, 0x41, 0x01, 0x6a, 0x22, 0x02, 0x41, 0xc8, 0x01, 0x49, 0x0d, 0x00, // 200 times
		0x0b, 0x0b, 0x41, 0x00, 0x0b,
	}
	m := testenv.Module{ExtraTypes: [][]byte{{0x60, 0x01, 0x7f, 0x02, 0x7f, 0x7f}}, Funcs: []testenv.Func{ways, pair},
		HandlerLocals: testenv.LoopLocal, Handler: handler}
	if _, err := instantiate(t, m.Wasm(), limit16); err != nil {
		t.Fatal(err)
	}
}

// emptyFuncs is n functions of type () -> () that do nothing.
func emptyFuncs(n int) []testenv.Func {
	out := make([]testenv.Func, n)
	for i := range out {
		out[i] = testenv.Func{Type: 0, Code: []byte{0x0b}}
	}
	return out
}

// exportsOf2 is n exports of function 2, each under its own name.
func exportsOf2(n int) []testenv.Export {
	out := make([]testenv.Export, n)
	for i := range out {
		out[i] = testenv.Export{Name: strconv.Itoa(i), Kind: 0, Index: 2}
	}
	return out
}

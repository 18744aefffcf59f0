package wasmbin

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/airlockhq/airlock/internal/isolate"
)

func module(sections ...[]byte) []byte {
	m := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range sections {
		m = append(m, s...)
	}
	return m
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func u32(v uint32) []byte { return AppendU32(nil, v) }

// nameSection is a "name" custom section of the given subsections.
func nameSection(subsections ...[]byte) []byte {
	return section(secCustom, cat(wasmName("name"), cat(subsections...)))
}

func subsection(id byte, body []byte) []byte { return section(id, body) }

// everyLayout is a module that wazero compiles (with exception handling and
// extended constant expressions) and that has every layout CheckCounts
// walks: each import kind, a recursive type group, a table with an
// initializer, a tag, globals of every constant expression, element segments
// of flags 0 to 7, data segments of flags 0 to 2, bodies with locals, and a
// name section with its module, function and local names and a subsection
// wazero skips.
func everyLayout() []byte {
	i32const0 := []byte{0x41, 0x00, 0x0b}
	refFunc1 := []byte{0xd2, 0x01, 0x0b}
	return module(
		section(secType, vec(
			[]byte{0x60, 0x00, 0x00},                   // 0: () -> ()
			[]byte{0x4e, 0x01, 0x60, 0x01, 0x7f, 0x00}, // rec group of 1: (i32) -> ()
		)),
		section(secImport, vec(
			cat(wasmName("env"), wasmName("f"), []byte{0x00, 0x00}),
			cat(wasmName("env"), wasmName("t"), []byte{0x01, 0x70, 0x00, 0x01}),
			cat(wasmName("env"), wasmName("m"), []byte{0x02, 0x01, 0x01, 0x02}),
			cat(wasmName("env"), wasmName("g"), []byte{0x03, 0x7f, 0x00}),
			cat(wasmName("env"), wasmName("e"), []byte{0x04, 0x00, 0x01}),
		)),
		section(secFunction, vec([]byte{0x00}, []byte{0x01})),
		section(secTable, vec(
			[]byte{0x40, 0x00, 0x70, 0x00, 0x04, 0xd0, 0x70, 0x0b}, // funcref, min 4, ref.null func
			[]byte{0x6f, 0x01, 0x00, 0x02},                         // externref, 0 to 2
		)),
		section(secTag, vec([]byte{0x00, 0x01})),
		section(secGlobal, vec(
			[]byte{0x7f, 0x01, 0x41, 0x2a, 0x0b},                         // i32 42
			[]byte{0x7e, 0x00, 0x42, 0x7f, 0x0b},                         // i64 -1
			[]byte{0x7d, 0x00, 0x43, 0, 0, 0x80, 0x3f, 0x0b},             // f32 1
			[]byte{0x7c, 0x00, 0x44, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x0b}, // f64 1
			[]byte{0x70, 0x00, 0xd2, 0x01, 0x0b},                         // ref.func 1
			[]byte{0x6f, 0x00, 0xd0, 0x6f, 0x0b},                         // ref.null extern
			[]byte{0x7f, 0x00, 0x23, 0x00, 0x0b},                         // global.get 0
			[]byte{0x7f, 0x00, 0x41, 0x01, 0x41, 0x02, 0x6a, 0x0b},       // 1 + 2
			cat([]byte{0x7b, 0x00, 0xfd, 0x0c}, make([]byte, 16), []byte{0x0b}),
		)),
		section(secExport, vec(
			cat(wasmName("run"), []byte{0x00, 0x01}),
			cat(wasmName("g"), []byte{0x03, 0x01}),
		)),
		section(secElement, vec(
			cat([]byte{0x00}, i32const0, vec([]byte{0x01})),
			cat([]byte{0x01, 0x00}, vec([]byte{0x01})),
			cat([]byte{0x02, 0x01}, i32const0, []byte{0x00}, vec([]byte{0x01})),
			cat([]byte{0x03, 0x00}, vec([]byte{0x01})),
			cat([]byte{0x04}, i32const0, vec(refFunc1)),
			cat([]byte{0x05, 0x70}, vec([]byte{0xd0, 0x70, 0x0b})),
			cat([]byte{0x06, 0x01}, i32const0, []byte{0x70}, vec(refFunc1, refFunc1)),
			cat([]byte{0x07, 0x70}, vec(refFunc1)),
		)),
		section(12, u32(3)), // data count
		section(secCode, vec(
			body(0x0b),
			cat(u32(7), []byte{0x02, 0x01, 0x7f, 0x02, 0x7e, 0x01, 0x0b}), // (local i32 i64 i64)
		)),
		section(secData, vec(
			cat([]byte{0x00}, i32const0, wasmName("hi")),
			cat([]byte{0x01}, wasmName("passive")),
			cat([]byte{0x02, 0x00, 0x41, 0x08, 0x0b}, wasmName("!")),
		)),
		nameSection(
			subsection(0, wasmName("everything")),
			subsection(1, vec(cat(u32(1), wasmName("run")))),
			subsection(2, vec(cat(u32(2), vec(cat(u32(1), wasmName("wide")))))),
			subsection(7, []byte{0xff, 0xff, 0xff, 0xff}), // global names: wazero skips them
		),
		section(secCustom, cat(wasmName("producers"), []byte("airlock test"))),
	)
}

// compileWithAllFeatures compiles wasm with every feature everyLayout needs.
func compileWithAllFeatures(t *testing.T, wasm []byte) {
	t.Helper()
	ctx := context.Background()
	features := api.CoreFeaturesV2 | experimental.CoreFeaturesExceptionHandling | experimental.CoreFeaturesExtendedConst
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithCoreFeatures(features))
	defer r.Close(ctx)
	if _, err := r.CompileModule(ctx, wasm); err != nil {
		t.Fatalf("wazero refuses the module: %v", err)
	}
}

func TestCheckCountsAccepts(t *testing.T) {
	compileWithAllFeatures(t, everyLayout())
	instrumented, err := Instrument(spinModule())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		wasm []byte
	}{
		{"every layout", everyLayout()},
		{"spinModule", spinModule()},
		{"spinModule instrumented", instrumented},
		{"loops", withCode(body(0x02, 0x40, 0x03, 0x40, 0x0c, 0x01, 0x0b, 0x0b, 0x0b))},
		{"if and call", withCode(body(0x41, 0x00, 0x04, 0x40, 0x01, 0x05, 0x01, 0x0b, 0x0b), body(0x10, 0x00, 0x0b))},
		{"header only", []byte("\x00asm\x01\x00\x00\x00")},
		{"a table of maxTableEntries", module(section(secTable, cat(u32(1), []byte{0x70, 0x00}, u32(maxTableEntries))))},
		{"a body of maxLocals locals", withCode(cat(u32(8), []byte{0x02, 0xd0, 0x86, 0x03, 0x7f, 0x00, 0x7e, 0x0b}))}, // 50000 + 0
	} {
		if err := CheckCounts(tc.wasm); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// countRefusals is one module per place where wazero allocates by a count
// it reads, with the count too big, and a few that break the walk.
var countRefusals = []struct {
	name string
	wasm []byte
	want string
}{
	// Found by FuzzInstrument: a few bytes that made wazero allocate
	// gigabytes.
	{"data segments (fuzzer)", []byte("\x00asm\x01\x00\x00\x00\x0b\x04\x81\x81\x81\x31"),
		"data section: claims 102776961 segments, but only 0 bytes are left to hold them"},
	{"tables (fuzzer)", []byte("\x00asm\x01\x00\x00\x00\x04\x04\xd7\xd7\xd7\x38"),
		"table section: claims 118877143 tables, but only 0 bytes are left to hold them"},

	// Not counts but indices that wazero reads before it checks them.
	{"a function's type index (fuzzer)", module(
		section(secType, vec([]byte{0x60, 0x00, 0x00})),
		section(secFunction, vec([]byte{0x00}, []byte{48})),
		section(secCode, vec(body(0x10, 0x01, 0x0b), body(0x0b)))),
		"function section: function 1: type index 48 is out of range: the module declares 1 type"},
	{"an imported function's type index", module(section(secImport, vec(cat(wasmName("env"), wasmName("f"), []byte{0x00, 0x00})))),
		"import section: import 0: type index 0 is out of range: the module declares 0 types"},
	{"a tag's type index", module(section(secType, vec([]byte{0x60, 0x00, 0x00}, []byte{0x60, 0x00, 0x00})), section(secTag, vec([]byte{0x00, 0x02}))),
		"tag section: tag 0: type index 2 is out of range: the module declares 2 types"},

	// Not counts but sizes wazero allocates at instantiation: tables that
	// start big, one alone or several together.
	{"one big table", module(section(secTable, cat(u32(1), []byte{0x70, 0x00}, u32(maxTableEntries+1)))),
		"table section: table 0: the tables start with 10000001 entries together, above the 10000000 the host allows (as web engines do)"},
	{"big tables together", module(
		section(secImport, cat(u32(1), wasmName("env"), wasmName("t"), []byte{0x01, 0x70, 0x00}, u32(6_000_000))),
		section(secTable, cat(u32(1), []byte{0x70, 0x00}, u32(6_000_000)))),
		"table section: table 0: the tables start with 12000000 entries together, above the 10000000 the host allows (as web engines do)"},

	{"imports", module(section(secImport, cat(u32(1000), wasmName("env")))),
		"import section: claims 1000 imports, but only 4 bytes are left to hold them"},
	{"functions", module(section(secFunction, cat(u32(3), []byte{0, 0}))),
		"function section: claims 3 functions, but only 2 bytes are left to hold them"},
	{"globals", module(section(secGlobal, u32(0xffffffff))),
		"global section: claims 4294967295 globals, but only 0 bytes are left to hold them"},
	{"exports", module(section(secExport, u32(1<<20))),
		"export section: claims 1048576 exports, but only 0 bytes are left to hold them"},
	{"element segments", module(section(secElement, u32(1<<20))),
		"element section: claims 1048576 segments, but only 0 bytes are left to hold them"},
	{"bodies", module(section(secCode, u32(1<<20))),
		"code section: claims 1048576 bodies, but only 0 bytes are left to hold them"},
	{"tags", module(section(secTag, u32(1<<20))),
		"tag section: claims 1048576 tags, but only 0 bytes are left to hold them"},
	{"a data segment's bytes", module(section(secData, vec(cat([]byte{0x01}, u32(1<<30), []byte("ab"))))),
		"data section: segment 0: claims 1073741824 bytes, but only 2 bytes are left to hold them"},
	{"an element segment's function indices", module(section(secElement, vec([]byte{0x00, 0x41, 0x00, 0x0b, 0xff, 0xff, 0x03}))),
		"element section: segment 0: claims 65535 function indices, but only 0 bytes are left to hold them"},
	{"an element segment's expressions", module(section(secElement, vec([]byte{0x01, 0x00, 0x00}, []byte{0x05, 0x70, 0xff, 0xff, 0x03}))),
		"element section: segment 1: claims 65535 expressions, but only 0 bytes are left to hold them"},
	{"a function type's parameters", module(section(secType, vec([]byte{0x60, 0xff, 0xff, 0x03, 0x7f}))),
		"type section: type 0: claims 65535 parameters, but only 1 byte is left to hold them"},
	{"a function type's results", module(section(secType, vec([]byte{0x60, 0x00, 0xff, 0xff, 0x03}))),
		"type section: type 0: claims 65535 results, but only 0 bytes are left to hold them"},
	{"a rec group's types", module(section(secType, vec([]byte{0x4e, 0x7f}))),
		"type section: type 0: claims 127 types, but only 0 bytes are left to hold them"},
	{"a body's locals", withCode(cat(u32(6), []byte{0x01, 0xd1, 0x86, 0x03, 0x7f, 0x0b})),
		"code section: body 0 (function 0): declares 50001 locals, above the 50000 that web engines allow"},
	{"a body's locals, summed", module(
		section(secType, vec([]byte{0x60, 0x00, 0x00})),
		section(secImport, vec(cat(wasmName("env"), wasmName("f"), []byte{0x00, 0x00}))),
		section(secCode, vec(body(0x0b), cat(u32(13), []byte{0x02, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x7e, 0x0b})))),
		"code section: body 1 (function 2): declares 8589934590 locals, above the 50000 that web engines allow"},
	{"the module's locals", wideBodies(3),
		fmt.Sprintf("code section: body 1 (function 1): declares 50000 locals, and the bodies before it 50000: above the module's limit of %d (50000 and one per byte of the module)", 50000+len(wideBodies(3)))},
	{"a function type's parameters, past the limit", module(section(secType, vec(cat([]byte{0x60}, u32(1001), bytes.Repeat([]byte{0x7f}, 1001), []byte{0x00})))),
		"type section: type 0: has 1001 parameters, above the 1000 that web engines allow"},
	{"a function type's results, past the limit", module(section(secType, vec(cat([]byte{0x60, 0x00}, u32(1001), bytes.Repeat([]byte{0x7e}, 1001))))),
		"type section: type 0: has 1001 results, above the 1000 that web engines allow"},
	{"a body's groups of locals", withCode(cat(u32(3), []byte{0x7f, 0x00, 0x0b})),
		"code section: body 0 (function 0): claims 127 groups of locals, but only 2 bytes are left to hold them"},
	{"a body's bytes", module(section(secCode, vec(cat(u32(1<<31), []byte{0x00, 0x0b})))),
		"code section: body 0 (function 0): claims 2147483648 bytes of body, but only 2 bytes are left to hold them"},
	{"function names", module(nameSection(subsection(1, u32(1000)))),
		`custom section: subsection 1 (function names): claims 1000 names, but only 0 bytes are left to hold them`},
	{"local names' functions", module(nameSection(subsection(2, u32(1000)))),
		`custom section: subsection 2 (local names): claims 1000 functions, but only 0 bytes are left to hold them`},
	{"a function's local names", module(nameSection(subsection(2, cat(u32(1), u32(3), u32(1000))))),
		`custom section: subsection 2 (local names): function 3: claims 1000 names, but only 0 bytes are left to hold them`},
	{"a name subsection's size", module(nameSection(subsection(1, vec(cat(u32(0), wasmName("f"))))[:2]), section(secCode, vec(body(0x0b)))),
		"custom section: subsection 1: claims 4 bytes, but only 0 bytes are left to hold them"},
	{"a name subsection longer than its content", module(nameSection(subsection(1, []byte{0x00, 0x00}))),
		"custom section: subsection 1 (function names): its size says 2 bytes, but its content takes 1"},
	{"a section's size", module(section(secType, vec()))[:9],
		"type section at offset 8: size: truncated"},
	{"a section past the file's end", module(cat([]byte{secCustom}, u32(1<<30), wasmName("x"))),
		"custom section at offset 8 claims 1073741824 bytes, but only 2 bytes are left in the file"},
	{"a custom section's name", module(section(secCustom, cat(u32(1<<30), []byte("name")))),
		"custom section: claims 1073741824 bytes of name, but only 4 bytes are left to hold them"},
	{"an import's name", module(section(secImport, vec(cat(wasmName("env"), u32(1<<30))))),
		"import section: import 0: claims 1073741824 bytes of name, but only 0 bytes are left to hold them"},
	{"an export's name", module(section(secExport, vec(cat(u32(1<<30), []byte{0x00, 0x00})))),
		"export section: export 0: claims 1073741824 bytes of name, but only 2 bytes are left to hold them"},
	{"a segment past its section's end", module(section(secData, cat(u32(2), []byte{0x01, 0x00}))),
		"data section: segment 1: truncated"},
	{"element segment flags", module(section(secElement, vec([]byte{0x08}))),
		"element section: segment 0: unknown flags 8"},
	{"data segment flags", module(section(secData, vec([]byte{0x03}))),
		"data section: segment 0: unknown flags 3"},
	{"an offset expression", module(section(secData, vec([]byte{0x00, 0x20, 0x00, 0x0b, 0x00}))),
		"data section: segment 0: opcode 0x20 in a constant expression"},
}

// wideBodies is a module of n bodies, each with maxLocals locals.
func wideBodies(n int) []byte {
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = cat(u32(6), []byte{0x01, 0xd0, 0x86, 0x03, 0x7f, 0x0b})
	}
	return withCode(bodies...)
}

func TestCheckCountsRefuses(t *testing.T) {
	for _, tc := range countRefusals {
		err := CheckCounts(tc.wasm)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s:\n got %v\nwant %s", tc.name, err, tc.want)
		}
	}
}

// FuzzCheckCounts feeds CheckCounts guest bytes. It must never panic, and
// for a module it accepts wazero's compilation, of the module and of its
// instrumented copy (which is what plugin.Prepare compiles), must stay
// within a heap bound: 64 MiB and 64 bytes per byte of module.
func FuzzCheckCounts(f *testing.F) {
	f.Add(everyLayout())
	f.Add(spinModule())
	for _, tc := range countRefusals {
		f.Add(tc.wasm)
	}
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	f.Cleanup(func() { r.Close(ctx) })
	f.Fuzz(func(t *testing.T, wasm []byte) {
		if CheckCounts(wasm) != nil {
			return
		}
		compile := func(what string, wasm []byte) {
			limit := 64<<20 + 64*uint64(len(wasm))
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			compiled, err := isolate.Compile(ctx, r, wasm) // as plugin.Prepare compiles
			runtime.ReadMemStats(&after)
			if err == nil {
				compiled.Close(ctx)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > limit {
				t.Fatalf("CheckCounts accepts a module whose %s allocated %d bytes to compile (error %v), above %d", what, n, err, limit)
			}
		}
		compile("original", wasm)
		if patched, err := Instrument(wasm); err == nil {
			compile("instrumented copy", patched)
		}
	})
}

package testenv

import "github.com/airlockhq/airlock/internal/wasmbin"

// Module is a hand-assembled module that speaks airlock's ABI v1, for
// hostile tests that need a shape no compiler emits (a table with no
// maximum grown in a loop, a start section that never returns). Its
// functions are, in order: airlock_abi_v1 (type 0), airlock_on_event
// (type 1, with Handler as its code) and Funcs. Its types are Types
// below, then ExtraTypes.
type Module struct {
	ExtraTypes [][]byte // each a whole function type: 0x60, params, results
	Tables     [][]byte // each a table type: reference type, limits
	// Memory is the memory's limits; nil for one page and no maximum.
	Memory  []byte
	Globals [][]byte // each a whole global: type, mutability, init expression
	Funcs   []Func
	// Start is the function index of the start section; 0 for none
	// (function 0, airlock_abi_v1, is never a start function here).
	Start   uint32
	Elems   [][]byte // each a whole element segment
	Data    [][]byte // each a whole data segment
	Handler []byte   // airlock_on_event's code, with its final end
	// HandlerLocals is airlock_on_event's locals vector, whole; nil for
	// none. Its parameters are locals 0 (kind) and 1 (payload length).
	HandlerLocals []byte
	Exports       []Export // more exports, after the ABI's and Funcs'
}

// Export is one export of a Module: a name, a kind (0 function, 1 table,
// 2 memory, 3 global) and an index.
type Export struct {
	Name  string
	Kind  byte
	Index uint32
}

// Func is one function of a Module past the two the ABI needs.
type Func struct {
	Type   uint32
	Locals []byte // the locals vector, whole; nil for none
	Code   []byte // with its final end
	Export string // "" for none
}

// Types are a Module's first function types.
var Types = [][]byte{
	{0x60, 0x00, 0x00},                   // 0: () -> ()
	{0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f}, // 1: (i32, i32) -> i32
	{0x60, 0x01, 0x7f, 0x01, 0x7f},       // 2: (i32) -> i32
}

// Wasm assembles m.
func (m Module) Wasm() []byte {
	out := []byte("\x00asm\x01\x00\x00\x00")
	sec := func(id byte, items ...[]byte) {
		body := uleb(uint32(len(items)))
		for _, it := range items {
			body = append(body, it...)
		}
		out = append(append(append(out, id), uleb(uint32(len(body)))...), body...)
	}
	sec(1, append(append([][]byte(nil), Types...), m.ExtraTypes...)...)
	funcs := [][]byte{{0}, {1}}
	for _, f := range m.Funcs {
		funcs = append(funcs, uleb(f.Type))
	}
	sec(3, funcs...)
	if len(m.Tables) > 0 {
		sec(4, m.Tables...)
	}
	mem := m.Memory
	if mem == nil {
		mem = []byte{0x00, 0x01}
	}
	sec(5, mem)
	if len(m.Globals) > 0 {
		sec(6, m.Globals...)
	}
	export := func(name string, kind byte, idx uint32) []byte {
		return append(append(append(uleb(uint32(len(name))), name...), kind), uleb(idx)...)
	}
	exports := [][]byte{export("memory", 2, 0), export("airlock_abi_v1", 0, 0), export("airlock_on_event", 0, 1)}
	for i, f := range m.Funcs {
		if f.Export != "" {
			exports = append(exports, export(f.Export, 0, uint32(i+2)))
		}
	}
	for _, e := range m.Exports {
		exports = append(exports, export(e.Name, e.Kind, e.Index))
	}
	sec(7, exports...)
	if m.Start != 0 {
		out = append(append(out, 8), uleb(uint32(len(uleb(m.Start))))...)
		out = append(out, uleb(m.Start)...)
	}
	if len(m.Elems) > 0 {
		sec(9, m.Elems...)
	}
	body := func(locals, code []byte) []byte {
		if locals == nil {
			locals = []byte{0}
		}
		b := append(append([]byte(nil), locals...), code...)
		return append(uleb(uint32(len(b))), b...)
	}
	bodies := [][]byte{body(nil, []byte{0x0b}), body(m.HandlerLocals, m.Handler)}
	for _, f := range m.Funcs {
		bodies = append(bodies, body(f.Locals, f.Code))
	}
	sec(10, bodies...)
	if len(m.Data) > 0 {
		sec(11, m.Data...)
	}
	return out
}

// ULEB is v as an unsigned LEB128, for immediates in hand-written code.
func ULEB(v uint32) []byte { return wasmbin.AppendU32(nil, v) }

// SLEB is v as a signed LEB128, for i32.const.
func SLEB(v int32) []byte { return wasmbin.AppendS32(nil, v) }

// Reference types, for Table and the grow helpers.
const (
	Funcref   = 0x70
	Externref = 0x6f
)

// NoMax is a table's or a memory's limits: min, and no maximum.
func NoMax(min uint32) []byte { return append([]byte{0x00}, ULEB(min)...) }

// Table is a table type of reference type ref with limits.
func Table(ref byte, limits []byte) []byte { return append([]byte{ref}, limits...) }

// LoopLocal is the locals vector GrowLoop needs in a handler: one i32,
// local 2, after the handler's two parameters.
var LoopLocal = []byte{0x01, 0x01, 0x7f}

// GrowLoop is code that grows table t (of reference type ref) by delta
// entries, up to times times or until table.grow fails (-1), counting in
// local 2.
func GrowLoop(t uint32, ref byte, delta, times int32) []byte {
	c := []byte{0x02, 0x40, 0x03, 0x40, 0xd0, ref, 0x41}
	c = append(c, SLEB(delta)...)
	c = append(append(c, 0xfc, 0x0f), ULEB(t)...)
	c = append(c, 0x41, 0x7f, 0x46, 0x0d, 0x01) // i32.const -1; i32.eq; br_if 1
	c = append(c, 0x20, 0x02, 0x41, 0x01, 0x6a, 0x22, 0x02, 0x41)
	c = append(c, SLEB(times)...)
	return append(c, 0x49, 0x0d, 0x00, 0x0b, 0x0b) // i32.lt_u; br_if 0; end; end
}

// Grow is code that grows table t (of reference type ref) by delta
// entries once, and drops the result.
func Grow(t uint32, ref byte, delta int32) []byte {
	c := append([]byte{0xd0, ref, 0x41}, SLEB(delta)...)
	return append(append(append(c, 0xfc, 0x0f), ULEB(t)...), 0x1a)
}

// MemoryGrow is code that grows memory by pages and leaves the result.
func MemoryGrow(pages int32) []byte {
	return append(append([]byte{0x41}, SLEB(pages)...), 0x40, 0x00)
}

// Return0 ends a handler: i32.const 0; end.
var Return0 = []byte{0x41, 0x00, 0x0b}

// Spin is a body of type () -> () that never returns: loop br 0 end, end.
var Spin = []byte{0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b}

// Code joins pieces of code.
func Code(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

package wasmbin

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// InterruptExport is the name under which Instrument exports the interrupt
// flag. The colon keeps it out of every source language's identifiers, so a
// guest's own export cannot collide with it by accident; a module that
// exports it anyway is not instrumented, and plugin.Prepare falls back to
// wazero's checks for it.
const InterruptExport = "airlock:interrupt"

// BudgetExport is the mutable i64 global, added by Instrument, that holds
// the bytes the guest's linear memory and tables may take together: the
// host sets it to limits.memory before any guest code runs. It starts at
// 0, which lets nothing grow.
const BudgetExport = "airlock:budget"

// OverExport is the mutable i64 global, added by Instrument, in which a
// table.grow past the budget leaves the entries the tables would have had,
// before it traps.
const OverExport = "airlock:over"

// StackExport and StackLimitExport are the mutable i32 globals, added by
// Instrument, that count the bytes of the guest's call stack (frameBase and
// frameSlot a frame) and hold their limit, which the host sets before any
// guest code runs (0 lets no call through). A call past the limit traps
// with the count above it.
const (
	StackExport      = "airlock:stack"
	StackLimitExport = "airlock:stack_limit"
)

// StartExport is the name under which Instrument exports the module's start
// function, whose start section it removes: wazero would run it inside
// instantiation, before the host has the instance to stop, so the host
// calls it itself, under the watchdog, right after.
const StartExport = "airlock:start"

// yieldEvery is how many checks a guest passes between trips to Go. Native
// code cannot be preempted: a guest that never leaves it would hold its
// thread through a garbage collector's stop-the-world, and so stall the
// whole host (the watchdog's timer included). Every yieldEvery checks the
// guest runs memory.grow(0), which wazero carries out in Go, where the
// scheduler and the collector can stop it. At a few nanoseconds per check
// that is a trip every few tens of microseconds in the tightest loop, and
// about 1% of its time (BenchmarkLoop).
const yieldEvery = 8192

// InstrumentVersion names Instrument's output in
// plugin.Options.InstrumentCache, whose entries plugin.Prepare uses without
// running CheckCounts or Instrument again. Bump it whenever Instrument's
// output changes, or Instrument or CheckCounts comes to refuse a module it
// accepted: entries made by the old code are then no longer found. A
// refusal of modules that wazero never compiles (typeIndex's) needs no
// bump: the cache holds only modules that wazero compiled.
const InstrumentVersion = 3

// Instrument returns a copy of the module wasm that the watchdog can stop
// without wazero's WithCloseOnContextDone. It appends two mutable i32
// globals, a countdown and the interrupt flag (exported as
// InterruptExport), and puts a check at the entry of every function and the
// head of every loop:
//
//	countdown -= 1
//	if countdown <= 0 {
//	    countdown = yieldEvery
//	    drop(memory.grow(0))        // a trip through Go
//	    if interrupt { unreachable }
//	}
//
// Any code that runs for long passes a check often: without a loop or a
// call there is no way to run more than the body's length. The watchdog
// sets the flag, and the guest traps at its next trip through Go, within
// yieldEvery checks. A module with no memory gets an empty one for
// memory.grow.
//
// This replaces wazero's own checks, which cost a goroutine per call and a
// trip through Go at every loop iteration (host/RATIONALE.md). It needs to
// walk every instruction, so it refuses what it does not know (an opcode
// outside the features wazero 1.12 supports, a malformed body) with an
// error, and the caller falls back to wazero's mechanism. Validation stays
// with wazero, which compiles the result; Instrument checks only what it
// relies on: every body ends where its size says, with its blocks balanced,
// and no guest instruction names a global it adds.
func Instrument(wasm []byte) ([]byte, error) {
	if len(wasm) < 8 || !bytes.Equal(wasm[:4], []byte("\x00asm")) || binary.LittleEndian.Uint32(wasm[4:8]) != 1 {
		return nil, errors.New("not a WebAssembly 1.0 binary module")
	}
	type section struct {
		id   byte
		body []byte
	}
	var sections []section
	r := &reader{b: wasm, pos: 8}
	last := -1
	for r.pos < len(r.b) {
		id := r.byte()
		size := r.u32()
		if r.err != nil || uint64(len(r.b)-r.pos) < uint64(size) {
			return nil, fmt.Errorf("section %d at offset %d: truncated", id, r.pos)
		}
		// Sections out of order or repeated would make the ones added
		// below ambiguous; wazero refuses such a module anyway.
		if id != secCustom {
			if order(id) <= last || order(id) == len(sectionOrder) {
				return nil, fmt.Errorf("section %d at offset %d: out of order, repeated or unknown", id, r.pos)
			}
			last = order(id)
		}
		sections = append(sections, section{id, r.b[r.pos : r.pos+int(size)]})
		r.pos += int(size)
	}

	// The new globals' indices follow the existing globals: imported ones
	// first, then those the module defines; the helpers' follow the
	// functions, and their types the types.
	var globals, funcs, types uint32
	var tables []byte // each table's reference type, imported ones first
	hasMemory, hasStart, hasTypes, hasFuncs := false, false, false, false
	var fi frameInfo
	var start uint32
	for _, s := range sections {
		var n uint32
		var err error
		switch s.id {
		case secImport:
			var im imports
			im, err = countImports(s.body)
			n, funcs, tables = im.globals, funcs+im.funcs, append(tables, im.tables...)
			hasMemory = hasMemory || im.memories > 0
		case secType:
			fi.types, err = parseTypes(s.body)
			types, hasTypes, n = uint32(len(fi.types)), true, 0
		case secFunction:
			fi.funcs, err = parseFuncs(s.body)
			funcs, hasFuncs, n = funcs+uint32(len(fi.funcs)), true, 0
		case secTable:
			var ts []byte
			ts, err = tableTypes(s.body)
			tables = append(tables, ts...)
		case secGlobal:
			n, err = (&reader{b: s.body}).count()
		case secMemory:
			var mems uint32
			mems, err = (&reader{b: s.body}).count()
			hasMemory = hasMemory || mems > 0
		case secStart:
			r := &reader{b: s.body}
			start, hasStart = r.u32(), true
			if err = r.err; err == nil && r.pos != len(r.b) {
				err = errors.New("bytes after the function index")
			}
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", s.id, err)
		}
		globals += n
	}
	added := addedGlobals{countdown: globals, flag: globals + 1, budget: globals + 2, over: globals + 3, stack: globals + 4, stackLimit: globals + 5}
	check := checkCode(added.countdown, added.flag)
	grow := &growHelpers{first: funcs, tables: tables, index: map[int64]uint32{}}
	fi.baseTypes, fi.grow, fi.g = types, grow, added

	// The code goes first: it says which helpers the other sections get.
	var code []byte
	for _, s := range sections {
		if s.id == secCode {
			var err error
			if code, err = instrumentCode(s.body, check, added.countdown, grow, &fi); err != nil {
				return nil, err
			}
		}
	}
	helpers := grow.bodies(added)
	if len(helpers) > 0 && (!hasTypes || !hasFuncs) {
		return nil, errors.New("the module grows a memory or a table but has no type or function section")
	}

	out := append([]byte(nil), wasm[:8]...)
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = AppendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	exports := appendAddedExports(added, hasStart, start)
	// Sections come in a fixed order; one that Instrument needs and the
	// module lacks goes where the order puts it.
	placed := map[byte]bool{secMemory: hasMemory}
	place := func(before byte) {
		for _, id := range []byte{secMemory, secGlobal, secExport} {
			if placed[id] || order(id) >= order(before) {
				continue
			}
			placed[id] = true
			switch id {
			case secMemory:
				emit(secMemory, []byte{0x01, 0x01, 0x00, 0x00}) // one memory, min 0, max 0
			case secGlobal:
				emit(secGlobal, appendGlobals(nil, 0, nil))
			case secExport:
				emit(secExport, append(AppendU32(nil, exports.n), exports.b...))
			}
		}
	}
	for _, s := range sections {
		if s.id != secCustom {
			place(s.id)
		}
		switch s.id {
		case secType:
			r := &reader{b: s.body}
			n, err := r.count()
			if err != nil {
				return nil, fmt.Errorf("type section: %w", err)
			}
			body := AppendU32(nil, n+uint32(len(grow.types)))
			body = append(body, r.b[r.pos:]...)
			for _, t := range grow.types {
				body = append(body, t...)
			}
			emit(secType, body)
		case secFunction:
			r := &reader{b: s.body}
			n, err := r.count()
			if err != nil {
				return nil, fmt.Errorf("function section: %w", err)
			}
			body := AppendU32(nil, n+uint32(len(helpers)))
			body = append(body, r.b[r.pos:]...)
			for _, h := range helpers {
				body = AppendU32(body, types+h.typ)
			}
			emit(secFunction, body)
		case secMemory:
			placed[secMemory] = true
			emit(s.id, s.body)
		case secGlobal:
			placed[secGlobal] = true
			r := &reader{b: s.body}
			n, err := r.count()
			if err != nil {
				return nil, fmt.Errorf("global section: %w", err)
			}
			entries := r.b[r.pos:]
			if err := skipGlobals(r, n); err != nil {
				return nil, err
			}
			emit(secGlobal, appendGlobals(nil, n, entries))
		case secExport:
			placed[secExport] = true
			r := &reader{b: s.body}
			n, err := r.count()
			if err != nil {
				return nil, fmt.Errorf("export section: %w", err)
			}
			entries := r.b[r.pos:]
			if err := noExport(r, n, ReservedExports...); err != nil {
				return nil, err
			}
			emit(secExport, append(append(AppendU32(nil, n+exports.n), entries...), exports.b...))
		case secStart:
			// Dropped: the host calls the start function itself, under
			// the watchdog, once the instance exists (StartExport).
		case secCode:
			r := &reader{b: code}
			n, _ := r.count()
			body := AppendU32(nil, n+uint32(len(helpers)))
			body = append(body, r.b[r.pos:]...)
			for _, h := range helpers {
				body = AppendU32(body, uint32(len(h.code)))
				body = append(body, h.code...)
			}
			emit(secCode, body)
		default:
			emit(s.id, s.body)
		}
	}
	place(0xff) // after everything: order(0xff) is past the end
	return out, nil
}

// checkCode is the check Instrument inserts, as wasm code.
func checkCode(countdown, flag uint32) []byte {
	c := AppendU32(nil, countdown)
	var b []byte
	b = append(append(append(b, opGlobalGet), c...), 0x41, 0x01, 0x6b) // countdown - 1
	b = append(append(b, opGlobalSet), c...)
	b = append(append(b, opGlobalGet), c...)
	b = append(b, 0x41, 0x00, 0x4c, opIf, blockEmpty) // <= 0: if
	b = AppendS32(append(b, 0x41), yieldEvery)
	b = append(append(b, opGlobalSet), c...)
	b = append(b, 0x41, 0x00, 0x40, 0x00, 0x1a) // drop(memory.grow(0))
	b = append(AppendU32(append(b, opGlobalGet), flag), opIf, blockEmpty, opUnreachable, opEnd)
	return append(b, opEnd)
}

const (
	secCustom = 0
	secImport = 2
	secMemory = 5
	secGlobal = 6
	secExport = 7
	secStart  = 8
	secCode   = 10

	opUnreachable = 0x00
	opIf          = 0x04
	opEnd         = 0x0b
	opGlobalGet   = 0x23
	opGlobalSet   = 0x24
	opMemoryGrow  = 0x40
	opReturn      = 0x0f
	blockEmpty    = 0x40
)

// order is a section's rank in the order the spec requires (the tag
// section, 13, sits between memory and global; data count, 12, before code).
func order(id byte) int {
	for i, s := range sectionOrder {
		if s == id {
			return i
		}
	}
	return len(sectionOrder)
}

var sectionOrder = []byte{1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11}

// appendGlobals appends a global section of n existing entries (rest) plus
// those Instrument adds (addedGlobals): the countdown (starting at
// yieldEvery) and the interrupt flag (0), mutable i32s, then the budget (0
// until the host sets it) and the over mark (0), mutable i64s, then the
// stack count and its limit (0 until the host sets it), mutable i32s.
func appendGlobals(b []byte, n uint32, rest []byte) []byte {
	b = AppendU32(b, n+6)
	b = append(b, rest...)
	b = AppendS32(append(b, 0x7f, 0x01, 0x41), yieldEvery)
	b = append(b, opEnd, 0x7f, 0x01, 0x41, 0x00, opEnd)
	b = append(b, 0x7e, 0x01, 0x42, 0x00, opEnd, 0x7e, 0x01, 0x42, 0x00, opEnd)
	return append(b, 0x7f, 0x01, 0x41, 0x00, opEnd, 0x7f, 0x01, 0x41, 0x00, opEnd)
}

// addedGlobals are the indices of the globals Instrument adds.
type addedGlobals struct{ countdown, flag, budget, over, stack, stackLimit uint32 }

// exportList is the entries of an export section, counted.
type exportList struct {
	n uint32
	b []byte
}

func (e *exportList) add(name string, kind byte, idx uint32) {
	e.n++
	e.b = AppendU32(e.b, uint32(len(name)))
	e.b = append(e.b, name...)
	e.b = AppendU32(append(e.b, kind), idx)
}

// appendAddedExports lists the exports Instrument adds: the interrupt flag,
// the budget and the over mark, and the start function if the module has
// one.
func appendAddedExports(g addedGlobals, hasStart bool, start uint32) exportList {
	var out exportList
	out.add(InterruptExport, 0x03, g.flag)
	out.add(BudgetExport, 0x03, g.budget)
	out.add(OverExport, 0x03, g.over)
	out.add(StackExport, 0x03, g.stack)
	out.add(StackLimitExport, 0x03, g.stackLimit)
	if hasStart {
		out.add(StartExport, 0x00, start)
	}
	return out
}

// ReservedExports are the names Instrument exports: its globals, then
// StartExport.
var ReservedExports = []string{InterruptExport, BudgetExport, OverExport, StackExport, StackLimitExport, StartExport}

// noExport refuses an export section that already has one of names, or
// that has bytes after its n entries: the entries Instrument appends would
// be read from them.
func noExport(r *reader, n uint32, names ...string) error {
	for range n {
		got := r.name()
		r.byte()
		r.u32()
		if r.err != nil {
			return fmt.Errorf("export section: %w", r.err)
		}
		for _, name := range names {
			if got == name {
				return fmt.Errorf("the module exports %q, a name the host reserves", name)
			}
		}
	}
	if r.pos != len(r.b) {
		return errors.New("export section: bytes after the last entry")
	}
	return nil
}

// skipGlobals reads a global section's n entries and refuses bytes after
// them, where the globals Instrument appends would be read from.
func skipGlobals(r *reader, n uint32) error {
	for range n {
		r.valtypeGC()
		r.byte() // mutability
		r.constExpr()
		if r.err != nil {
			return fmt.Errorf("global section: %w", r.err)
		}
	}
	if r.pos != len(r.b) {
		return errors.New("global section: bytes after the last entry")
	}
	return nil
}

// imports is what Instrument needs to know of an import section.
type imports struct {
	globals, memories, funcs uint32
	tables                   []byte // each table's reference type
}

// countImports counts the global, memory and function imports of an import
// section, and lists its tables' reference types.
func countImports(b []byte) (im imports, err error) {
	r := &reader{b: b}
	n, err := r.count()
	if err != nil {
		return im, err
	}
	for range n {
		r.name()
		r.name()
		switch kind := r.byte(); kind {
		case 0x00: // func: type index
			r.u32()
			im.funcs++
		case 0x01: // table: reftype, limits
			im.tables = append(im.tables, r.tableRef())
			r.limits()
		case 0x02: // memory: limits
			r.limits()
			im.memories++
		case 0x03: // global: valtype, mutability
			r.byte()
			r.byte()
			im.globals++
		case 0x04: // tag: attribute, type index
			r.byte()
			r.u32()
		default:
			return im, fmt.Errorf("import of unknown kind 0x%02x", kind)
		}
		if r.err != nil {
			return im, r.err
		}
	}
	return im, nil
}

// tableRef reads a table's reference type: funcref or externref, the
// ones a helper of growHelpers can take.
func (r *reader) tableRef() byte {
	t := r.byte()
	if t != 0x70 && t != 0x6f {
		r.fail(fmt.Sprintf("table of reference type 0x%02x", t))
	}
	return t
}

// tableTypes lists the reference types of a table section's tables.
func tableTypes(b []byte) ([]byte, error) {
	r := &reader{b: b}
	n, err := r.count()
	if err != nil {
		return nil, err
	}
	var out []byte
	for range n {
		out = append(out, r.tableRef())
		r.limits()
		if r.err != nil {
			return nil, r.err
		}
	}
	return out, nil
}

// growHelpers are the functions Instrument adds for the guest's
// memory.grow and table.grow, which it rewrites into calls of them, so
// that linear memory and tables together stay within the plugin's budget
// (limits.memory, in BudgetExport). Their indices follow the module's
// functions, in the order the code first needs them; their types follow
// the module's types. A memory.grow past the budget fails as the spec
// lets it (-1, which a guest's allocator reports as out of memory); a
// table.grow past it traps, with the entries it asked for in OverExport,
// so that the host can say which limit it hit (host/RATIONALE.md).
type growHelpers struct {
	first  uint32           // the index of the first helper: the module's function count
	tables []byte           // each table's reference type, by table index
	index  map[int64]uint32 // a helper's function index, by table index (-1 for memory)
	order  []int64
	types  [][]byte // the helpers' types, appended to the module's
	typeOf map[string]uint32
}

// call returns the index of the helper for memory.grow (table -1) or the
// table.grow of table.
func (g *growHelpers) call(table int64) (uint32, error) {
	if table >= int64(len(g.tables)) {
		return 0, fmt.Errorf("table.grow of table %d, which does not exist", table)
	}
	if i, ok := g.index[table]; ok {
		return i, nil
	}
	i := g.first + uint32(len(g.order))
	g.index[table] = i
	g.order = append(g.order, table)
	return i, nil
}

// typ returns the index, among the added types, of the function type t.
func (g *growHelpers) typ(t ...byte) uint32 {
	if g.typeOf == nil {
		g.typeOf = map[string]uint32{}
	}
	if i, ok := g.typeOf[string(t)]; ok {
		return i
	}
	i := uint32(len(g.types))
	g.typeOf[string(t)] = i
	g.types = append(g.types, t)
	return i
}

// helper is one added function: its type, among the added types, and its
// body (locals and code).
type helper struct {
	typ  uint32
	code []byte
}

// bodies returns the helpers the code called, then the one they share
// that counts the tables' entries. None if the code grows nothing.
func (g *growHelpers) bodies(a addedGlobals) []helper {
	if len(g.order) == 0 {
		return nil
	}
	entries := AppendU32([]byte{0x10}, g.first+uint32(len(g.order))) // call $entries
	memBytes := []byte{0x3f, 0x00, 0xad, 0x42, 0x10, 0x86}           // memory.size, as an i64, << 16
	budget := AppendU32([]byte{opGlobalGet}, a.budget)
	var out []helper
	for _, t := range g.order {
		var c []byte
		if t < 0 {
			// delta << 16 + memory + entries << 3 > budget ? -1 : memory.grow(delta)
			c = append(c, 0x00, 0x20, 0x00, 0xad, 0x42, 0x10, 0x86)
			c = append(append(c, memBytes...), 0x7c)
			c = append(append(c, entries...), 0x42, 0x03, 0x86, 0x7c)
			c = append(append(c, budget...), 0x56)
			c = append(c, opIf, 0x7f, 0x41, 0x7f, 0x05, 0x20, 0x00, 0x40, 0x00, opEnd, opEnd)
			out = append(out, helper{g.typ(0x60, 0x01, 0x7f, 0x01, 0x7f), c})
			continue
		}
		// over = delta + entries; if over << 3 + memory > budget:
		// unreachable; over = 0; table.grow(ref, delta)
		c = append(c, 0x00, 0x20, 0x01, 0xad)
		c = append(append(c, entries...), 0x7c)
		c = AppendU32(append(c, opGlobalSet), a.over)
		c = AppendU32(append(c, opGlobalGet), a.over)
		c = append(c, 0x42, 0x03, 0x86)
		c = append(append(c, memBytes...), 0x7c)
		c = append(append(c, budget...), 0x56)
		c = append(c, opIf, blockEmpty, opUnreachable, opEnd)
		c = AppendU32(append(c, 0x42, 0x00, opGlobalSet), a.over)
		c = AppendU32(append(c, 0x20, 0x00, 0x20, 0x01, 0xfc, 0x0f), uint32(t))
		c = append(c, opEnd)
		out = append(out, helper{g.typ(0x60, 0x02, g.tables[t], 0x7f, 0x01, 0x7f), c})
	}
	// $entries: the sum of every table's size, as an i64.
	c := []byte{0x00, 0x42, 0x00}
	for t := range g.tables {
		c = append(AppendU32(append(c, 0xfc, 0x10), uint32(t)), 0xad, 0x7c)
	}
	return append(out, helper{g.typ(0x60, 0x00, 0x01, 0x7e), append(c, opEnd)})
}

// instrumentCode rewrites a code section: check goes after each body's
// locals and after each loop's block type, and each memory.grow and
// table.grow becomes a call of its helper in grow.
func instrumentCode(sec []byte, check []byte, firstAdded uint32, grow *growHelpers, frames *frameInfo) ([]byte, error) {
	r := &reader{b: sec}
	n, err := r.count()
	if err != nil {
		return nil, fmt.Errorf("code section: %w", err)
	}
	out := AppendU32(make([]byte, 0, len(sec)+int(n)*2*len(check)), n)
	var body []byte
	for i := range n {
		size := r.u32()
		if r.err != nil || uint64(len(r.b)-r.pos) < uint64(size) {
			return nil, fmt.Errorf("code section: body %d: truncated", i)
		}
		fn := &reader{b: r.b[r.pos : r.pos+int(size)]}
		r.pos += int(size)
		f, err := frames.of(i)
		if err != nil {
			return nil, fmt.Errorf("code section: body %d: %w", i, err)
		}
		body, err = instrumentBody(body[:0], fn, check, firstAdded, grow, f)
		if err != nil {
			return nil, fmt.Errorf("code section: body %d: %w", i, err)
		}
		out = AppendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	if r.pos != len(r.b) {
		return nil, errors.New("code section: bytes after the last body")
	}
	return out, nil
}

func instrumentBody(out []byte, r *reader, check []byte, firstAdded uint32, grow *growHelpers, f frame) ([]byte, error) {
	groups, err := r.count()
	if err != nil {
		return nil, err
	}
	slots := uint64(f.params)
	for range groups {
		n := uint64(r.u32())
		if r.pos < len(r.b) && r.b[r.pos] == 0x7b { // v128: two slots
			n *= 2
		}
		r.valtype()
		slots += n
	}
	if r.err != nil {
		return nil, fmt.Errorf("locals: %w", r.err)
	}
	out = append(out, r.b[:r.pos]...)
	out = append(out, check...)
	// The frame's cost goes on the stack count, checked against its
	// limit, and comes off as the function returns: the body runs inside
	// a block whose end takes it off, each return becomes a branch to
	// that block, and a branch to the function's label now goes to it.
	cost := frameBase + frameSlot*min(slots, 1<<24)
	out = pushFrame(out, f.g, uint32(cost))
	out = append(append(out, 0x02), f.block...)
	// The body is copied in runs, from the last insertion to the next:
	// instructions are a few bytes each, and a copy per instruction would
	// cost more than decoding them.
	from := r.pos
	depth := 0
	for r.pos < len(r.b) {
		start := r.pos
		op := r.byte()
		switch op {
		case 0x02, 0x04: // block, if
			r.s33()
			depth++
		case 0x03: // loop
			r.s33()
			depth++
			out = append(out, r.b[from:r.pos]...)
			out = append(out, check...)
			from = r.pos
		case 0x1f: // try_table: block type, catch clauses
			r.s33()
			for range r.count1() {
				switch r.byte() {
				case 0x00, 0x01: // catch, catch_ref: tag, label
					r.u32()
					r.u32()
				case 0x02, 0x03: // catch_all, catch_all_ref: label
					r.u32()
				default:
					r.fail("unknown catch clause")
				}
			}
			depth++
		case opEnd:
			depth--
			if depth < 0 {
				if r.pos != len(r.b) {
					return nil, fmt.Errorf("offset %d: code after the function's end", r.pos)
				}
				out = append(out, r.b[from:]...) // its end closes the block
				return append(popFrame(out, f.g, uint32(cost)), opEnd), nil
			}
		case opReturn:
			out = append(out, r.b[from:start]...)
			out = AppendU32(append(out, 0x0c), uint32(depth)) // br to the block
			from = r.pos
		case opGlobalGet, opGlobalSet:
			if idx := r.u32(); r.err == nil && idx >= firstAdded {
				return nil, fmt.Errorf("offset %d: global %d does not exist", start, idx)
			}
		case opMemoryGrow, 0xfc:
			table := int64(-1) // memory.grow
			if op == 0xfc {
				if sub := r.u32(); sub != 15 || r.err != nil {
					r.misc(sub)
					break
				}
				table = int64(r.u32()) // table.grow
			} else if mem := r.u32(); mem != 0 && r.err == nil {
				return nil, fmt.Errorf("offset %d: memory.grow of memory %d", start, mem)
			}
			if r.err != nil {
				break
			}
			f, err := grow.call(table)
			if err != nil {
				return nil, fmt.Errorf("offset %d: %w", start, err)
			}
			out = append(out, r.b[from:start]...)
			out = AppendU32(append(out, 0x10), f) // call
			from = r.pos
		default:
			r.immediates(op)
		}
		if r.err != nil {
			return nil, fmt.Errorf("offset %d: opcode 0x%02x: %w", start, op, r.err)
		}
	}
	return nil, errors.New("the body has no final end")
}

// frameBase and frameSlot are what Instrument counts for a frame of the
// guest's call stack: a base, and a slot for each parameter and local (two
// for a v128). wazero 1.12's frames measured about 41 bytes with none and
// 9.4 bytes a slot with 1000 i64 locals; the count is above both.
const (
	frameBase = 64
	frameSlot = 16
)

// frame is what instrumentBody needs to know of a function beyond its
// body: its parameters, the block type of its results, and the globals.
type frame struct {
	params uint32
	block  []byte
	g      addedGlobals
}

// frameInfo finds the frame of each body from the type and function
// sections.
type frameInfo struct {
	types     []fnType // by type index
	funcs     []uint32 // the type index of each defined function
	baseTypes uint32   // the module's type count, where added types start
	grow      *growHelpers
	g         addedGlobals
}

// fnType is a function type: its parameter count and its result types.
type fnType struct {
	params  uint32
	results []byte
}

// of returns the frame of body i.
func (fi *frameInfo) of(i uint32) (frame, error) {
	if uint64(i) >= uint64(len(fi.funcs)) || uint64(fi.funcs[i]) >= uint64(len(fi.types)) {
		return frame{}, errors.New("no function or type for the body")
	}
	t := fi.types[fi.funcs[i]]
	f := frame{params: t.params, g: fi.g}
	switch len(t.results) {
	case 0:
		f.block = []byte{blockEmpty}
	case 1:
		f.block = t.results
	default:
		idx := fi.grow.typ(append(append([]byte{0x60, 0x00}, AppendU32(nil, uint32(len(t.results)))...), t.results...)...)
		f.block = AppendS32(nil, int32(fi.baseTypes+idx))
	}
	return f, nil
}

// parseTypes reads a type section's function types. It refuses a
// recursive group or a reference type of more than one byte, which
// wazero 1.12 refuses without the GC feature the host does not enable.
func parseTypes(b []byte) ([]fnType, error) {
	r := &reader{b: b}
	n, err := r.count()
	if err != nil {
		return nil, err
	}
	var out []fnType
	for range n {
		if r.byte() != 0x60 {
			return nil, errors.New("not a function type")
		}
		var t fnType
		t.params, _ = r.count()
		for range t.params {
			r.valtype()
		}
		results, _ := r.count()
		start := r.pos
		for range results {
			r.valtype()
		}
		if r.err != nil {
			return nil, r.err
		}
		t.results = r.b[start:r.pos]
		out = append(out, t)
	}
	return out, nil
}

// parseFuncs reads a function section's type indices.
func parseFuncs(b []byte) ([]uint32, error) {
	r := &reader{b: b}
	n, err := r.count()
	if err != nil {
		return nil, err
	}
	out := make([]uint32, 0, n)
	for range n {
		out = append(out, r.u32())
	}
	return out, r.err
}

// pushFrame appends the code that counts a frame of cost on the stack and
// traps past its limit, leaving the count above the limit for the host to
// see.
func pushFrame(out []byte, g addedGlobals, cost uint32) []byte {
	out = AppendU32(append(out, opGlobalGet), g.stack)
	out = AppendS32(append(out, 0x41), int32(cost))
	out = AppendU32(append(out, 0x6a, opGlobalSet), g.stack) // i32.add
	out = AppendU32(append(out, opGlobalGet), g.stack)
	out = AppendU32(append(out, opGlobalGet), g.stackLimit)
	return append(out, 0x4b, opIf, blockEmpty, opUnreachable, opEnd) // i32.gt_u
}

// popFrame appends the code that takes a frame of cost off the stack.
func popFrame(out []byte, g addedGlobals, cost uint32) []byte {
	out = AppendU32(append(out, opGlobalGet), g.stack)
	out = AppendS32(append(out, 0x41), int32(cost))
	return AppendU32(append(out, 0x6b, opGlobalSet), g.stack) // i32.sub
}

// reader decodes the parts of a module Instrument needs. The first error
// sticks: later reads return zero values, and callers check err once.
type reader struct {
	b   []byte
	pos int
	err error
}

func (r *reader) fail(msg string) {
	if r.err == nil {
		r.err = errors.New(msg)
	}
	r.pos = len(r.b)
}

func (r *reader) byte() byte {
	if r.pos >= len(r.b) {
		r.fail("truncated")
		return 0
	}
	c := r.b[r.pos]
	r.pos++
	return c
}

func (r *reader) skip(n int) {
	if len(r.b)-r.pos < n {
		r.fail("truncated")
		return
	}
	r.pos += n
}

// leb reads an unsigned LEB128 of at most maxBytes bytes.
func (r *reader) leb(maxBytes int) uint64 {
	var v uint64
	for i := 0; i < maxBytes; i++ {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v
		}
	}
	r.fail("LEB128 number too long")
	return 0
}

func (r *reader) u32() uint32 {
	v := r.leb(5)
	if v > 0xffffffff {
		r.fail("number out of range")
		return 0
	}
	return uint32(v)
}

// s33 skips a block type: empty, a value type or a type index.
func (r *reader) s33() { r.leb(5) }

// count reads a vector's length, refusing one that the bytes left cannot
// hold (every element takes at least one byte).
func (r *reader) count() (uint32, error) {
	n := r.u32()
	if r.err == nil && uint64(n) > uint64(len(r.b)-r.pos) {
		r.fail("vector longer than its section")
	}
	if r.err != nil {
		return 0, r.err // a loop over the count must not run billions of times
	}
	return n, nil
}

// count1 is count inside an instruction walk, where the error sticks.
func (r *reader) count1() uint32 {
	n, _ := r.count()
	return n
}

func (r *reader) name() string {
	n := r.u32()
	if r.err != nil || uint64(n) > uint64(len(r.b)-r.pos) {
		r.fail("truncated name")
		return ""
	}
	s := string(r.b[r.pos : r.pos+int(n)])
	r.pos += int(n)
	return s
}

// limits walks a table's or a memory's limits and returns the minimum.
func (r *reader) limits() (minimum uint32) {
	flags := r.byte()
	minimum = r.u32()
	if flags&0x01 != 0 {
		r.u32()
	}
	if flags&^0x03 != 0 {
		r.fail("memory64 or unknown limits")
	}
	return minimum
}

func (r *reader) valtype() {
	switch r.byte() {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f, 0x69: // i32 i64 f32 f64 v128 funcref externref exnref
	default:
		r.fail("unknown value type")
	}
}

func (r *reader) memarg() {
	if align := r.u32(); align&0x40 != 0 { // multi-memory: a memory index follows
		r.u32()
	}
	r.leb(10)
}

// immediates skips the immediates of op, one of the opcodes wazero 1.12
// accepts, other than the block, loop, end and global ones that
// instrumentBody handles itself.
func (r *reader) immediates(op byte) {
	switch immediateKinds[op] {
	case immNone:
	case immIndex:
		r.u32()
	case immTwoIndices:
		r.u32()
		r.u32()
	case immMemarg:
		r.memarg()
	case immI32:
		r.leb(5)
	case immI64:
		r.leb(10)
	case immF32:
		r.skip(4)
	case immF64:
		r.skip(8)
	case immBrTable:
		for range r.count1() {
			r.u32()
		}
		r.u32()
	case immSelectTypes:
		for range r.count1() {
			r.valtype()
		}
	case immHeapType:
		r.s33()
	case immMisc:
		r.misc(r.u32())
	case immSIMD:
		r.simd(r.byte())
	case immAtomic:
		r.atomic(r.byte())
	default:
		r.fail("unknown opcode")
	}
}

// The kinds of immediates an opcode takes, looked up by a table: the walk
// decodes every instruction of every body on each load, and a switch of
// ranges costs more than the rest of it.
const (
	immUnknown = iota
	immNone
	immIndex       // one u32: a label, function, local, table or memory index
	immTwoIndices  // call_indirect and return_call_indirect: type, table
	immMemarg      // loads and stores
	immI32         // i32.const
	immI64         // i64.const
	immF32         // f32.const
	immF64         // f64.const
	immBrTable     // br_table: labels, then the default
	immSelectTypes // select with types
	immHeapType    // ref.null
	immMisc        // 0xfc prefix
	immSIMD        // 0xfd prefix
	immAtomic      // 0xfe prefix
)

var immediateKinds = func() (k [256]uint8) {
	for _, op := range []byte{0x00, 0x01, 0x05, 0x0a, 0x0f, 0x1a, 0x1b, 0xd1} {
		k[op] = immNone // unreachable nop else throw_ref return drop select ref.is_null
	}
	for op := 0x45; op <= 0xc4; op++ {
		k[op] = immNone // numeric
	}
	// throw br br_if call return_call local.* table.get/set memory.size/grow ref.func
	for _, op := range []byte{0x08, 0x0c, 0x0d, 0x10, 0x12, 0x20, 0x21, 0x22, 0x25, 0x26, 0x3f, 0x40, 0xd2} {
		k[op] = immIndex
	}
	k[0x11], k[0x13] = immTwoIndices, immTwoIndices
	for op := 0x28; op <= 0x3e; op++ {
		k[op] = immMemarg
	}
	k[0x41], k[0x42], k[0x43], k[0x44] = immI32, immI64, immF32, immF64
	k[0x0e], k[0x1c], k[0xd0] = immBrTable, immSelectTypes, immHeapType
	k[0xfc], k[0xfd], k[0xfe] = immMisc, immSIMD, immAtomic
	return k
}()

func (r *reader) misc(sub uint32) {
	switch {
	case sub <= 7: // saturating truncations
	case sub == 9, sub == 11, sub == 13, sub == 15, sub == 16, sub == 17:
		// data.drop memory.fill elem.drop table.grow/size/fill
		r.u32()
	case sub == 8, sub == 10, sub == 12, sub == 14:
		// memory.init memory.copy table.init table.copy
		r.u32()
		r.u32()
	default:
		r.fail("unknown 0xfc opcode")
	}
}

// simd skips the immediates of the 0xfd opcode sub. wazero 1.12 reads sub
// as one byte, where the spec has a LEB128: to it the standard encoding of
// an opcode from 0x80 up (fd 80 01) is that opcode and a nop, and any other
// second byte is an instruction of its own. The walk reads as wazero does,
// or a module could hide from it instructions that wazero compiles
// (TestWalkReadsSIMDAsWazeroDoes).
func (r *reader) simd(sub byte) {
	switch {
	case sub <= 11, sub == 92, sub == 93: // loads and stores
		r.memarg()
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		r.skip(16)
	case sub >= 21 && sub <= 34: // extract and replace lane
		r.skip(1)
	case sub >= 84 && sub <= 91: // load and store lane
		r.memarg()
		r.skip(1)
	}
	// The others have no immediates; wazero refuses those it does not
	// know.
}

// atomic skips the immediates of the 0xfe opcode sub, one byte in wazero
// 1.12 as in simd.
func (r *reader) atomic(sub byte) {
	switch {
	case sub == 0x03: // atomic.fence
		r.skip(1)
	case sub <= 0x02, sub >= 0x10 && sub <= 0x4e:
		r.memarg()
	default:
		r.fail("unknown 0xfe opcode")
	}
}

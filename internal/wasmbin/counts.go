package wasmbin

import "fmt"

// maxLocals is the most locals one function body may declare: the limit
// web engines use (V8, SpiderMonkey and JavaScriptCore all refuse more than
// 50000), far above what compilers emit. Each local costs wazero memory to
// compile (the interpreter keeps an operation of about 64 bytes per local
// to zero it), and a body declares 50000 of them in 4 bytes: 8 KB of such
// bodies took wazero's compiler 400 MB. So the bodies of a module may
// together declare at most maxLocals and one more per byte of the module,
// about six times the most that the modules we measured declare (0.17 per
// byte, over some 7000 that wazero compiles).
const maxLocals = 50000

// maxParams is the most parameters, and the most results, of a function
// type: the limit web engines use (the JS API's, 1000). wazero builds a
// type's key by appending the name of each value type to a string, so a
// type's cost grows with the square of its length: one of 50000 parameters
// (50 KB) takes it 5 seconds and 3.7 GB of garbage.
const maxParams = 1000

// maxTableEntries is the most entries the tables of a module may start with,
// together: the limit web engines use for one table (10 million). wazero
// allocates a table's minimum size when the module is instantiated, 8 bytes
// an entry and up to 2^27 entries a table, so a 35-byte module declaring 4
// tables reserved 4 GiB. Toolchains size the table to the functions it
// holds: a Go plugin's has a few thousand entries.
const maxTableEntries = 10_000_000

// maxValues bounds the values that blocks, branches and calls pass, where a
// type sets their number: a block's (or loop's, if's, try_table's)
// parameters and results when its block type is a type index, the arity of
// the label a branch names (br, br_if, each of br_table's labels, a
// try_table's catch clause, else, return), and a callee's parameters and
// results (call, call_indirect and their return_call forms, a throw's tag).
// wazero's compiler makes a value, a block parameter or a branch argument
// for each, and a type may have maxParams of each, so 2 bytes (call $f)
// cost it 1000 values or more: 12 KB of calls that take and give 1000
// values took it 11.5 s and allocations of 3.5 GB. The bodies of a module may pass at most
// maxValues and one more per bytesPerValue bytes of the module, where the
// worst case costs the compiler about 440 bytes and 1.5 µs a value; see
// host/RATIONALE.md for the measurements.
//
// Block types that are empty or one value type are not counted, nor are the
// branches to their labels: they pass at most one value, as an instruction
// of one or two bytes does (i32.const, local.get), and real code is full of
// them. What a type index sets is what lets a few bytes pass a thousand.
const maxValues = 50000

// bytesPerValue is how many bytes of a module buy one more value past
// maxValues. Real modules pass at most one value per 25 bytes (TinyGo's;
// Go's one per 80) and no more than 28546 in all, over the 15355 modules
// of a Go module cache. At one per 8 bytes, the worst module of 1 MB that
// CheckCounts accepts took wazero's compiler 0.45 s and 87 MB, where the
// Go hello example (2.7 MB) takes 1.8 s and 39 MB.
const bytesPerValue = 8

// CheckCounts refuses a module that declares counts it could not hold,
// before wazero sees it. wazero's decoder allocates by the counts it reads
// (make([]T, n) for a section's entries, a data segment's bytes, an element
// segment's expressions, a function type's value types, the name section's
// maps, a name's bytes, a body's bytes and its locals) before it reads the
// entries, so a few bytes claiming a hundred million data segments make the
// host allocate gigabytes and can get it killed; see host/RATIONALE.md.
//
// Every entry of a vector takes at least one byte, so CheckCounts refuses a
// count above the bytes left in its section (or subsection, or body), and
// a length (of a section, a name, a body, a data segment) above the bytes
// left. It walks every section whose decoding allocates, laid out as
// wazero 1.12 reads it, and refuses an entry that runs past its section's
// end: wazero reads the whole file through one reader, and would otherwise
// take its next count from the bytes of the section after. Locals and
// function types have limits of their own (maxLocals, maxParams). It also
// refuses a function's or tag's type index past the types declared, which
// wazero would refuse too, but after it had panicked on some (typeIndex).
//
// It also walks every instruction of every body, with Instrument's opcode
// table, to count the values blocks, branches and calls pass (maxValues),
// which no count declares. A body it cannot walk (an opcode the table does
// not know, a truncated immediate) is counted up to there: the table knows
// every opcode wazero 1.12 accepts with the host's features (and some
// more), so such a body is one wazero refuses
// (TestWazeroRefusesWhatTheWalkSkips), and wazero validates every body
// before it compiles any. A host that enabled a feature the table lacks
// (typed function references' call_ref) would have to teach it first.
//
// CheckCounts does not validate: a module it accepts may still be refused by
// wazero, and a module it refuses is one wazero would refuse too, or one
// beyond those limits. It allocates nothing by a count.
//
// plugin.Prepare, which airlock run and airlock check share, calls it,
// unless the module's instrumented copy is in the cache, which holds only
// modules that passed it (so a change that makes it refuse more must bump
// InstrumentVersion).
func CheckCounts(wasm []byte) error {
	if len(wasm) < 8 || string(wasm[:8]) != "\x00asm\x01\x00\x00\x00" {
		return nil // wazero refuses it before reading any count
	}
	c := &countCheck{localsLimit: maxLocals + uint64(len(wasm)), valuesLimit: maxValues + uint64(len(wasm))/bytesPerValue}
	return c.module(wasm)
}

// module walks the sections of wasm, whose header CheckCounts has read.
func (c *countCheck) module(wasm []byte) error {
	r := &reader{b: wasm, pos: 8}
	for r.pos < len(r.b) {
		start := r.pos
		id := r.byte()
		size := r.u32()
		if r.err != nil {
			return fmt.Errorf("%s at offset %d: size: %w", sectionName(id), start, r.err)
		}
		if left := len(r.b) - r.pos; uint64(size) > uint64(left) {
			return fmt.Errorf("%s at offset %d claims %d bytes, but only %s left in the file", sectionName(id), start, size, bytesLeft(left))
		}
		s := &reader{b: r.b[r.pos : r.pos+int(size)]}
		c.sectionOffset = r.pos
		r.pos += int(size)
		if err := c.section(id, s); err != nil {
			return fmt.Errorf("%s: %w", sectionName(id), err)
		}
	}
	return nil
}

// countCheck is CheckCounts' walk through one module.
type countCheck struct {
	// importedFuncs is the count of function imports, for naming a body
	// by its function index.
	importedFuncs uint32
	// locals counts the locals the bodies walked so far declare, up to
	// localsLimit.
	locals, localsLimit uint64
	// tableEntries counts the minimum sizes of the tables walked so far,
	// imported or defined, up to maxTableEntries.
	tableEntries uint64

	// types holds the function types' arities, by type index; funcs and
	// tags the type index of each function and tag, imported ones first.
	// Each entry is appended as it is read, so their memory is in
	// proportion to the module's bytes, not to a count.
	types       []arity
	funcs, tags []uint32
	// values counts what the blocks, branches and calls of the bodies
	// walked so far pass, up to valuesLimit; see maxValues.
	values, valuesLimit uint64
	// labels is the control stack of the body being walked: the values a
	// branch to each label passes. It is kept from body to body.
	labels []uint32
	// sectionOffset is where the section being walked starts in the file,
	// for naming an instruction's offset.
	sectionOffset int
}

// arity is what a function type takes and gives.
type arity struct{ params, results uint32 }

// table walks a table type and counts its minimum size.
func (c *countCheck) table(r *reader) {
	c.tableEntries += uint64(r.tableType())
	if r.err == nil && c.tableEntries > maxTableEntries {
		r.fail(fmt.Sprintf("the tables start with %d entries together, above the %d the host allows (as web engines do)", c.tableEntries, maxTableEntries))
	}
}

// section walks one section's body, as far as it holds counts wazero
// allocates by.
func (c *countCheck) section(id byte, r *reader) error {
	switch id {
	case secCustom:
		if string(r.nameBytes()) == "name" {
			return checkNames(r)
		}
		return r.err // other custom sections are kept or skipped whole
	case secType:
		return entries(r, "type", "types", func() { c.typeEntry(r) })
	case secImport:
		return entries(r, "import", "imports", func() {
			r.nameBytes() // module
			r.nameBytes() // name
			switch kind := r.byte(); kind {
			case 0x00: // func: type index
				c.funcs = append(c.funcs, c.typeIndex(r))
				c.importedFuncs++
			case 0x01:
				c.table(r)
			case 0x02:
				r.limits()
			case 0x03: // global: value type, mutability
				r.valtypeGC()
				r.byte()
			case 0x04: // tag: attribute, type index
				r.byte()
				c.tags = append(c.tags, c.typeIndex(r))
			default:
				r.fail(fmt.Sprintf("unknown import kind 0x%02x", kind))
			}
		})
	case secFunction:
		return entries(r, "function", "functions", func() { c.funcs = append(c.funcs, c.typeIndex(r)) })
	case secTable:
		return entries(r, "table", "tables", func() { c.table(r) })
	case secTag:
		return entries(r, "tag", "tags", func() {
			r.byte() // attribute
			c.tags = append(c.tags, c.typeIndex(r))
		})
	case secGlobal:
		return entries(r, "global", "globals", func() {
			r.valtypeGC()
			r.byte() // mutability
			r.constExpr()
		})
	case secExport:
		return entries(r, "export", "exports", func() {
			r.nameBytes()
			r.byte() // kind
			r.u32()  // index
		})
	case secElement:
		return entries(r, "segment", "segments", r.elementSegment)
	case secCode:
		return c.code(r)
	case secData:
		return entries(r, "segment", "segments", r.dataSegment)
	}
	// The memory, start and data count sections allocate by no count, and
	// wazero refuses an unknown section before reading its body.
	return nil
}

// typeIndex reads the type index of a function or a tag, and refuses one
// past the types declared. wazero 1.12 checks a defined function's type
// index only as it reaches that function's body, so a call from an earlier
// body to the function indexes past its types and panics (found by
// FuzzInstrument); a tag's, only after every body. The type section comes
// first (wazero refuses sections out of order), so c.types is complete.
func (c *countCheck) typeIndex(r *reader) uint32 {
	i := r.u32()
	if n := len(c.types); r.err == nil && uint64(i) >= uint64(n) {
		declared := fmt.Sprintf("%d types", n)
		if n == 1 {
			declared = "1 type"
		}
		r.fail(fmt.Sprintf("type index %d is out of range: the module declares %s", i, declared))
	}
	return i
}

// entries walks a vector of entries, each one (many, in the message for
// its count) read by entry from r.
func entries(r *reader, one, many string, entry func()) error {
	n := r.countOf(many)
	if r.err != nil {
		return r.err
	}
	for i := range n {
		entry()
		if r.err != nil {
			return fmt.Errorf("%s %d: %w", one, i, r.err)
		}
	}
	return nil
}

// code walks the code section: each body's size, the locals it declares,
// and the values its blocks, branches and calls pass.
func (c *countCheck) code(r *reader) error {
	n := r.countOf("bodies")
	if r.err != nil {
		return r.err
	}
	for i := range n {
		b := r.sub("bytes of body")
		groups := b.countOf("groups of locals")
		var locals uint64
		for j := uint32(0); j < groups && b.err == nil; j++ {
			locals += uint64(b.u32())
			b.valtypeGC()
		}
		switch {
		case b.err != nil:
		case locals > maxLocals:
			b.fail(fmt.Sprintf("declares %d locals, above the %d that web engines allow", locals, maxLocals))
		case c.locals+locals > c.localsLimit:
			b.fail(fmt.Sprintf("declares %d locals, and the bodies before it %d: above the module's limit of %d (%d and one per byte of the module)",
				locals, c.locals, c.localsLimit, maxLocals))
		}
		c.locals += locals
		fn := uint64(c.importedFuncs) + uint64(i)
		if b.err == nil {
			c.instructions(b, fn, c.sectionOffset+r.pos-len(b.b))
		}
		if b.err != nil {
			return fmt.Errorf("body %d (function %d): %w", i, fn, b.err)
		}
	}
	return nil
}

// instructions walks the instructions of the body of function fn, from
// r's position to the function's end, and counts the values its blocks,
// branches and calls pass; offset is where r's bytes start in the file. It
// fails r only for going past valuesLimit. A body it cannot walk is
// counted up to there (see CheckCounts).
func (c *countCheck) instructions(r *reader, fn uint64, offset int) {
	labels := append(c.labels[:0], c.funcType(fn).results)
	defer func() { c.labels = labels[:0] }() // kept for the next body
	for len(labels) > 0 && r.pos < len(r.b) {
		at := r.pos
		op := r.byte()
		var n uint64
		switch op {
		case 0x02, 0x03, 0x04, 0x1f: // block, loop, if, try_table
			t := c.blockType(r)
			n = uint64(t.params) + uint64(t.results)
			label := t.results
			if op == 0x03 { // a branch to a loop goes to its start
				label = t.params
			}
			if op == 0x1f { // catch clauses branch to labels outside
				for range r.count1() {
					switch r.byte() {
					case 0x00, 0x01: // catch, catch_ref: tag, label
						r.u32()
						n += labelValues(labels, r.u32())
					case 0x02, 0x03: // catch_all, catch_all_ref: label
						n += labelValues(labels, r.u32())
					default:
						r.fail("unknown catch clause")
					}
				}
			}
			labels = append(labels, label)
		case 0x05: // else: the then branch's results, again
			n = labelValues(labels, 0)
		case opEnd:
			labels = labels[:len(labels)-1]
		case 0x0c, 0x0d: // br, br_if
			n = labelValues(labels, r.u32())
		case 0x0e: // br_table
			for range r.count1() + 1 {
				n += labelValues(labels, r.u32())
			}
		case 0x0f: // return
			n = uint64(labels[0])
		case 0x10, 0x12: // call, return_call
			n = c.funcType(uint64(r.u32())).values()
		case 0x11, 0x13: // call_indirect, return_call_indirect: type, table
			n = c.typeAt(r.u32()).values()
			r.u32()
		case 0x08: // throw
			if tag := r.u32(); uint64(tag) < uint64(len(c.tags)) {
				n = uint64(c.typeAt(c.tags[tag]).params)
			}
		case opGlobalGet, opGlobalSet:
			r.u32()
		default:
			// Most instructions have no immediate, one small index
			// (local.get, i32.const) or a small memarg (a load's
			// alignment and offset): skipped here, as a call per
			// instruction would double the walk's time.
			switch k := immediateKinds[op]; {
			case k == immNone:
			case (k == immIndex || k == immI32) && r.pos < len(r.b) && r.b[r.pos] < 0x80:
				r.pos++
			case k == immMemarg && r.pos+1 < len(r.b) && r.b[r.pos] < 0x40 && r.b[r.pos+1] < 0x80:
				r.pos += 2
			default:
				r.immediates(op)
			}
		}
		if r.err != nil {
			// Not one wazero compiles: counted up to here.
			r.err = nil
			return
		}
		c.values += n
		if c.values > c.valuesLimit {
			r.fail(fmt.Sprintf("at offset %d, the blocks, branches and calls of the bodies so far pass %d values, above the module's limit of %d (%d and one per %d bytes of the module); wazero's compiler would need time and memory for each",
				offset+at, c.values, c.valuesLimit, maxValues, bytesPerValue))
			return
		}
	}
}

// labelValues is what a branch to the label at depth passes; 0 for a
// label that does not exist, which wazero refuses.
func labelValues(labels []uint32, depth uint32) uint64 {
	if uint64(depth) >= uint64(len(labels)) {
		return 0
	}
	return uint64(labels[len(labels)-1-int(depth)])
}

// blockType reads a block type. Only a type index counts: an empty block
// type or a value type passes at most one value (see maxValues).
func (c *countCheck) blockType(r *reader) arity {
	if r.pos < len(r.b) && r.b[r.pos]&0xc0 == 0x40 { // a one-byte negative s33: empty or a value type
		t := r.b[r.pos]
		r.pos++
		if t == 0x63 || t == 0x64 { // (ref null? heaptype)
			r.s33()
		}
		return arity{}
	}
	v := r.leb(5)
	if v > 0xffffffff {
		return arity{} // wazero refuses it
	}
	return c.typeAt(uint32(v))
}

// typeAt is the arity of type index i, or none for a type that does not
// exist (wazero refuses it).
func (c *countCheck) typeAt(i uint32) arity {
	if uint64(i) < uint64(len(c.types)) {
		return c.types[i]
	}
	return arity{}
}

// funcType is the arity of function fn's type.
func (c *countCheck) funcType(fn uint64) arity {
	if fn < uint64(len(c.funcs)) {
		return c.typeAt(c.funcs[fn])
	}
	return arity{}
}

// values is what a call of this type passes: its arguments and results.
func (a arity) values() uint64 { return uint64(a.params) + uint64(a.results) }

// checkNames walks the "name" custom section's subsections. wazero decodes
// the module name (0), the function names (1) and the local names (2), and
// skips the others by their size. It reads the first three to their end
// whatever size they declare, and counts the bytes left by the declared
// sizes, so one whose size is not its length would set wazero reading names
// from the sections that follow.
func checkNames(r *reader) error {
	for r.pos < len(r.b) {
		id := r.byte()
		s := r.sub("bytes")
		if r.err != nil {
			return fmt.Errorf("subsection %d: %w", id, r.err)
		}
		var what string
		switch id {
		case 0:
			what = "module name"
			s.nameBytes()
		case 1:
			what = "function names"
			s.nameMap("names")
		case 2:
			what = "local names"
			n := s.countOf("functions")
			for i := uint32(0); i < n && s.err == nil; i++ {
				fn := s.u32()
				if s.nameMap("names"); s.err != nil {
					return fmt.Errorf("subsection 2 (%s): function %d: %w", what, fn, s.err)
				}
			}
		default:
			continue
		}
		if s.err == nil && s.pos != len(s.b) {
			s.fail(fmt.Sprintf("its size says %d bytes, but its content takes %d", len(s.b), s.pos))
		}
		if s.err != nil {
			return fmt.Errorf("subsection %d (%s): %w", id, what, s.err)
		}
	}
	return nil
}

// nameMap walks a name map: a vector of an index and a name.
func (r *reader) nameMap(what string) {
	n := r.countOf(what)
	for i := uint32(0); i < n && r.err == nil; i++ {
		r.u32()
		r.nameBytes()
	}
}

// typeEntry walks a function type, or a recursive group of them, and keeps
// the arity of each.
func (c *countCheck) typeEntry(r *reader) {
	if len(r.b) > r.pos && r.b[r.pos] == 0x4e { // rec group
		r.pos++
		n := r.countOf("types")
		for i := uint32(0); i < n && r.err == nil; i++ {
			c.types = append(c.types, r.funcType())
		}
		return
	}
	c.types = append(c.types, r.funcType())
}

func (r *reader) funcType() (a arity) {
	if form := r.byte(); form != 0x60 {
		r.fail(fmt.Sprintf("form 0x%02x is not a function type (0x60)", form))
	}
	for _, count := range [...]struct {
		what string
		n    *uint32
	}{{"parameters", &a.params}, {"results", &a.results}} {
		n := r.countOf(count.what)
		if n > maxParams {
			r.fail(fmt.Sprintf("has %d %s, above the %d that web engines allow", n, count.what, maxParams))
		}
		for i := uint32(0); i < n && r.err == nil; i++ {
			r.valtypeGC()
		}
		*count.n = n
	}
	return a
}

// tableType walks a table type: an optional initializer prefix (0x40 0x00),
// the reference type, the limits, and the initializer. It returns the
// table's minimum size.
func (r *reader) tableType() (minimum uint32) {
	init := len(r.b) > r.pos && r.b[r.pos] == 0x40
	if init {
		r.pos++
		r.byte() // reserved
	}
	r.refType()
	minimum = r.limits()
	if init {
		r.constExpr()
	}
	return minimum
}

// elementSegment walks an element segment, laid out by its flags: bit 0 is
// passive or declarative, bit 1 an explicit table index (when active) or
// declarative (when not), bit 2 expressions instead of function indices.
func (r *reader) elementSegment() {
	flags := r.u32()
	if flags > 7 {
		r.fail(fmt.Sprintf("unknown flags %d", flags))
		return
	}
	if flags == 2 || flags == 6 {
		r.u32() // table index
	}
	if flags&1 == 0 {
		r.constExpr() // offset
	}
	switch {
	case flags&4 == 0 && flags != 0:
		r.byte() // element kind
	case flags&4 != 0 && flags != 4:
		r.refType()
	}
	what, entry := "function indices", func() { r.u32() }
	if flags&4 != 0 {
		what, entry = "expressions", r.constExpr
	}
	n := r.countOf(what)
	for i := uint32(0); i < n && r.err == nil; i++ {
		entry()
	}
}

// dataSegment walks a data segment: active (0), passive (1) or active with
// a memory index (2), then its bytes.
func (r *reader) dataSegment() {
	switch flags := r.u32(); flags {
	case 0:
		r.constExpr()
	case 1:
	case 2:
		r.u32()
		r.constExpr()
	default:
		r.fail(fmt.Sprintf("unknown flags %d", flags))
	}
	r.skip(int(r.countOf("bytes")))
}

// constExpr walks a constant expression up to its end, with the opcodes
// wazero's decoder knows.
func (r *reader) constExpr() {
	for r.err == nil {
		switch op := r.byte(); op {
		case opEnd:
			return
		case 0x41, opGlobalGet, 0xd0, 0xd2: // i32.const, global.get, ref.null (heap type), ref.func
			r.leb(5)
		case 0x42: // i64.const
			r.leb(10)
		case 0x43: // f32.const
			r.skip(4)
		case 0x44: // f64.const
			r.skip(8)
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended-const add, sub, mul
		case 0xfd: // v128.const, its sub-opcode a single byte in wazero's decoder
			if sub := r.byte(); sub != 0x0c {
				r.fail(fmt.Sprintf("opcode 0xfd 0x%02x in a constant expression", sub))
			}
			r.skip(16)
		default:
			r.fail(fmt.Sprintf("opcode 0x%02x in a constant expression", op))
		}
	}
}

// valtypeGC is valtype, and also the (ref null? heaptype) forms (0x63 and
// 0x64) that wazero decodes in function types, globals and locals.
func (r *reader) valtypeGC() {
	if len(r.b) > r.pos && (r.b[r.pos] == 0x63 || r.b[r.pos] == 0x64) {
		r.pos++
		r.s33()
		return
	}
	r.valtype()
}

// refType is a table's or an element segment's reference type: one byte,
// or a (ref null? heaptype) form. wazero checks the byte's meaning later.
func (r *reader) refType() {
	if t := r.byte(); t == 0x63 || t == 0x64 {
		r.s33()
	}
}

// countOf reads the length of a vector of what (a plural noun, for the
// message), refusing one that the bytes left cannot hold.
func (r *reader) countOf(what string) uint32 {
	n := r.u32()
	if left := len(r.b) - r.pos; r.err == nil && uint64(n) > uint64(left) {
		r.fail(fmt.Sprintf("claims %d %s, but only %s left to hold them", n, what, bytesLeft(left)))
		return 0
	}
	return n
}

// nameBytes reads a name, without copying it.
func (r *reader) nameBytes() []byte {
	n := int(r.countOf("bytes of name"))
	start := r.pos
	r.skip(n)
	if r.err != nil {
		return nil
	}
	return r.b[start:r.pos]
}

// sub reads a size and returns a reader over that many bytes, which r
// moves past.
func (r *reader) sub(what string) *reader {
	n := int(r.countOf(what))
	if r.err != nil {
		return &reader{err: r.err}
	}
	s := &reader{b: r.b[r.pos : r.pos+n]}
	r.pos += n
	return s
}

func bytesLeft(n int) string {
	if n == 1 {
		return "1 byte is"
	}
	return fmt.Sprintf("%d bytes are", n)
}

func sectionName(id byte) string {
	if int(id) < len(sectionNames) {
		return sectionNames[id] + " section"
	}
	return fmt.Sprintf("section %d", id)
}

var sectionNames = [...]string{"custom", "type", "import", "function", "table", "memory",
	"global", "export", "start", "element", "code", "data", "data count", "tag"}

const (
	secType     = 1
	secFunction = 3
	secTable    = 4
	secElement  = 9
	secData     = 11
	secTag      = 13
)

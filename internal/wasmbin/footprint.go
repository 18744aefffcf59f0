package wasmbin

import "fmt"

// TableEntryBytes is what wazero 1.12 keeps for one table entry: a
// uintptr.
const TableEntryBytes = 8

// What wazero 1.12 keeps for the entries of a module, measured with 300,000
// of each in the host's configuration (the compiler, its code from the
// cache): a global takes 56 bytes decoded and 94 more in each instance; a
// function 80 bytes decoded (its code is in the cache's file, mapped); an
// import or an export about 80.
const (
	globalBytes = 152
	funcBytes   = 80
	entryBytes  = 80 // an import or an export
)

// Footprint is what a module makes wazero allocate when it is loaded and
// instantiated, counted from its sections.
type Footprint struct {
	MemoryPages uint64 // the memory's minimum, in pages
	TableMin    uint64 // the tables' minimum sizes, in entries
	TableMax    uint64 // the tables' maximum sizes, in entries; NoMax if one has none
	Globals     uint64
	Elements    uint64 // the element segments' entries, at most: their bytes
	Funcs       uint64 // defined functions
	Entries     uint64 // imports and exports
}

// NoMax is Footprint.TableMax for a table without a maximum.
const NoMax = ^uint64(0)

// Bytes is the footprint's cost in host memory.
func (f Footprint) Bytes() uint64 {
	return f.MemoryPages<<16 + (f.TableMin+f.Elements)*TableEntryBytes + f.Globals*globalBytes +
		f.Funcs*funcBytes + f.Entries*entryBytes
}

// ModuleFootprint counts the footprint of wasm, a module that CheckCounts
// accepted (or Instrument's copy of one).
func ModuleFootprint(wasm []byte) (Footprint, error) {
	var f Footprint
	r := &reader{b: wasm, pos: 8}
	for r.pos < len(r.b) {
		id := r.byte()
		size := r.u32()
		if r.err != nil || uint64(len(r.b)-r.pos) < uint64(size) {
			return f, fmt.Errorf("section %d: truncated", id)
		}
		s := &reader{b: r.b[r.pos : r.pos+int(size)]}
		r.pos += int(size)
		table := func() {
			init := len(s.b) > s.pos && s.b[s.pos] == 0x40
			if init {
				s.pos += 2
			}
			s.refType()
			flags := s.byte()
			f.TableMin += uint64(s.u32())
			if flags&1 == 0 {
				f.TableMax = NoMax
			} else if m := uint64(s.u32()); f.TableMax != NoMax {
				f.TableMax += m
			}
			if init {
				s.constExpr()
			}
		}
		memory := func() { f.MemoryPages += uint64(s.limits()) }
		var err error
		switch id {
		case secImport:
			err = entries(s, "import", "imports", func() {
				f.Entries++
				s.nameBytes()
				s.nameBytes()
				switch s.byte() {
				case 0x00:
					s.u32()
				case 0x01:
					table()
				case 0x02:
					memory()
				case 0x03:
					s.valtypeGC()
					s.byte()
					f.Globals++
				case 0x04:
					s.byte()
					s.u32()
				default:
					s.fail("unknown import kind")
				}
			})
		case secTable:
			err = entries(s, "table", "tables", table)
		case secMemory:
			err = entries(s, "memory", "memories", memory)
		case secGlobal, secFunction, secExport:
			var n uint32
			n, err = s.count()
			switch id {
			case secGlobal:
				f.Globals += uint64(n)
			case secFunction:
				f.Funcs += uint64(n)
			default:
				f.Entries += uint64(n)
			}
		case secElement:
			err = entries(s, "segment", "segments", func() {
				// Each entry takes at least a byte: the segment's
				// length bounds its entries.
				start := s.pos
				s.elementSegment()
				f.Elements += uint64(s.pos - start)
			})
		}
		if err != nil {
			return f, fmt.Errorf("%s: %w", sectionName(id), err)
		}
	}
	return f, nil
}

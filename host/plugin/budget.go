package plugin

import (
	"fmt"

	"github.com/airlockhq/airlock/host/manifest"
)

// A plugin's limits.memory is its budget for everything its module makes
// the host allocate, at instantiation and after (host/RATIONALE.md, "Why
// do tables count against limits.memory?"):
//
//   - at load and instantiation, what the module declares: its memory's
//     and tables' minimum sizes, its globals, functions, imports, exports
//     and element segments' entries, each at what wazero 1.12 keeps for
//     it (footprint); Load refuses a module whose footprint is past the
//     budget;
//   - at run time, what the guest grows: instrument rewrites memory.grow
//     and table.grow into calls that compare linear memory plus table
//     entries with the budget (growHelpers); a memory.grow past it fails
//     (-1), a table.grow past it traps, and the host says so.
//
// A module that instrument cannot rewrite keeps wazero's memory limit
// alone, and Load refuses it unless its tables have maxima that fit.

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

// footprint is what a module makes wazero allocate when it is loaded and
// instantiated, counted from its sections.
type footprint struct {
	memoryPages uint64 // the memory's minimum, in pages
	tableMin    uint64 // the tables' minimum sizes, in entries
	tableMax    uint64 // the tables' maximum sizes, in entries; noMax if one has none
	globals     uint64
	elements    uint64 // the element segments' entries, at most: their bytes
	funcs       uint64 // defined functions
	entries     uint64 // imports and exports
}

// noMax is footprint.tableMax for a table without a maximum.
const noMax = ^uint64(0)

// bytes is the footprint's cost in host memory.
func (f footprint) bytes() uint64 {
	return f.memoryPages<<16 + (f.tableMin+f.elements)*tableEntryBytes + f.globals*globalBytes +
		f.funcs*funcBytes + f.entries*entryBytes
}

// moduleFootprint counts the footprint of wasm, a module that CheckCounts
// accepted (or instrument's copy of one).
func moduleFootprint(wasm []byte) (footprint, error) {
	var f footprint
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
			f.tableMin += uint64(s.u32())
			if flags&1 == 0 {
				f.tableMax = noMax
			} else if m := uint64(s.u32()); f.tableMax != noMax {
				f.tableMax += m
			}
			if init {
				s.constExpr()
			}
		}
		memory := func() { f.memoryPages += uint64(s.limits()) }
		var err error
		switch id {
		case secImport:
			err = entries(s, "import", "imports", func() {
				f.entries++
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
					f.globals++
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
				f.globals += uint64(n)
			case secFunction:
				f.funcs += uint64(n)
			default:
				f.entries += uint64(n)
			}
		case secElement:
			err = entries(s, "segment", "segments", func() {
				// Each entry takes at least a byte: the segment's
				// length bounds its entries.
				start := s.pos
				s.elementSegment()
				f.elements += uint64(s.pos - start)
			})
		}
		if err != nil {
			return f, fmt.Errorf("%s: %w", sectionName(id), err)
		}
	}
	return f, nil
}

// checkFootprint refuses a module whose footprint is past m's
// limits.memory, and one without instrument's checks (interruptible
// false) whose tables could grow past it.
func checkFootprint(m *manifest.Manifest, wasm []byte, interruptible bool) error {
	f, err := moduleFootprint(wasm)
	if err != nil {
		return fmt.Errorf("plugin %q: %s is not a valid WebAssembly module: %w", m.Name, m.Wasm, err)
	}
	budget := uint64(m.Limits.Memory)
	if b := f.bytes(); b > budget {
		return fmt.Errorf("plugin %q: the module needs %s at start (%d pages of linear memory, %d table entries, %d element entries, %d globals, %d functions, %d imports and exports), above limits.memory = %s (raise it in plugin.toml, or make the module smaller)",
			m.Name, mib(b), f.memoryPages, f.tableMin, f.elements, f.globals, f.funcs, f.entries, m.Limits.Memory)
	}
	if !interruptible && (f.tableMax == noMax || f.memoryPages<<16+f.tableMax*tableEntryBytes > budget) {
		what := "a table without a maximum size"
		if f.tableMax != noMax {
			what = fmt.Sprintf("tables that may grow to %d entries (%s)", f.tableMax, mib(f.tableMax*tableEntryBytes))
		}
		return fmt.Errorf("plugin %q: the host cannot instrument the module (see the warning above), so it cannot bound table.grow, and the module has %s, past limits.memory = %s (declare table maxima that fit)", m.Name, what, m.Limits.Memory)
	}
	return nil
}

// CheckFootprint is Load's check of the module wasm against m's
// limits.memory (checkFootprint), for tools that do not load it (airlock
// check). wasm must have passed CheckCounts.
func CheckFootprint(m *manifest.Manifest, wasm []byte) error {
	if patched, err := instrument(wasm); err == nil {
		return checkFootprint(m, patched, true)
	}
	return checkFootprint(m, wasm, false)
}

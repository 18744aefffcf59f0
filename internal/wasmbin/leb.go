// Package wasmbin reads and rewrites WebAssembly binary modules for the
// host: CheckCounts refuses counts that would make wazero allocate before
// it validates, Instrument adds the watchdog's and the budget's checks,
// ModuleFootprint counts what a module makes wazero allocate, and
// AppendU32 and AppendS32 write LEB128 numbers (also for the tests that
// assemble modules). It knows nothing of plugins or manifests: internal/plugin
// and airlock check use it through plugin.Prepare.
package wasmbin

// AppendU32 appends v as an unsigned LEB128.
func AppendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// AppendS32 appends v as a signed LEB128.
func AppendS32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

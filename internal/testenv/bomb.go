package testenv

import "github.com/airlockhq/airlock/internal/wasmbin"

// JoinBomb is a module whose one function has 1000 locals and reads each
// of them after ifs empty ifs: nothing that CheckCounts counts, but
// wazero's compiler keeps every local at every join, so that 5700 ifs
// (32 KB) take it about 700 MB and 15 s. It does not speak airlock's ABI:
// it is meant to be refused while it compiles.
func JoinBomb(ifs int) []byte {
	body := []byte{1, 0xe8, 0x07, 0x7f} // one group of 1000 i32 locals
	for range ifs {
		body = append(body, 0x41, 0x00, 0x04, 0x40, 0x0b) // i32.const 0; if; end
	}
	for i := range 1000 {
		body = append(append(append(body, 0x20), uleb(uint32(i))...), 0x1a) // local.get i; drop
	}
	body = append(body, 0x0b)
	code := append(append([]byte{1}, uleb(uint32(len(body)))...), body...)
	mod := []byte{0, 'a', 's', 'm', 1, 0, 0, 0, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0, 10}
	return append(append(mod, uleb(uint32(len(code)))...), code...)
}

func uleb(v uint32) []byte { return wasmbin.AppendU32(nil, v) }

// WazeroPanic is a module on which wazero 1.12's validation panics instead
// of refusing it, found by FuzzInstrument: function 0 calls function 1,
// whose type index (48) is past the one type declared. wazero checks that
// index only when it reaches function 1's body, and function 0's call
// reads the type first. CheckCounts refuses it; the tests of what happens
// when a module gets past that use it.
func WazeroPanic() []byte {
	return []byte{0, 'a', 's', 'm', 1, 0, 0, 0,
		1, 4, 1, 0x60, 0, 0, // type 0: () -> ()
		3, 3, 2, 0, 48, // function 0 of type 0, function 1 of type 48
		10, 9, 2, 4, 0, 0x10, 1, 0x0b, 2, 0, 0x0b} // (call 1), ()
}

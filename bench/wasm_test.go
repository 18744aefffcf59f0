package bench

// tinyModule is a hand-assembled module that speaks airlock ABI v1 with as
// little guest code as possible, so that benchmarks measure the host. It is
// also loadable by raw wazero and by Extism, so all three run the same code.
//
//	(import "airlock_v1" "result_read" (func $rr (param i32 i32 i32) (result i32)))
//	(import "airlock_v1" "config_get"  (func $cg (param i32 i32 i32 i32 i32) (result i32)))
//	(memory (export "memory") 1)
//	(data (i32.const 0) "key")
//	(func (export "airlock_abi_v1"))
//	(func (export "airlock_on_event") (param $kind i32) (param $len i32) (result i32)
//	  (if (i32.eq (local.get $kind) (i32.const 100)) (then (drop (call $loop (i32.const 1000)))))
//	  (if (local.get $len) (then (drop (call $rr (i32.const 1024) (i32.const 256) (i32.const 1020)))))
//	  (i32.const 0))
//	(func (export "run") (result i32) (i32.const 0))
//	(func $loop (export "loop") (param $n i32) (result i32)
//	  (block (loop
//	    (br_if 1 (i32.eqz (local.get $n)))
//	    (drop (call $cg (i32.const 0) (i32.const 3) (i32.const 64) (i32.const 64) (i32.const 60)))
//	    (local.set $n (i32.sub (local.get $n) (i32.const 1)))
//	    (br 0)))
//	  (i32.const 0))
//	(func (export "loop1000") (result i32) (call $loop (i32.const 1000)))
func tinyModule() []byte {
	i32 := byte(0x7f)
	types := [][]byte{
		fnType([]byte{i32, i32, i32}, []byte{i32}),           // 0 result_read
		fnType([]byte{i32, i32, i32, i32, i32}, []byte{i32}), // 1 config_get
		fnType(nil, nil),                      // 2 marker
		fnType([]byte{i32, i32}, []byte{i32}), // 3 on_event
		fnType(nil, []byte{i32}),              // 4 run, loop1000
		fnType([]byte{i32}, []byte{i32}),      // 5 loop
	}
	imports := [][]byte{
		importFunc("airlock_v1", "result_read", 0),
		importFunc("airlock_v1", "config_get", 1),
	}
	// Defined functions: 2 marker, 3 on_event, 4 run, 5 loop, 6 loop1000.
	funcTypes := []byte{2, 3, 4, 5, 4}
	bodies := [][]byte{
		{0x0b},
		{
			0x20, 0x00, 0x41, 0xe4, 0x00, 0x46, 0x04, 0x40, // kind == 100: if
			0x41, 0xe8, 0x07, 0x10, 0x05, 0x1a, 0x0b, // call loop(1000), drop, end
			0x20, 0x01, 0x04, 0x40, // if len
			0x41, 0x80, 0x08, 0x41, 0x80, 0x02, 0x41, 0xfc, 0x07, 0x10, 0x00, 0x1a, 0x0b,
			0x41, 0x00, 0x0b,
		},
		{0x41, 0x00, 0x0b},
		{
			0x02, 0x40, 0x03, 0x40,
			0x20, 0x00, 0x45, 0x0d, 0x01,
			0x41, 0x00, 0x41, 0x03, 0x41, 0xc0, 0x00, 0x41, 0xc0, 0x00, 0x41, 0x3c, 0x10, 0x01, 0x1a,
			0x20, 0x00, 0x41, 0x01, 0x6b, 0x21, 0x00, 0x0c, 0x00,
			0x0b, 0x0b, 0x41, 0x00, 0x0b,
		},
		{0x41, 0xe8, 0x07, 0x10, 0x05, 0x0b},
	}
	exports := [][]byte{
		export("airlock_abi_v1", 0, 2), export("airlock_on_event", 0, 3), export("run", 0, 4),
		export("loop", 0, 5), export("loop1000", 0, 6), export("memory", 2, 0),
	}
	m := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	m = append(m, section(1, vec(types))...)
	m = append(m, section(2, vec(imports))...)
	m = append(m, section(3, append(uleb(uint32(len(funcTypes))), funcTypes...))...)
	m = append(m, section(5, []byte{0x01, 0x00, 0x01})...) // one memory, min 1 page
	m = append(m, section(7, vec(exports))...)
	var code [][]byte
	for _, b := range bodies {
		body := append([]byte{0x00}, b...) // no locals
		code = append(code, append(uleb(uint32(len(body))), body...))
	}
	m = append(m, section(10, vec(code))...)
	data := []byte{0x01, 0x00, 0x41, 0x00, 0x0b, 0x03, 'k', 'e', 'y'}
	m = append(m, section(11, data)...)
	return m
}

func fnType(params, results []byte) []byte {
	b := []byte{0x60}
	b = append(b, uleb(uint32(len(params)))...)
	b = append(b, params...)
	b = append(b, uleb(uint32(len(results)))...)
	return append(b, results...)
}

func importFunc(mod, name string, typ uint32) []byte {
	b := append(name2(mod), name2(name)...)
	return append(append(b, 0x00), uleb(typ)...)
}

func export(name string, kind byte, idx uint32) []byte {
	return append(append(name2(name), kind), uleb(idx)...)
}

func name2(s string) []byte { return append(uleb(uint32(len(s))), s...) }

func vec(items [][]byte) []byte {
	b := uleb(uint32(len(items)))
	for _, it := range items {
		b = append(b, it...)
	}
	return b
}

func section(id byte, content []byte) []byte {
	return append(append([]byte{id}, uleb(uint32(len(content)))...), content...)
}

func uleb(v uint32) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			c |= 0x80
		}
		b = append(b, c)
		if v == 0 {
			return b
		}
	}
}

// probeModule is the uevent benchmark's guest: its handler reads a udev
// event's payload, as any handler would, and then calls the benchmark's
// probe, which takes the time.
//
//	(import "airlock_v1" "result_read" (func $rr (param i32 i32 i32) (result i32)))
//	(import "airlock_benchprobe_v1" "mark" (func $mark (result i32)))
//	(memory (export "memory") 1)
//	(func (export "airlock_abi_v1"))
//	(func (export "airlock_on_event") (param $kind i32) (param $len i32) (result i32)
//	  (if (i32.eq (local.get $kind) (i32.const 4)) ;; udev
//	    (then (drop (call $rr (i32.const 1024) (i32.const 4096) (i32.const 1020)))
//	          (drop (call $mark))))
//	  (i32.const 0))
func probeModule() []byte {
	i32 := byte(0x7f)
	types := [][]byte{
		fnType([]byte{i32, i32, i32}, []byte{i32}), // 0 result_read
		fnType(nil, []byte{i32}),                   // 1 mark
		fnType(nil, nil),                           // 2 marker
		fnType([]byte{i32, i32}, []byte{i32}),      // 3 on_event
	}
	imports := [][]byte{
		importFunc("airlock_v1", "result_read", 0),
		importFunc("airlock_benchprobe_v1", "mark", 1),
	}
	funcTypes := []byte{2, 3} // 2 marker, 3 on_event
	bodies := [][]byte{
		{0x0b},
		{
			0x20, 0x00, 0x41, 0x04, 0x46, 0x04, 0x40, // kind == 4: if
			0x41, 0x80, 0x08, 0x41, 0x80, 0x20, 0x41, 0xfc, 0x07, 0x10, 0x00, 0x1a, // result_read(1024, 4096, 1020), drop
			0x10, 0x01, 0x1a, 0x0b, // mark, drop, end
			0x41, 0x00, 0x0b,
		},
	}
	exports := [][]byte{export("airlock_abi_v1", 0, 2), export("airlock_on_event", 0, 3), export("memory", 2, 0)}
	m := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	m = append(m, section(1, vec(types))...)
	m = append(m, section(2, vec(imports))...)
	m = append(m, section(3, append(uleb(uint32(len(funcTypes))), funcTypes...))...)
	m = append(m, section(5, []byte{0x01, 0x00, 0x01})...)
	m = append(m, section(7, vec(exports))...)
	var code [][]byte
	for _, b := range bodies {
		body := append([]byte{0x00}, b...)
		code = append(code, append(uleb(uint32(len(body))), body...))
	}
	return append(m, section(10, vec(code))...)
}

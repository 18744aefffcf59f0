package wasmbin

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// Compile bombs: a few bytes of code that make wazero's compiler create a
// value for each of the up to maxParams results (or parameters) a type
// gives a block, a branch or a call. No count in the module declares them,
// so CheckCounts has to walk the code to find them.

// wide is how many values a bomb's types carry: maxParams, the most a type
// may have.
const wide = maxParams

// Type indices of bombModule's types, and function indices of its
// functions (each function has the type of the same index).
const (
	tNone   = 0 // () -> ()
	tGives  = 1 // () -> (i32 x wide)
	tPasses = 2 // (i32 x wide) -> (i32 x wide)
	tTakes  = 3 // (i32 x wide) -> ()
)

// bombModule is a module of four functions, one of each type above, whose
// first function has the body code (without its end) and the others only
// trap. The others give or take wide values for the bodies to use.
func bombModule(code []byte) []byte { return bombModuleOf(tNone, nil, code) }

// bombModuleOf is bombModule whose first function has the type typ and
// declares locals (a vector of groups, nil for none), and with the
// sections extra (a table, a tag) between the function and code sections.
func bombModuleOf(typ byte, locals, code []byte, extra ...[]byte) []byte {
	if locals == nil {
		locals = []byte{0x00}
	}
	first := cat(locals, code, []byte{opEnd})
	values := cat(u32(wide), bytes.Repeat([]byte{0x7f}, wide))
	return module(
		section(secType, vec(
			[]byte{0x60, 0x00, 0x00},
			cat([]byte{0x60, 0x00}, values),
			cat([]byte{0x60}, values, values),
			cat([]byte{0x60}, values, []byte{0x00}),
		)),
		section(secFunction, vec([]byte{typ}, []byte{tGives}, []byte{tPasses}, []byte{tTakes})),
		cat(extra...),
		section(secCode, vec(
			cat(u32(uint32(len(first))), first),
			body(opUnreachable, opEnd),
			body(opUnreachable, opEnd),
			body(opEnd),
		)),
	)
}

// A bomb is a body made of a prefix, n copies of a unit, a middle, n
// copies of a closing and a suffix: nested bombs close their units'
// blocks after the middle.
type bomb struct {
	name                                string
	prefix, unit, middle, close, suffix []byte
	// features the compiler needs beyond the host's (try_table's
	// exceptions).
	features api.CoreFeatures
}

// code is b's body with n units.
func (b bomb) code(n int) []byte {
	return cat(b.prefix, bytes.Repeat(b.unit, n), b.middle, bytes.Repeat(b.close, n), b.suffix)
}

// units is how many units make a body of about size bytes.
func (b bomb) units(size int) int {
	return max(1, (size-len(b.prefix)-len(b.middle)-len(b.suffix))/(len(b.unit)+len(b.close)))
}

const (
	opBlock   = 0x02
	opLoop    = 0x03
	opElse    = 0x05
	opBr      = 0x0c
	opBrIf    = 0x0d
	opBrTable = 0x0e
	opCall    = 0x10
	opTry     = 0x1f
	opI32     = 0x41
)

// bombs are the ways to make many values in a few bytes, each a valid
// module (try_tables with exceptions enabled).
var bombs = []bomb{
	{name: "blocks", unit: []byte{opBlock, tGives, opUnreachable, opEnd}, suffix: []byte{opUnreachable}},
	{name: "blocks with params", prefix: []byte{opCall, tGives}, unit: []byte{opBlock, tPasses, opUnreachable, opEnd}, suffix: []byte{opUnreachable}},
	{name: "nested blocks", unit: []byte{opBlock, tGives}, middle: []byte{opUnreachable}, close: []byte{opEnd}, suffix: []byte{opUnreachable}},
	{name: "loops", unit: []byte{opLoop, tGives, opUnreachable, opEnd}, suffix: []byte{opUnreachable}},
	{name: "ifs", unit: []byte{opI32, 0x00, opIf, tGives, opUnreachable, opElse, opUnreachable, opEnd}, suffix: []byte{opUnreachable}},
	{name: "try_tables", unit: []byte{opTry, tGives, 0x00, opUnreachable, opEnd}, suffix: []byte{opUnreachable},
		features: experimental.CoreFeaturesExceptionHandling},
	{name: "calls", unit: []byte{opCall, tGives}, suffix: []byte{opUnreachable}},
	{name: "calls with params", prefix: []byte{opCall, tGives}, unit: []byte{opCall, tPasses}, suffix: []byte{opUnreachable}},
	{name: "br_ifs", prefix: []byte{opBlock, tGives, opCall, tGives}, unit: []byte{opI32, 0x00, opBrIf, 0x00}, suffix: []byte{opEnd, opUnreachable}},
	// The br_table's vector length is in its prefix: see bombWasm.
	{name: "br_table", prefix: []byte{opBlock, tGives, opCall, tGives, opI32, 0x00, opBrTable}, unit: []byte{0x00},
		suffix: []byte{0x00, opEnd, opUnreachable}},
}

// countedValues is the values CheckCounts counts in wasm, with no limit.
func countedValues(wasm []byte) uint64 {
	c := &countCheck{localsLimit: math.MaxUint64, valuesLimit: math.MaxUint64}
	c.module(wasm)
	return c.values
}

// bombWasm is the bomb b with n units, a valid module.
func bombWasm(b bomb, n int) []byte {
	if b.name == "br_table" { // n labels, then the default
		return bombModule(cat(b.prefix, u32(uint32(n)), bytes.Repeat(b.unit, n), b.suffix))
	}
	return bombModule(b.code(n))
}

// Costs of bombs not counted, for the record: values kept alive across
// many blocks, on the stack or in locals. Each unit is an empty if.
var liveBombs = []bomb{
	{name: "stack values live across ifs", prefix: []byte{opCall, tGives}, unit: []byte{opI32, 0x00, opIf, blockEmpty, opEnd},
		suffix: []byte{opCall, tTakes}},
	{name: "20 calls' results live across ifs", prefix: bytes.Repeat([]byte{opCall, tGives}, 20), unit: []byte{opI32, 0x00, opIf, blockEmpty, opEnd},
		suffix: bytes.Repeat([]byte{opCall, tTakes}, 20)},
	// No type with more than one value: 2000 constants, summed after the
	// ifs. This one stays cheap (0.1 s at 20 KB): constants are not kept
	// live.
	{name: "2000 i32.consts live across ifs", prefix: bytes.Repeat([]byte{opI32, 0x01}, 2000), unit: []byte{opI32, 0x00, opIf, blockEmpty, opEnd},
		suffix: append(bytes.Repeat([]byte{0x6a}, 1999), 0x1a)},
}

// localsBomb is a body of wide locals, n empty ifs, and a read of every
// local: wazero's SSA construction may give each local a block parameter
// at every merge it is read across.
func localsBomb(n int) []byte {
	code := bytes.Repeat([]byte{opI32, 0x00, opIf, blockEmpty, opEnd}, n)
	for i := range wide {
		code = append(AppendU32(append(code, 0x20), uint32(i)), 0x1a) // local.get i, drop
	}
	return bombModuleOf(tNone, cat([]byte{0x01}, u32(wide), []byte{0x7f}), code)
}

// TestCompileBombCost measures what wazero's compiler spends on each bomb
// at a few sizes, each in a process of its own for its peak memory. It
// takes minutes, so it runs only with AIRLOCK_BOMB_COST=1, and:
//
//	AIRLOCK_BOMB_SIZES="2048 8192"  body sizes, in bytes
//	AIRLOCK_BOMB_ONLY=calls         only the bombs whose name has this
//	AIRLOCK_BOMB_EDGE="65536"       also each bomb at CheckCounts' limit
//	                                for a module of this size
//	AIRLOCK_BOMB_COST_GO=/tmp/h.wasm  also a real module, to compare
//
// Some of what it measured (2 cores, wazero 1.12, seconds and MiB
// allocated; host/RATIONALE.md has more):
//
//	blocks, 36 KB              8.2 M values   0.33 s    386 MiB
//	calls with params, 12 KB   8.2 M values  11.5 s   3558 MiB
//	br_ifs, 36 KB              8.2 M values  12.7 s    119 MiB
//	br_table, 12 KB            8.2 M values  13.4 s     94 MiB
//	locals live across ifs, 36 KB  0 values  17.8 s   1241 MiB
//	worst at the limit, 1 MB   181 k values   0.45 s    87 MiB
//	Go hello example, 2.7 MB    33 k values   1.8 s     39 MiB
func TestCompileBombCost(t *testing.T) {
	if v := os.Getenv("AIRLOCK_BOMB_CHILD"); v != "" {
		compileBombChild(t, v)
		return
	}
	if os.Getenv("AIRLOCK_BOMB_COST") != "1" {
		t.Skip("measures for minutes: set AIRLOCK_BOMB_COST=1")
	}
	sizes := []int{2 << 10, 4 << 10, 8 << 10}
	if s := os.Getenv("AIRLOCK_BOMB_SIZES"); s != "" {
		sizes = nil
		for _, f := range strings.Fields(s) {
			n, _ := strconv.Atoi(f)
			sizes = append(sizes, n)
		}
	}
	base := runBombChild(t, "baseline:0")
	t.Logf("baseline process: %d KiB peak RSS", base.rss>>10)
	t.Logf("%-30s %8s %10s %8s %9s %9s %9s", "bomb", "bytes", "counted", "seconds", "MiB alloc", "MiB RSS", "µs/value")
	measure := func(name string, spec string) {
		m := runBombChild(t, spec)
		var perValue float64
		if m.values > 0 {
			perValue = m.seconds * 1e6 / float64(m.values)
		}
		t.Logf("%-30s %8d %10d %8.2f %9.0f %9.0f %9.2f %s", name, m.bytes, m.values, m.seconds, float64(m.alloc)/(1<<20), (float64(m.rss)-float64(base.rss))/(1<<20), perValue, m.err)
	}
	if path := os.Getenv("AIRLOCK_BOMB_COST_GO"); path != "" {
		measure("go module", "file:"+path)
	}
	only := os.Getenv("AIRLOCK_BOMB_ONLY")
	// With AIRLOCK_BOMB_EDGE, the bombs at the limit CheckCounts sets for
	// modules of the sizes given: the worst it accepts.
	for _, f := range strings.Fields(os.Getenv("AIRLOCK_BOMB_EDGE")) {
		for _, b := range bombs {
			if only == "" || strings.Contains(b.name, only) {
				measure(b.name+" at the limit", fmt.Sprintf("edge/%s:%s", b.name, f))
			}
		}
	}
	for _, b := range append(append([]bomb(nil), bombs...), liveBombs...) {
		if only != "" && !strings.Contains(b.name, only) {
			continue
		}
		for _, size := range sizes {
			measure(b.name, fmt.Sprintf("%s:%d", b.name, b.units(size)))
		}
	}
	if only == "" || only == "locals" {
		for _, size := range sizes {
			measure("locals live across ifs", fmt.Sprintf("locals:%d", max(1, (size-4*wide)/5)))
		}
	}
}

// bombAtTheLimit is the bomb b with as many units as CheckCounts accepts
// in a module of size bytes, padded to that size.
func bombAtTheLimit(t *testing.T, b bomb, size int) []byte {
	base := countedValues(bombWasm(b, 0))
	perUnit := countedValues(bombWasm(b, 1)) - base
	n := (maxValues + uint64(size)/bytesPerValue - base) / perUnit
	wasm := padTo(t, bombWasm(b, int(n)), size)
	if err := CheckCounts(wasm); err != nil {
		t.Fatal(err)
	}
	return wasm
}

type bombCost struct {
	bytes, values, alloc, rss uint64
	seconds                   float64
	err                       string
}

// runBombChild runs this test binary again to compile the bomb spec, and
// reads what it printed and its peak RSS.
func runBombChild(t *testing.T, spec string) bombCost {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCompileBombCost$", "-test.v")
	cmd.Env = append(os.Environ(), "AIRLOCK_BOMB_CHILD="+spec)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", spec, err, out)
	}
	var c bombCost
	i := bytes.Index(out, []byte("COST "))
	if i < 0 {
		t.Fatalf("%s: no result in\n%s", spec, out)
	}
	line, _, _ := bytes.Cut(out[i+5:], []byte("\n"))
	if _, err := fmt.Sscanf(string(line), "%d %d %d %g", &c.bytes, &c.values, &c.alloc, &c.seconds); err != nil {
		t.Fatalf("%s: %q: %v", spec, line, err)
	}
	if _, e, ok := bytes.Cut(line, []byte(" err=")); ok {
		c.err = "error: " + string(e)
	}
	c.rss = uint64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) << 10
	return c
}

// compileBombChild compiles the module named by spec ("bomb name:units",
// "locals:ifs", "file:path" or "baseline:0") with wazero's compiler and
// prints its size, the values CheckCounts counts in it, the bytes allocated
// and the seconds taken.
func compileBombChild(t *testing.T, spec string) {
	i := strings.LastIndexByte(spec, ':')
	name, arg := spec[:i], spec[i+1:]
	n, _ := strconv.Atoi(arg)
	var wasm []byte
	features := api.CoreFeaturesV2
	switch name {
	case "baseline":
		wasm = bombModule(nil)
	case "locals":
		wasm = localsBomb(n)
	case "file":
		var err error
		if wasm, err = os.ReadFile(arg); err != nil {
			t.Fatal(err)
		}
	default:
		if edge, ok := strings.CutPrefix(name, "edge/"); ok {
			for _, b := range bombs {
				if b.name == edge {
					wasm = bombAtTheLimit(t, b, n)
					features |= b.features
				}
			}
			break
		}
		for _, b := range append(append([]bomb(nil), bombs...), liveBombs...) {
			if b.name == name {
				wasm = bombWasm(b, n)
				features |= b.features
			}
		}
	}
	if wasm == nil {
		t.Fatalf("no bomb %q", name)
	}
	values := countedValues(wasm)
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCoreFeatures(features))
	defer r.Close(ctx)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err := r.CompileModule(ctx, wasm)
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	msg := ""
	if err != nil {
		msg = " err=" + err.Error()
	}
	fmt.Printf("COST %d %d %d %g%s\n", len(wasm), values, after.TotalAlloc-before.TotalAlloc, took.Seconds(), msg)
}

// Each bomb of one unit is a module wazero compiles and CheckCounts
// accepts; of 16 KB, CheckCounts refuses it, and names where and why.
func TestCheckCountsRefusesCompileBombs(t *testing.T) {
	ctx := context.Background()
	for _, b := range bombs {
		t.Run(b.name, func(t *testing.T) {
			one := bombWasm(b, 1)
			r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithCoreFeatures(api.CoreFeaturesV2|b.features))
			defer r.Close(ctx)
			if _, err := r.CompileModule(ctx, one); err != nil {
				t.Fatalf("one unit: wazero refuses it: %v", err)
			}
			if err := CheckCounts(one); err != nil {
				t.Fatalf("one unit: %v", err)
			}
			big := bombWasm(b, b.units(16<<10))
			err := CheckCounts(big)
			want := fmt.Sprintf("above the module's limit of %d (50000 and one per 8 bytes of the module); wazero's compiler would need time and memory for each", maxValues+len(big)/bytesPerValue)
			if err == nil || !strings.HasPrefix(err.Error(), "code section: body 0 (function 0): at offset ") || !strings.HasSuffix(err.Error(), want) {
				t.Errorf("%d bytes, %d values: got %v\nwant ...%s", len(big), countedValues(big), err, want)
			}
		})
	}
}

// The whole message, for two small bombs just past the limit.
func TestCheckCountsCompileBombMessages(t *testing.T) {
	for _, tc := range []struct {
		name string
		wasm []byte
		want string
	}{
		{"60 blocks of 1000 results", bombWasm(bombs[0], 60),
			"code section: body 0 (function 0): at offset 4242, the blocks, branches and calls of the bodies so far pass 51000 values, above the module's limit of 50536 (50000 and one per 8 bytes of the module); wazero's compiler would need time and memory for each"},
		{"a br_table of 60 labels to a block of 1000 results", bombWasm(bombs[len(bombs)-1], 60),
			"code section: body 0 (function 0): at offset 4046, the blocks, branches and calls of the bodies so far pass 63000 values, above the module's limit of 50515 (50000 and one per 8 bytes of the module); wazero's compiler would need time and memory for each"},
	} {
		if err := CheckCounts(tc.wasm); err == nil || err.Error() != tc.want {
			t.Errorf("%s:\n got %v\nwant %s", tc.name, err, tc.want)
		}
	}
}

// A module may pass maxValues and one value per bytesPerValue bytes: at
// the limit it is accepted, and one byte shorter it is refused.
func TestCheckCountsValuesAtTheLimit(t *testing.T) {
	wasm := bombWasm(bombs[0], 51)
	values := int(countedValues(wasm))
	size := (values - maxValues) * bytesPerValue
	if err := CheckCounts(padTo(t, wasm, size)); err != nil {
		t.Errorf("%d values in %d bytes: %v", values, size, err)
	}
	err := CheckCounts(padTo(t, wasm, size-1))
	want := fmt.Sprintf("above the module's limit of %d", values-1)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%d values in %d bytes: got %v, want it refused", values, size-1, err)
	}
}

// padTo appends a custom section to wasm to make it n bytes long.
func padTo(t *testing.T, wasm []byte, n int) []byte {
	t.Helper()
	for sizeLen := 1; sizeLen <= 5; sizeLen++ {
		size := n - len(wasm) - 1 - sizeLen
		if size >= 4 && len(u32(uint32(size))) == sizeLen {
			return cat(wasm, []byte{secCustom}, u32(uint32(size)), wasmName("pad"), make([]byte, size-4))
		}
	}
	t.Fatalf("cannot pad %d bytes to %d", len(wasm), n)
	return nil
}

// What CheckCounts counts, construct by construct, in valid modules.
func TestCheckCountsCountsValues(t *testing.T) {
	table := section(secTable, vec([]byte{0x70, 0x00, 0x01}))
	tag := section(secTag, vec([]byte{0x00, tTakes}))
	for _, tc := range []struct {
		name     string
		wasm     []byte
		features api.CoreFeatures
		want     uint64
	}{
		{"an empty block", bombModule([]byte{opBlock, blockEmpty, opEnd}), 0, 0},
		{"a block of a value type", bombModule([]byte{opBlock, 0x7f, opI32, 0x00, opEnd, 0x1a}), 0, 0},
		{"a block of a type index: its results", bombModule([]byte{opBlock, tGives, opUnreachable, opEnd, opUnreachable}), 0, wide},
		{"its params too", bombModule([]byte{opCall, tGives, opBlock, tPasses, opUnreachable, opEnd, opUnreachable}), 0, 3 * wide},
		{"a loop", bombModule([]byte{opLoop, tGives, opUnreachable, opEnd, opUnreachable}), 0, wide},
		{"if and else", bombModule([]byte{opI32, 0x00, opIf, tGives, opUnreachable, opElse, opUnreachable, opEnd, opUnreachable}), 0, 2 * wide},
		{"a br to a block: its results", bombModule([]byte{opBlock, tGives, opCall, tGives, opBr, 0x00, opEnd, opUnreachable}), 0, 3 * wide},
		{"a br to a loop: its params", bombModule([]byte{opCall, tGives, opLoop, tPasses, opBr, 0x00, opEnd, opUnreachable}), 0, 4 * wide},
		{"a br_if", bombModule([]byte{opBlock, tGives, opCall, tGives, opI32, 0x00, opBrIf, 0x00, opEnd, opUnreachable}), 0, 3 * wide},
		{"a br_table, per label", bombModule([]byte{opBlock, tGives, opCall, tGives, opI32, 0x00, opBrTable, 0x02, 0x00, 0x00, 0x00, opEnd, opUnreachable}), 0, 5 * wide},
		{"a return", bombModuleOf(tGives, nil, []byte{opCall, tGives, 0x0f}), 0, 2 * wide},
		{"a br_if to the function", bombModuleOf(tGives, nil, []byte{opCall, tGives, opI32, 0x00, opBrIf, 0x00}), 0, 2 * wide},
		{"a call: params and results", bombModule([]byte{opCall, tGives, opCall, tPasses, opCall, tTakes}), 0, 4 * wide},
		{"a call_indirect", bombModuleOf(tNone, nil, []byte{opCall, tGives, opI32, 0x00, 0x11, tPasses, 0x00, opCall, tTakes}, table), 0, 4 * wide},
		{"a return_call", bombModuleOf(tGives, nil, []byte{0x12, tGives}), experimental.CoreFeaturesTailCall, wide},
		{"a return_call_indirect", bombModuleOf(tGives, nil, []byte{opI32, 0x00, 0x13, tGives, 0x00}, table), experimental.CoreFeaturesTailCall, wide},
		{"a throw: its tag's params", bombModuleOf(tNone, nil, []byte{opCall, tGives, 0x08, 0x00}, tag), experimental.CoreFeaturesExceptionHandling, 2 * wide},
		{"a try_table's catch: its label", bombModuleOf(tNone, nil, []byte{opBlock, tGives, opTry, tNone, 0x01, 0x00, 0x00, 0x00, opEnd, opUnreachable, opEnd, opUnreachable}, tag),
			experimental.CoreFeaturesExceptionHandling, 2 * wide},
	} {
		ctx := context.Background()
		r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithCoreFeatures(api.CoreFeaturesV2|tc.features))
		if _, err := r.CompileModule(ctx, tc.wasm); err != nil {
			t.Errorf("%s: wazero refuses the module: %v", tc.name, err)
		}
		r.Close(ctx)
		if got := countedValues(tc.wasm); got != tc.want {
			t.Errorf("%s: %d values, want %d", tc.name, got, tc.want)
		}
	}
	// A body the walk cannot read is one wazero refuses
	// (TestWazeroRefusesWhatTheWalkSkips): it is counted up to there.
	callRef := bombModule([]byte{opBlock, tGives, opUnreachable, opEnd, opUnreachable, 0x14, 0x01, opBlock, tGives, opUnreachable, opEnd})
	if got := countedValues(callRef); got != wide {
		t.Errorf("a body with call_ref: %d values, want %d", got, wide)
	}
}

// CheckCounts stops counting a body at an opcode Instrument's table does
// not know, because wazero, with the features the host enables, refuses
// every such opcode before it compiles anything. This is that claim, for
// every one-byte opcode and every prefixed one up to a few past the
// table's.
func TestWazeroRefusesWhatTheWalkSkips(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx) // the host's features
	defer r.Close(ctx)
	walked := map[byte]bool{0x02: true, 0x03: true, 0x04: true, 0x1f: true, opEnd: true, opGlobalGet: true, opGlobalSet: true}
	var ops [][]byte
	for op := range 256 {
		ops = append(ops, []byte{byte(op)})
		ops = append(ops, []byte{0xfd, byte(op)}, []byte{0xfe, byte(op)})
	}
	for sub := range uint32(300) {
		ops = append(ops, cat([]byte{0xfc}, u32(sub)))
	}
	ops = append(ops, cat([]byte{0xfc}, u32(1<<20)))
	skipped := 0
	for _, op := range ops {
		code := append(append([]byte(nil), op...), 0x00, 0x00, 0x00, 0x00)
		w := &reader{b: code}
		if w.immediates(w.byte()); walked[op[0]] || w.err == nil || !strings.HasPrefix(w.err.Error(), "unknown") {
			continue
		}
		skipped++
		_, err := r.CompileModule(ctx, withCode(body(append(code, opEnd)...)))
		if err == nil || !strings.Contains(err.Error(), "invalid instruction") && !strings.Contains(err.Error(), "disabled") &&
			!strings.Contains(err.Error(), "misc opcode") {
			t.Errorf("% x: wazero says %v, want it refused as unknown or disabled", op, err)
		}
	}
	t.Logf("%d opcodes the walk does not know, all refused", skipped)
}

// wazero 1.12 reads the opcode after 0xfd (SIMD) as one byte, where the
// spec has a LEB128. A second byte is an instruction to wazero, so the
// walk must see it as one: a block of a thousand values, a loop that needs
// a check.
func TestWalkReadsSIMDAsWazeroDoes(t *testing.T) {
	// type 4: (v128) -> (i32 x 999, v128); fd 80 is i16x8.abs
	t4 := cat([]byte{0x60, 0x01, 0x7b}, u32(wide), bytes.Repeat([]byte{0x7f}, wide-1), []byte{0x7b})
	unit := []byte{0xfd, 0x80, opBlock, 0x04, opUnreachable, opEnd}
	v128 := cat([]byte{0xfd, 0x0c}, make([]byte, 16))
	code := cat([]byte{0x00}, v128, bytes.Repeat(unit, 100), []byte{opUnreachable, opEnd})
	wasm := module(
		section(secType, vec([]byte{0x60, 0x00, 0x00}, []byte{0x60, 0x00, 0x00}, []byte{0x60, 0x00, 0x00}, []byte{0x60, 0x00, 0x00}, t4)),
		section(secFunction, vec([]byte{0})),
		section(secCode, vec(cat(u32(uint32(len(code))), code))),
	)
	compileWithAllFeatures(t, wasm)
	if got, want := countedValues(wasm), uint64(100*(wide+1)); got != want {
		t.Errorf("blocks after fd 80: %d values, want %d", got, want)
	}

	// v128.const, i16x8.abs, loop (br 0) end, drop
	code = cat([]byte{0x00}, v128, []byte{0xfd, 0x80, opLoop, blockEmpty, opBr, 0x00, opEnd, 0x1a, opEnd})
	spin := module(
		section(secType, vec([]byte{0x60, 0x00, 0x00})),
		section(secFunction, vec([]byte{0})),
		section(secCode, vec(cat(u32(uint32(len(code))), code))),
	)
	compileWithAllFeatures(t, spin)
	patched, err := Instrument(spin)
	if err != nil {
		t.Fatal(err)
	}
	compileWithAllFeatures(t, patched)
	if n := bytes.Count(patched, checkCode(0, 1)); n != 2 {
		t.Errorf("%d checks, want 2: at the entry and in the loop after fd 80", n)
	}
}

package plugin_test

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/internal/testenv"
)

// Load refuses a module with an impossible count, and a compile bomb, like
// any module wazero cannot compile, and without allocating by what they
// claim: Prepare runs CheckCounts before wazero reads a byte
// (internal/wasmbin tests every count and every bomb CheckCounts knows).
func TestLoadRefusesWhatCheckCountsRefuses(t *testing.T) {
	// Type 3 gives 1000 i32s; the handler calls function 2, of that type,
	// 8192 times: a few bytes that would make the compiler create 8 million
	// values.
	gives := append([]byte{0x60, 0x00, 0xe8, 0x07}, bytes.Repeat([]byte{0x7f}, 1000)...)
	bomb := testenv.Module{ExtraTypes: [][]byte{gives}, Funcs: []testenv.Func{{Type: 3, Code: []byte{0x00, 0x0b}}},
		Handler: append(bytes.Repeat([]byte{0x10, 0x02}, 8192), 0x00, 0x0b)}.Wasm()
	for _, tc := range []struct {
		name, want string
		wasm       []byte
		alloc      uint64
	}{
		{"data segments", "data section: claims 102776961 segments, but only 0 bytes are left to hold them",
			[]byte("\x00asm\x01\x00\x00\x00\x0b\x04\x81\x81\x81\x31"), 1 << 20},
		{"calls bomb", "code section: body 1 (function 1): at offset ", bomb, 4 << 20},
	} {
		c := onDisk(t, tc.wasm, "", "", slog.New(slog.DiscardHandler))
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := c.load(t)
		runtime.ReadMemStats(&after)
		want := `plugin "p": ` + filepath.Join(c.m.Dir, "p.wasm") + " is not a valid WebAssembly module: " + tc.want
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: got %v\nwant %s...", tc.name, err, want)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > tc.alloc {
			t.Errorf("%s: Load allocated %d bytes, above %d", tc.name, n, tc.alloc)
		}
	}
}

package security

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/internal/timer"
)

// compileBomb is a module of 12 KB whose types pass 1000 values: one
// function gives 1000 i32s, another takes and gives them, and the first
// calls the second 4000 times over. wazero's compiler makes values and
// moves for each: about 11 s and 3.5 GB for this module (the "calls with
// params" bomb of TestCompileBombCost in internal/plugin).
func compileBomb() []byte {
	leb := func(v int) []byte {
		var b []byte
		for ; v >= 0x80; v >>= 7 {
			b = append(b, byte(v)|0x80)
		}
		return append(b, byte(v))
	}
	section := func(id byte, body ...[]byte) []byte {
		b := bytes.Join(body, nil)
		return append(append([]byte{id}, leb(len(b))...), b...)
	}
	values := append(leb(1000), bytes.Repeat([]byte{0x7f}, 1000)...) // 1000 i32s
	code := append([]byte{0x00, 0x10, 0x01}, bytes.Repeat([]byte{0x10, 0x02}, 4000)...)
	code = append(code, 0x00, 0x0b) // (no locals) call 1, call 2 x 4000, unreachable, end
	trap := []byte{0x03, 0x00, 0x00, 0x0b}
	return bytes.Join([][]byte{
		[]byte("\x00asm\x01\x00\x00\x00"),
		section(1, []byte{0x03, 0x60, 0x00, 0x00}, // 3 types: () -> ()
			[]byte{0x60, 0x00}, values, // () -> (1000 i32)
			[]byte{0x60}, values, values), // (1000 i32) -> (1000 i32)
		section(3, []byte{0x03, 0x00, 0x01, 0x02}),
		section(10, []byte{0x03}, leb(len(code)), code, trap, trap),
	}, nil)
}

// A compile bomb is refused at load, before wazero compiles it, as a load
// error of that plugin; the host starts, and its other plugins handle
// events.
func TestCompileBombIsRefusedAtLoad(t *testing.T) {
	var bomb string
	start := time.Now()
	h, log, stop := runPlain(t, "", func(dir string) {
		bomb = filepath.Join(dir, "plugins", "bomb")
		if err := os.MkdirAll(bomb, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bomb, "plugin.toml"), []byte("name = \"bomb\"\nversion = \"0.1.0\"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bomb, "bomb.wasm"), compileBomb(), 0o644); err != nil {
			t.Fatal(err)
		}
	}, map[string]string{"steady": ""})
	defer stop()
	log.Wait(1, "INFO started", "plugin=steady")
	t.Logf("host started in %s", time.Since(start).Round(time.Millisecond))
	err := h.Failures()[bomb]
	want := "bomb.wasm is not a valid WebAssembly module: code section: body 0 (function 0): at offset "
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "wazero's compiler would need time and memory") {
		t.Fatalf("the bomb's load error = %v, want it to say %q", err, want)
	}
	h.Deliver("steady", timer.Event("steady", "write:0", time.Now()))
	log.Wait(1, "write 0 KiB: ", "plugin=steady")
}

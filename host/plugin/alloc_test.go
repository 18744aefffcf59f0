package plugin_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/host/plugin"
)

// emptyHandler is the least module that speaks ABI v1:
//
//	(memory (export "memory") 1)
//	(func (export "airlock_abi_v1"))
//	(func (export "airlock_on_event") (param i32 i32) (result i32) (i32.const 0))
func emptyHandler() []byte {
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, 0x01, 0x0a, 0x02, 0x60, 0x00, 0x00, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f) // types
	m = append(m, 0x03, 0x03, 0x02, 0x00, 0x01)                                           // functions
	m = append(m, 0x05, 0x03, 0x01, 0x00, 0x01)                                           // memory
	exports := []byte{0x03}
	for _, e := range []struct {
		name      string
		kind, idx byte
	}{{"memory", 2, 0}, {abi.ExportVersion, 0, 0}, {abi.ExportEvent, 0, 1}} {
		exports = append(append(append(exports, byte(len(e.name))), e.name...), e.kind, e.idx)
	}
	m = append(append(m, 0x07, byte(len(exports))), exports...)
	return append(m, 0x0a, 0x09, 0x02, 0x02, 0x00, 0x0b, 0x04, 0x00, 0x41, 0x00, 0x0b) // code
}

// Delivering an event allocates nothing in steady state: the target of
// BENCHMARKS.md's event delivery, kept here as a count, not a time.
func TestHandleDoesNotAllocate(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.wasm"), emptyHandler(), 0o644); err != nil {
		t.Fatal(err)
	}
	rt := manifest.DefaultRuntime()
	rt.File, rt.StateDir = filepath.Join(dir, "runtime.toml"), dir
	m, err := manifest.ParseManifest(filepath.Join(dir, "plugin.toml"), []byte("name = \"p\"\nwasm = \"p.wasm\"\n"), &rt, manifest.Schema{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := plugin.Load(ctx, m, plugin.Options{Runtime: &rt, Cache: wazero.NewCompilationCache(), Gate: gate.New(nil), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	in, err := p.Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	ev := capability.Event{Kind: uint32(abi.EventTimer), Payload: make([]byte, 32)}
	if allocs := testing.AllocsPerRun(1000, func() {
		if err := in.Handle(ev); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("Handle: %.1f allocations per event, want 0", allocs)
	}
}

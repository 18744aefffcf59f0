package plugin_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/logtest"
	"github.com/airlockhq/airlock/internal/plugin"
	"github.com/airlockhq/airlock/internal/wasmbin"
)

// abiModule is the least module that speaks ABI v1, with body as its
// handler's code and extra exports of function 0:
//
//	(memory (export "memory") 1)
//	(func (export "airlock_abi_v1"))
//	(func (export "airlock_on_event") (param i32 i32) (result i32) <body>)
func abiModule(body []byte, extraExports ...string) []byte {
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, 0x01, 0x0a, 0x02, 0x60, 0x00, 0x00, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f) // types
	m = append(m, 0x03, 0x03, 0x02, 0x00, 0x01)                                           // functions
	m = append(m, 0x05, 0x03, 0x01, 0x00, 0x01)                                           // memory
	type export struct {
		name      string
		kind, idx byte
	}
	list := []export{{"memory", 2, 0}, {abi.ExportVersion, 0, 0}, {abi.ExportEvent, 0, 1}}
	for _, name := range extraExports {
		list = append(list, export{name, 0, 0})
	}
	exports := []byte{byte(len(list))}
	for _, e := range list {
		exports = append(append(append(exports, byte(len(e.name))), e.name...), e.kind, e.idx)
	}
	m = append(append(m, 0x07, byte(len(exports))), exports...)
	handler := append([]byte{0x00}, body...) // no locals
	code := append([]byte{0x02, 0x02, 0x00, 0x0b, byte(len(handler))}, handler...)
	return append(append(m, 0x0a, byte(len(code))), code...)
}

// load loads wasm as plugin "p" with the given extra manifest lines.
func load(t *testing.T, wasm []byte, manifestExtra string, logger *slog.Logger) *plugin.Plugin {
	t.Helper()
	p, err := onDisk(t, wasm, manifestExtra, "", logger).load(t)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Delivering an event allocates nothing in steady state: the target of
// BENCHMARKS.md's event delivery, kept here as a count, not a time.
func TestHandleDoesNotAllocate(t *testing.T) {
	p := load(t, abiModule([]byte{0x41, 0x00, 0x0b}), "", slog.New(slog.DiscardHandler))
	in, err := p.Instantiate(context.Background())
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

// A module the host cannot instrument (here, one that exports the reserved
// name itself) still loads, with a warning, and its runaway handler is
// still stopped, by wazero's own checks.
func TestUninstrumentedModuleIsStillStopped(t *testing.T) {
	log, logger := logtest.New(t)
	spin := []byte{0x03, 0x40, 0x0c, 0x00, 0x0b, 0x00, 0x0b} // loop br 0 end unreachable
	p := load(t, abiModule(spin, wasmbin.InterruptExport), "[limits]\nhandler_timeout = \"100ms\"\n", logger)
	if log.Count("module not instrumented for the watchdog", "reserves") != 1 {
		t.Fatalf("want one warning that the module is not instrumented; log:\n%s", strings.Join(log.Lines(), "\n"))
	}
	_, err := p.Instantiate(context.Background())
	if err == nil || !strings.Contains(err.Error(), "ran past limits.handler_timeout = 100ms") {
		t.Fatalf("start handler: got %v, want it stopped by the watchdog", err)
	}
}

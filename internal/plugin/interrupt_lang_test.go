package plugin_test

import (
	"context"
	"os"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/wasmbin"
)

// What each SDK's toolchain emits must be instrumentable: a module that is
// not falls back to wazero's checks, which work but cost a goroutine per
// event and a trip through Go per loop iteration. The modules must stay
// valid and keep their exports and imports. Before and after, CheckCounts
// must find their counts real, or Load would refuse them.
func TestInstrumentWhatTheToolchainsEmit(t *testing.T) {
	for _, tc := range []struct {
		lang  string
		build func(testing.TB, string) string
		dir   string
	}{
		{"go", testenv.BuildGo, "examples/hello"},
		{"c", testenv.BuildC, "examples/hello-c"},
		{"rust", testenv.BuildRust, "examples/hello-rust"},
		{"assemblyscript", testenv.BuildAS, "examples/hello-as"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			orig, err := os.ReadFile(tc.build(t, tc.dir))
			if err != nil {
				t.Fatal(err)
			}
			if err := wasmbin.CheckCounts(orig); err != nil {
				t.Fatalf("%s: Load would refuse it: %v", tc.dir, err)
			}
			patched, err := wasmbin.Instrument(orig)
			if err != nil {
				t.Fatalf("%s: %v", tc.dir, err)
			}
			if err := wasmbin.CheckCounts(patched); err != nil {
				t.Fatalf("%s: instrumented: %v", tc.dir, err)
			}
			ctx := context.Background()
			r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
			defer r.Close(ctx)
			wasi_snapshot_preview1.MustInstantiate(ctx, r)
			before, err := r.CompileModule(ctx, orig)
			if err != nil {
				t.Fatal(err)
			}
			after, err := r.CompileModule(ctx, patched)
			if err != nil {
				t.Fatalf("the instrumented module does not compile: %v", err)
			}
			if len(after.ImportedFunctions()) != len(before.ImportedFunctions()) {
				t.Errorf("imports: %d before, %d after", len(before.ImportedFunctions()), len(after.ImportedFunctions()))
			}
			if len(after.ExportedFunctions()) != len(before.ExportedFunctions()) {
				t.Errorf("exported functions: %d before, %d after", len(before.ExportedFunctions()), len(after.ExportedFunctions()))
			}
			t.Logf("%s: %d bytes, %d instrumented (+%.1f%%)", tc.dir, len(orig), len(patched), 100*float64(len(patched)-len(orig))/float64(len(orig)))
		})
	}
}

// BenchmarkInstrumentGo measures instrument on a standard Go module, the
// largest a plugin is likely to be (about 2.7 MB); Load runs it when the
// instrumented module is not in Options.InstrumentCache.
func BenchmarkInstrumentGo(b *testing.B) {
	orig, err := os.ReadFile(testenv.BuildGo(b, "examples/hello"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(orig)))
	for b.Loop() {
		if _, err := wasmbin.Instrument(orig); err != nil {
			b.Fatal(err)
		}
	}
}

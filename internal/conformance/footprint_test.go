package conformance

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/internal/testenv"
)

// TestFootprint measures, for the conformance plugin of each language, the
// module's size, its linear memory once started, and the host heap that
// each further instance costs. `go test -v -run Footprint` prints the
// table in sdk/README.md.
func TestFootprint(t *testing.T) {
	const n = 20
	t.Logf("%-5s %12s %14s %16s", "lang", "module", "linear memory", "heap/instance")
	for _, lang := range testenv.Langs {
		t.Run(lang.Name, func(t *testing.T) {
			wasm := lang.Build(t, "internal/conformance/testdata/"+lang.Name)
			b, err := os.ReadFile(wasm)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			rt := wazero.NewRuntime(ctx)
			defer rt.Close(ctx)
			wasi_snapshot_preview1.MustInstantiate(ctx, rt)
			compiled, err := rt.CompileModule(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			if err := testenv.StubImports(ctx, rt, compiled); err != nil {
				t.Fatal(err)
			}
			start := func(i int) api.Module {
				mod, err := rt.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithName(fmt.Sprint(i)))
				if err != nil {
					t.Fatal(err)
				}
				if f := mod.ExportedFunction(abi.ExportInit); f != nil {
					if _, err := f.Call(ctx); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := mod.ExportedFunction(abi.ExportEvent).Call(ctx, uint64(abi.EventStart), 0); err != nil {
					t.Fatal(err)
				}
				return mod
			}
			first := start(0)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			mods := make([]api.Module, n)
			for i := range mods {
				mods[i] = start(i + 1)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			perInstance := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
			t.Logf("%-5s %12s %14s %16s", lang.Name, kib(int64(len(b))), kib(int64(first.Memory().Size())), kib(perInstance))
			runtime.KeepAlive(mods)
		})
	}
}

func kib(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f KiB", float64(n)/1024)
}

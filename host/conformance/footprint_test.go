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
	"github.com/airlockhq/airlock/host/internal/testenv"
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
			wasm := lang.Build(t, "host/conformance/testdata/"+lang.Name)
			b, err := os.ReadFile(wasm)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			rt := wazero.NewRuntime(ctx)
			defer rt.Close(ctx)
			wasi_snapshot_preview1.MustInstantiate(ctx, rt)
			if err := stubBase(ctx, rt); err != nil {
				t.Fatal(err)
			}
			compiled, err := rt.CompileModule(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			if err := stubCapabilities(ctx, rt, compiled); err != nil {
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

// stubCapabilities provides each capability module that compiled imports
// with functions that return unavailable: the footprint is measured after
// start, which calls none of them.
func stubCapabilities(ctx context.Context, rt wazero.Runtime, compiled wazero.CompiledModule) error {
	builders := map[string]wazero.HostModuleBuilder{}
	var order []string
	for _, f := range compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod == abi.ModuleBase || mod == wasi_snapshot_preview1.ModuleName {
			continue
		}
		b, ok := builders[mod]
		if !ok {
			b = rt.NewHostModuleBuilder(mod)
			builders[mod] = b
			order = append(order, mod)
		}
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, stack []uint64) {
			stack[0] = uint64(abi.Unavailable)
		}), f.ParamTypes(), f.ResultTypes()).Export(name)
	}
	for _, mod := range order {
		if _, err := builders[mod].Instantiate(ctx); err != nil {
			return err
		}
	}
	return nil
}

// stubBase provides airlock_v1 with functions that do nothing, so that a
// plugin can be instantiated outside the host and measured alone.
func stubBase(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(abi.ModuleBase)
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	fn := func(name string, params ...api.ValueType) {
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, m api.Module, stack []uint64) {
			if name == abi.FuncConfigGet || name == abi.FuncResultRead {
				m.Memory().WriteUint32Le(uint32(stack[len(params)-1]), 0)
				stack[0] = uint64(abi.NotFound)
				return
			}
			stack[0] = 0
		}), params, []api.ValueType{i32}).Export(name)
	}
	fn(abi.FuncLog, i32, i32, i32)
	fn(abi.FuncConfigGet, i32, i32, i32, i32, i32)
	fn(abi.FuncClockNow, i32)
	fn(abi.FuncSleep, i64)
	fn(abi.FuncDeadline, i32)
	fn(abi.FuncResultRead, i32, i32, i32)
	_, err := b.Instantiate(ctx)
	return err
}

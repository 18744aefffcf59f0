package testenv

import (
	"context"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/airlockhq/airlock/abi"
)

// StubImports provides every function compiled imports, except WASI's, with
// one that does nothing, so that a plugin can be instantiated in a bare
// wazero runtime and measured alone (the anchors of the footprint and
// start-up measurements). The base functions succeed and find no config
// value or result; every capability function answers Unavailable. The
// caller instantiates WASI itself.
func StubImports(ctx context.Context, rt wazero.Runtime, compiled wazero.CompiledModule) error {
	builders := map[string]wazero.HostModuleBuilder{}
	var order []string
	for _, f := range compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod == wasi_snapshot_preview1.ModuleName {
			continue
		}
		b, ok := builders[mod]
		if !ok {
			b = rt.NewHostModuleBuilder(mod)
			builders[mod] = b
			order = append(order, mod)
		}
		params, results := f.ParamTypes(), f.ResultTypes()
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, m api.Module, stack []uint64) {
			switch {
			case len(results) == 0:
			case mod != abi.ModuleBase:
				stack[0] = uint64(abi.Unavailable)
			case name == abi.FuncConfigGet || name == abi.FuncResultRead:
				// No value: a length of 0 at out_len_ptr, the last parameter.
				m.Memory().WriteUint32Le(uint32(stack[len(params)-1]), 0)
				stack[0] = uint64(abi.NotFound)
			default:
				stack[0] = 0
			}
		}), params, results).Export(name)
	}
	for _, mod := range order {
		if _, err := builders[mod].Instantiate(ctx); err != nil {
			return err
		}
	}
	return nil
}

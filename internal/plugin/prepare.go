package plugin

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/isolate"
)

// Prepared is a plugin's module made ready to instantiate: checked,
// instrumented for the watchdog and limits.memory, compiled, and its
// imports checked against the manifest's grants. airlock run (Load) and
// airlock check both make theirs with Prepare, so that check refuses what
// run refuses and compiles exactly the bytes run compiles.
type Prepared struct {
	// Interruptible is true when Compiled carries wasmbin.Instrument's
	// checks, so that the watchdog stops a call by setting
	// wasmbin.InterruptExport. A module Instrument cannot rewrite is
	// compiled as it is, with wazero's checks.
	Interruptible bool
	// Runtime holds Compiled; whoever prepared the module closes it.
	Runtime  wazero.Runtime
	Compiled wazero.CompiledModule
	// Caps are the capabilities whose host modules the module imports,
	// each granted, by name.
	Caps []capability.Capability
}

// Prepare makes the module wasm of the plugin m ready to instantiate, with
// o's caches, Precompile, Capabilities, Gate and Logger: CheckCounts and
// Instrument (or InstrumentCache), the footprint against limits.memory,
// Precompile for a module not compiled before, the compile, and the
// imports against m's grants, each refused import through o.Gate (nil for
// refusals that are not audited, as in airlock check: nothing runs).
func Prepare(ctx context.Context, m *manifest.Manifest, wasm []byte, o Options) (p *Prepared, err error) {
	log := o.Logger.With("plugin", m.Name)
	wasm, interruptible, hit, keep, err := instrumentCache{dir: o.InstrumentCache, log: log}.module(wasm)
	if err != nil {
		return nil, fmt.Errorf("plugin %q: %s is not a valid WebAssembly module: %w", m.Name, m.Wasm, err)
	}
	if err := checkFootprint(m, wasm, interruptible); err != nil {
		return nil, err
	}
	// A module not compiled before is compiled first where it cannot cost
	// the host its memory or its time; the compile below then reads the
	// result from the shared cache.
	if !hit && o.Precompile != nil {
		if err := o.Precompile(ctx, wasm, !interruptible); err != nil {
			return nil, fmt.Errorf("plugin %q: %s was not compiled: %w", m.Name, m.Wasm, err)
		}
	}
	pages := uint32((uint64(m.Limits.Memory) + 65535) / 65536)
	cfg := wazero.NewRuntimeConfigCompiler().
		WithCompilationCache(o.Cache).
		WithMemoryLimitPages(pages).
		WithCloseOnContextDone(!interruptible)
	r := wazero.NewRuntimeWithConfig(ctx, cfg)
	defer func() {
		if err != nil {
			r.Close(ctx)
		}
	}()
	compiled, err := isolate.Compile(ctx, r, wasm)
	if err != nil {
		return nil, fmt.Errorf("plugin %q: %s is not a valid WebAssembly module: %w", m.Name, m.Wasm, err)
	}
	keep()
	g := o.Gate
	if g == nil {
		g = new(gate.Gate) // the zero Gate decides without an audit
	}
	caps, err := checkImports(ctx, compiled, m, o.Capabilities, g)
	if err != nil {
		return nil, err
	}
	for _, mem := range compiled.ExportedMemories() {
		if mem.Min() > pages {
			return nil, fmt.Errorf("plugin %q: the module needs %d KiB of memory at start, above limits.memory = %s (raise it in plugin.toml)", m.Name, mem.Min()*64, m.Limits.Memory)
		}
	}
	return &Prepared{Interruptible: interruptible, Runtime: r, Compiled: compiled, Caps: caps}, nil
}

// checkImports verifies, without running it, that a compiled module speaks
// ABI v1 and imports only what m grants. It returns the capabilities whose
// host modules the plugin imports. Each refused import goes through the gate,
// so that the audit shows it.
func checkImports(ctx context.Context, c wazero.CompiledModule, m *manifest.Manifest, caps []capability.Capability, g *gate.Gate) ([]capability.Capability, error) {
	exports := c.ExportedFunctions()
	if _, ok := exports[abi.ExportVersion]; !ok {
		return nil, fmt.Errorf("plugin %q: the module does not export %s, so it was not built for airlock ABI v1 (build it with an airlock SDK: airlock build %s)", m.Name, abi.ExportVersion, m.Dir)
	}
	if f, ok := exports[abi.ExportEvent]; !ok {
		return nil, fmt.Errorf("plugin %q: the module does not export %s, its event handler", m.Name, abi.ExportEvent)
	} else if p, r := f.ParamTypes(), f.ResultTypes(); len(p) != 2 || len(r) != 1 || p[0] != i32 || p[1] != i32 || r[0] != i32 {
		return nil, fmt.Errorf("plugin %q: %s has the wrong signature; ABI v1 wants (i32, i32) -> i32", m.Name, abi.ExportEvent)
	}
	byModule := map[string]capability.Capability{}
	for _, c := range caps {
		if c.Module() != "" {
			byModule[c.Module()] = c
		}
	}
	wanted := map[string]capability.Capability{}
	var problems []string
	for _, f := range c.ImportedFunctions() {
		mod, name, _ := f.Import()
		switch mod {
		case wasi_snapshot_preview1.ModuleName, abi.ModuleBase:
			continue
		}
		capa, ok := byModule[mod]
		if !ok {
			problems = append(problems, fmt.Sprintf("imports %s.%s from unknown module %q (built for a newer airlock? this host provides %s)", mod, name, mod, knownModules(byModule)))
			continue
		}
		if problem := importMismatch(capa, mod, name, f); problem != "" {
			problems = append(problems, problem)
		}
		if _, seen := wanted[mod]; seen {
			continue
		}
		if _, granted := m.Grants[capa.Name()]; !granted {
			err := g.Check(ctx, m.Name, capa.Name(), "import "+mod, gate.Deny(fmt.Sprintf("plugin.toml has no [%s] section", capa.Name())))
			problems = append(problems, fmt.Sprintf("%v (add a [%s] section to %s that grants what it needs, or remove the import)", err, capa.Name(), m.File))
			wanted[mod] = nil
			continue
		}
		wanted[mod] = capa
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("plugin %q refused at load:\n  %s", m.Name, strings.Join(problems, "\n  "))
	}
	out := make([]capability.Capability, 0, len(wanted))
	for _, c := range wanted {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// importMismatch says what is wrong with an import of mod.name that the
// host cannot link, naming the host function's parameters as ABI.md does
// ("" if it links). wazero would refuse it too, but only at instantiation
// and without the names; airlock check would not see it at all.
func importMismatch(capa capability.Capability, mod, name string, f api.FunctionDefinition) string {
	var names []string
	for _, hf := range capa.Functions() {
		if hf.Name != name {
			names = append(names, hf.Name)
			continue
		}
		if slices.Equal(hf.Params, f.ParamTypes()) && slices.Equal(hf.Results, f.ResultTypes()) {
			return ""
		}
		return fmt.Sprintf("imports %s.%s as %s, but the host's is %s -> %s (rebuild it with this airlock's SDK)",
			mod, name, typesOf(f.ParamTypes(), f.ResultTypes()), hf.Signature(), typesOf(nil, hf.Results))
	}
	return fmt.Sprintf("imports %s.%s, which this host does not have (%s has %s; built for a newer airlock?)", mod, name, mod, strings.Join(names, ", "))
}

// typesOf writes wasm value types as "(i32, i64) -> i32", or just the
// results when params is nil.
func typesOf(params, results []api.ValueType) string {
	str := func(ts []api.ValueType) string {
		out := make([]string, len(ts))
		for i, t := range ts {
			out[i] = api.ValueTypeName(t)
		}
		return strings.Join(out, ", ")
	}
	if params == nil {
		return "(" + str(results) + ")"
	}
	return "(" + str(params) + ") -> (" + str(results) + ")"
}

func knownModules(m map[string]capability.Capability) string {
	names := []string{abi.ModuleBase}
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names[1:])
	return strings.Join(names, ", ")
}

package plugin

import (
	"fmt"

	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/wasmbin"
)

// A plugin's limits.memory is its budget for everything its module makes
// the host allocate, at instantiation and after (host/RATIONALE.md, "Why
// do tables count against limits.memory?"):
//
//   - at load and instantiation, what the module declares: its memory's
//     and tables' minimum sizes, its globals, functions, imports, exports
//     and element segments' entries, each at what wazero 1.12 keeps for
//     it (wasmbin.Footprint); Load refuses a module whose footprint is past the
//     budget;
//   - at run time, what the guest grows: wasmbin.Instrument rewrites memory.grow
//     and table.grow into calls that compare linear memory plus table
//     entries with the budget (growHelpers); a memory.grow past it fails
//     (-1), a table.grow past it traps, and the host says so.
//
// A module that Instrument cannot rewrite keeps wazero's memory limit
// alone, and Load refuses it unless its tables have maxima that fit.

// checkFootprint refuses a module whose footprint is past m's
// limits.memory, and one without Instrument's checks (interruptible
// false) whose tables could grow past it.
func checkFootprint(m *manifest.Manifest, wasm []byte, interruptible bool) error {
	f, err := wasmbin.ModuleFootprint(wasm)
	if err != nil {
		return fmt.Errorf("plugin %q: %s is not a valid WebAssembly module: %w", m.Name, m.Wasm, err)
	}
	budget := uint64(m.Limits.Memory)
	if b := f.Bytes(); b > budget {
		return fmt.Errorf("plugin %q: the module needs %s at start (%d pages of linear memory, %d table entries, %d element entries, %d globals, %d functions, %d imports and exports), above limits.memory = %s (raise it in plugin.toml, or make the module smaller)",
			m.Name, mib(b), f.MemoryPages, f.TableMin, f.Elements, f.Globals, f.Funcs, f.Entries, m.Limits.Memory)
	}
	if !interruptible && (f.TableMax == wasmbin.NoMax || f.MemoryPages<<16+f.TableMax*wasmbin.TableEntryBytes > budget) {
		what := "a table without a maximum size"
		if f.TableMax != wasmbin.NoMax {
			what = fmt.Sprintf("tables that may grow to %d entries (%s)", f.TableMax, mib(f.TableMax*wasmbin.TableEntryBytes))
		}
		return fmt.Errorf("plugin %q: the host cannot instrument the module (see the warning above), so it cannot bound table.grow, and the module has %s, past limits.memory = %s (declare table maxima that fit)", m.Name, what, m.Limits.Memory)
	}
	return nil
}

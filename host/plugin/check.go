package plugin

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/host/manifest"
)

// CheckModule verifies, without running it, that a compiled module speaks
// ABI v1 and imports only what m grants. It returns the capabilities whose
// host modules the plugin imports. Each refused import goes through the gate,
// so that the audit shows it.
func CheckModule(ctx context.Context, c wazero.CompiledModule, m *manifest.Manifest, caps []capability.Capability, g *gate.Gate) ([]capability.Capability, error) {
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

func knownModules(m map[string]capability.Capability) string {
	names := []string{abi.ModuleBase}
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names[1:])
	return strings.Join(names, ", ")
}

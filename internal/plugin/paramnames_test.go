package plugin_test

import (
	"log/slog"
	"slices"
	"testing"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/internal/plugin"
)

// The host functions wazero defines carry ABI.md's parameter names, as
// wazero's own host modules do, for traces and tools.
func TestHostFunctionsHaveParameterNames(t *testing.T) {
	p := load(t, abiModule([]byte{0x41, 0x00, 0x0b}), "", slog.New(slog.DiscardHandler))
	defs := p.HostModule(abi.ModuleBase).ExportedFunctionDefinitions()
	for _, f := range plugin.BaseFunctions() {
		d := defs[f.Name]
		if d == nil {
			t.Errorf("%s is not defined", f.Name)
			continue
		}
		if len(f.ParamNames) != len(f.Params) || !slices.Equal(d.ParamNames(), f.ParamNames) {
			t.Errorf("%s: wazero has parameters %v, the host function %v", f.Signature(), d.ParamNames(), f.ParamNames)
		}
	}
	if got := defs[abi.FuncConfigGet].ParamNames(); !slices.Equal(got, []string{"key_ptr", "key_len", "out_ptr", "out_cap", "out_len_ptr"}) {
		t.Errorf("config_get's parameters are %v", got)
	}
}

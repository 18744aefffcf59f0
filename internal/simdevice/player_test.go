package simdevice

import (
	"strings"
	"testing"

	"github.com/airlockhq/airlock/host/manifest"
)

func TestConfigAndRefusals(t *testing.T) {
	p := New(Options{})
	sections := map[string]manifest.SectionFunc{"scenario": p.DecodeConfig}
	rt, err := manifest.ParseRuntime("runtime.toml", []byte("[scenario]\nplay = \"demo\"\n"), sections)
	if err != nil || rt.Sections["scenario"].(*Config).Play != "demo" {
		t.Fatalf("valid config: %v", err)
	}
	_, err = manifest.ParseRuntime("runtime.toml", []byte("[scenario]\nplay = \"dmeo\"\n"), sections)
	if want := `runtime.toml:2: scenario.play: unknown scenario "dmeo" (use "none" or one of: demo)`; err == nil || err.Error() != want {
		t.Errorf("bad name: %v\nwant %s", err, want)
	}
	def := manifest.DefaultRuntime()
	schema := manifest.Schema{Grants: map[string]manifest.SectionFunc{"scenario": p.DecodeGrant}, Triggers: map[string]manifest.SectionFunc{"scenario": p.DecodeTrigger}}
	_, err = manifest.ParseManifest("plugin.toml", []byte("name = \"p\"\n[scenario]\nplay = \"demo\"\n[[trigger.scenario]]\n"), &def, schema)
	if err == nil || !strings.Contains(err.Error(), "plugin.toml:2: scenario: a plugin cannot grant itself a scenario") || !strings.Contains(err.Error(), "scenario is not a trigger") {
		t.Errorf("manifest refusal: %v", err)
	}
}

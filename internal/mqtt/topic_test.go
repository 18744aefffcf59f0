package mqtt

import (
	"testing"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/manifest"
)

func TestCovers(t *testing.T) {
	for _, tc := range []struct {
		g, f string
		want bool
	}{
		{"devices/+/status", "devices/a/status", true},
		{"devices/+/status", "devices/a/b/status", false},
		{"devices/+/status", "devices/+/status", true},
		{"devices/a/status", "devices/+/status", false},
		{"a/+", "a/#", false},
		{"a/#", "a/#", true},
		{"a/#", "a", true},
		{"a/#", "a/b/+/c", true},
		{"a", "a/#", false},
		{"a/+", "a/b", true},
		{"a/+", "a", false},
		{"#", "x/y", true},
		{"#", "$SYS/broker", false},
		{"+/broker", "$SYS/broker", false},
		{"$SYS/#", "$SYS/broker", true},
		{"a/b", "a/b/c", false},
	} {
		if got := covers(tc.g, tc.f); got != tc.want {
			t.Errorf("covers(%q, %q) = %v, want %v", tc.g, tc.f, got, tc.want)
		}
	}
}

func TestCheckFilterAndTopic(t *testing.T) {
	for _, f := range []string{"a/#/b", "a/b#", "a+/b", "", "a\x00b"} {
		if checkFilter(f, 64) == "" {
			t.Errorf("filter %q accepted", f)
		}
	}
	for _, f := range []string{"#", "+", "a/+/b/#", "/", "a//b"} {
		if why := checkFilter(f, 64); why != "" {
			t.Errorf("filter %q refused: %s", f, why)
		}
	}
	for _, tp := range []string{"a/+", "a/#", "", "a\x00", "\xff", "toolong-toolong"} {
		if checkTopic(tp, 10) == "" {
			t.Errorf("topic %q accepted", tp)
		}
	}
}

// TestSynthesize: `airlock trigger <plugin> mqtt TOPIC PAYLOAD` makes an
// event marked synthetic, never coalesced, only on a topic one of the
// plugin's filters matches.
func TestSynthesize(t *testing.T) {
	c := New(Options{})
	rt := manifest.DefaultRuntime()
	m, err := manifest.ParseManifest("plugin.toml", []byte("name = \"p\"\nversion = \"1.0.0\"\n[mqtt]\nbroker = \"hub\"\nsubscribe = [\"cmd/#\"]\n[[trigger.mqtt]]\nfilter = \"cmd/+\"\n"), &rt,
		manifest.Schema{Grants: map[string]manifest.SectionFunc{Name: c.DecodeGrant}, Triggers: map[string]manifest.SectionFunc{Name: c.DecodeTrigger}})
	if err != nil {
		t.Fatal(err)
	}
	args, err := capability.SynthArgs(Name, c.SynthHelp(), []string{"cmd/led", "on", "qos=1"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Synthesize(m, args)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := abi.DecodeRecord(s.Event.Payload)
	if v, _ := rec.Get(capability.SynthKey); v != capability.SynthValue || s.Event.Coalesce != "" || abi.EventKind(s.Event.Kind) != abi.EventMQTT {
		t.Errorf("event %+v %v", s.Event, rec)
	}
	for _, bad := range [][]string{{"topic=other/led", "payload=x"}, {"topic=cmd/+", "payload=x"}, {"topic=cmd/a", "payload=x", "qos=2"}, {"topic=cmd/a", "payload=x", "color=red"}} {
		if _, err := c.Synthesize(m, bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

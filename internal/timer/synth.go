package timer

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/manifest"
)

// Synth makes a tick of one of a plugin's [[trigger.timer]]s on demand.
type Synth struct{}

var _ capability.Synthesizer = Synth{}

func (Synth) SynthKind() string { return "timer" }

func (Synth) SynthHelp() capability.SynthHelp {
	return capability.SynthHelp{Positional: []string{"name"}, Usage: "<name>", Takes: "one timer name",
		What: "a tick of the plugin's [[trigger.timer]] <name>"}
}

// Synthesize ticks the timer name=NAME, which must be one of m's timers: a
// typo is more likely than a wish for a tick the host never sends.
func (Synth) Synthesize(m *manifest.Manifest, args []string) (capability.Synthetic, error) {
	f, err := capability.SynthFields("timer", args)
	if err != nil {
		return capability.Synthetic{}, err
	}
	name, ok := f["name"]
	if !ok || len(f) != 1 {
		return capability.Synthetic{}, fmt.Errorf("timer takes one timer name (name=NAME)")
	}
	if m != nil {
		var names []string
		for _, t := range m.Timers {
			names = append(names, t.Name)
		}
		switch {
		case len(names) == 0:
			return capability.Synthetic{}, fmt.Errorf("plugin %q has no [[trigger.timer]]", m.Name)
		case !slices.Contains(names, name):
			return capability.Synthetic{}, fmt.Errorf("plugin %q has no timer %q (its timers: %s)", m.Name, name, strings.Join(names, ", "))
		}
	}
	rec := append(record(name, time.Now()), abi.Field{Key: capability.SynthKey, Value: []byte(capability.SynthValue)})
	ev := capability.Event{Kind: uint32(abi.EventTimer), Payload: abi.AppendRecord(nil, rec)}
	return capability.Synthetic{Event: ev, Desc: "timer " + name}, nil
}

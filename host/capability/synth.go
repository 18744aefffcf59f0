package capability

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/airlockhq/airlock/host/manifest"
)

// Synthesizer is a trigger source that makes one of its events on demand:
// for `airlock trigger`, scenario files and plugintest. Each trigger
// capability implements it in its own package, so that the admin socket,
// the command line and the test harnesses know no event kind by name.
type Synthesizer interface {
	// SynthKind names the event kind where people write it: the trigger
	// table's name ("udev", for [[trigger.udev]]).
	SynthKind() string
	// SynthHelp describes the arguments, for help and usage errors.
	SynthHelp() SynthHelp
	// Synthesize checks args (KEY=VALUE, keys as SynthHelp names them)
	// and the plugin's manifest m, and builds the event. An error is the
	// caller's mistake and says how to fix it: a plugin with no trigger of
	// this kind is refused (NoTrigger), since it would never receive a
	// real one. m is nil for an event of the simulated device itself.
	Synthesize(m *manifest.Manifest, args []string) (Synthetic, error)
}

// SynthHelp describes a Synthesizer's arguments.
type SynthHelp struct {
	// Positional are the keys given by position on the command line, in
	// order ("ACTION", "DEVPATH"); a scenario file may write them in any
	// case.
	Positional []string
	// More says that KEY=VALUE arguments may follow the positional ones.
	More bool
	// Usage is the arguments' synopsis: "<ACTION> <DEVPATH> [KEY=VALUE...]".
	Usage string
	// Takes says what the kind takes, after "udev takes ": "an ACTION, a
	// DEVPATH and KEY=VALUE properties".
	Takes string
	// What is the event, for help: "a device event, such as: ...".
	What string
}

// Synthetic is a synthetic event, made by a Synthesizer.
type Synthetic struct {
	// Event goes through the plugin's queue like a real one. It carries
	// SynthKey = SynthValue and is never coalesced with a real event.
	Event Event
	// Desc is a one-line description: "udev add /devices/...".
	Desc string
	// Inject, if not nil, sends the event instead through the source's
	// own routing, as if it came from outside (udev: unmarked, through
	// every plugin's rules and the device probe). Scenario files and
	// plugintest use it, to test the rules as well as the handler.
	Inject func()
}

// SynthKey is the record field (and udev property) that marks an event
// made by `airlock trigger`, so that a plugin, its logs and the audit can
// tell it from a real one; SynthValue is its value. udev's coldplug events
// use the same field.
const (
	SynthKey   = "AIRLOCK_SYNTH"
	SynthValue = "trigger"
)

// Synthesizers returns those of caps that make synthetic events, after
// first (the host's own sources, such as timers).
func Synthesizers(caps []Capability, first ...Synthesizer) []Synthesizer {
	out := append([]Synthesizer(nil), first...)
	for _, c := range caps {
		if s, ok := c.(Synthesizer); ok {
			out = append(out, s)
		}
	}
	return out
}

// FindSynth returns the synthesizer of kind, or an error that names the
// kinds there are.
func FindSynth(ss []Synthesizer, kind string) (Synthesizer, error) {
	for _, s := range ss {
		if s.SynthKind() == kind {
			return s, nil
		}
	}
	return nil, fmt.Errorf("unknown event %q (use %s)", kind, orList(SynthKinds(ss)))
}

// SynthKinds lists the kinds of ss.
func SynthKinds(ss []Synthesizer) []string {
	var kinds []string
	for _, s := range ss {
		kinds = append(kinds, s.SynthKind())
	}
	return kinds
}

// SynthArgs turns command-line arguments (positional, then KEY=VALUE if
// h.More) into KEY=VALUE arguments, or says what the kind takes.
func SynthArgs(kind string, h SynthHelp, cli []string) ([]string, error) {
	if len(cli) < len(h.Positional) || !h.More && len(cli) > len(h.Positional) {
		return nil, fmt.Errorf("%s takes %s", kind, h.Takes)
	}
	out := make([]string, 0, len(cli))
	for i, k := range h.Positional {
		out = append(out, k+"="+cli[i])
	}
	for _, kv := range cli[len(h.Positional):] {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, fmt.Errorf("%s property %q: write KEY=VALUE", kind, kv)
		}
		out = append(out, kv)
	}
	return out, nil
}

// NoTrigger refuses a synthetic event for a plugin with no [[trigger.kind]]:
// it would never receive a real one, so a synthetic one tests nothing it
// will meet. what names the event: "a device event". It returns nil if m
// has the trigger, or is nil: an event of the simulated device itself,
// such as a stick plugged in, for whichever plugin listens.
func NoTrigger(m *manifest.Manifest, kind, what string) error {
	if m == nil {
		return nil
	}
	if _, ok := m.Triggers[kind]; ok {
		return nil
	}
	return fmt.Errorf("plugin %q has no [[trigger.%s]], so it never receives %s (add one to %s)", m.Name, kind, what, m.File)
}

// orList joins words as "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// SynthFields splits KEY=VALUE arguments into a map, refusing an argument
// without '=' and a key given twice.
func SynthFields(kind string, args []string) (map[string]string, error) {
	out := make(map[string]string, len(args))
	for _, kv := range args {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s property %q: write KEY=VALUE", kind, kv)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%s property %s: given twice", kind, k)
		}
		out[k] = v
	}
	return out, nil
}

// SynthTable turns an event as a scenario file writes it into KEY=VALUE
// arguments: a string is the only positional key's value (timer = "tick");
// a table gives keys (a positional one in any case) and values, a table
// inside it more KEY=VALUE pairs (udev = {action = "add", devpath =
// "/devices/...", props = {SUBSYSTEM = "block"}}), and any other value is
// written as JSON (dbus = {..., signature = "s", body = ["x"]}).
func SynthTable(kind string, h SynthHelp, v any) ([]string, error) {
	if s, ok := v.(string); ok && len(h.Positional) == 1 {
		return []string{h.Positional[0] + "=" + s}, nil
	}
	t, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: write a table of %s", kind, h.Takes)
	}
	var out, more []string
	for _, p := range h.Positional {
		for k, x := range t {
			if strings.EqualFold(k, p) {
				s, ok := x.(string)
				if !ok {
					return nil, fmt.Errorf("%s.%s: write a string", kind, k)
				}
				out = append(out, p+"="+s)
			}
		}
	}
	for k, x := range t {
		if slices.ContainsFunc(h.Positional, func(p string) bool { return strings.EqualFold(k, p) }) {
			continue
		}
		switch x := x.(type) {
		case string:
			more = append(more, k+"="+x)
		case map[string]any:
			for kk, xx := range x {
				s, ok := xx.(string)
				if !ok {
					return nil, fmt.Errorf("%s.%s.%s: write a string", kind, k, kk)
				}
				more = append(more, kk+"="+s)
			}
		default: // an array, a number, a boolean: as JSON (dbus's body)
			b, err := json.Marshal(x)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %v", kind, k, err)
			}
			more = append(more, k+"="+string(b))
		}
	}
	slices.Sort(more)
	return append(out, more...), nil
}

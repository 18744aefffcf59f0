package host

import (
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/internal/timer"
)

// Synthesizers returns what makes synthetic events on a host with caps:
// its timers, then each capability that is a capability.Synthesizer.
// `airlock trigger`, scenario files and plugintest find event kinds here.
func Synthesizers(caps []capability.Capability) []capability.Synthesizer {
	return capability.Synthesizers(caps, timer.Synth{})
}

// Synthesizers returns the synthesizers of h's capabilities.
func (h *Host) Synthesizers() []capability.Synthesizer { return Synthesizers(h.opts.Capabilities) }

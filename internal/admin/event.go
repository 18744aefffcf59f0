package admin

import (
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/manifest"
)

// errRequest is a request that is the caller's mistake (400).
type errRequest struct{ msg string }

func (e *errRequest) Error() string { return e.msg }

// Event builds the synthetic event that r asks for, checked against the
// plugin's manifest m, with the synthesizer of r.Kind among ss. It has the
// same record as a real event of its kind, plus capability.SynthKey, and is
// never coalesced with a real one.
func Event(r TriggerRequest, m *manifest.Manifest, ss []capability.Synthesizer) (capability.Event, string, error) {
	s, err := capability.FindSynth(ss, r.Kind)
	if err != nil {
		return capability.Event{}, "", &errRequest{err.Error()}
	}
	syn, err := s.Synthesize(m, r.Args)
	if err != nil {
		return capability.Event{}, "", &errRequest{err.Error()}
	}
	return syn.Event, syn.Desc, nil
}

package conformance

import (
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/supervisor"
)

// device is the simulated device behind the capability steps: the
// capabilities as the host's Builtin wires them, minus the demo, so that
// the test can steer their simulators.
type device struct {
	caps []capability.Capability
	sup  *supervisor.Capability
}

func newDevice() *device {
	d := &device{sup: supervisor.NewCapability(supervisor.CapabilityOptions{Getenv: func(string) string { return "" }})}
	d.caps = []capability.Capability{d.sup}
	return d
}

// capStep is one capability step: a timer named name (or event, when set),
// with the device steered before and after, and log lines it causes
// besides its own (events it triggers) waited for before the next step.
type capStep struct {
	name          string
	event         *capability.Event
	before, after func()
	wait          []string
}

// steps lists the capability steps; README.md describes them.
func (d *device) steps() []capStep {
	return []capStep{
		// supervisor: the manifest grants blink, reboot, device.read and
		// service.restart:main.
		{name: "sup:version"},
		{name: "sup:device"},
		{name: "sup:state"},
		{name: "sup:blink"},
		{name: "sup:restart-main"},
		{name: "sup:restart-other"}, // denied: another service
		{name: "sup:shutdown"},      // denied: not granted
		{name: "sup:raw"},           // invalid: an unknown request field
		{name: "sup:reboot", // locked: the app holds the update lock
			before: func() { d.sup.Sim().Lock("main") }, after: func() { d.sup.Sim().Unlock() }},
	}
}

// Package builtin is what the airlock binary adds to the core host: its
// capabilities (udev, dbus, supervisor, mount and the simulated device's
// demo), the Prometheus metrics endpoint and the OCI registry client. It
// links go-udev (GPL-3.0), Prometheus and oras; package host alone links
// none of them (host/RATIONALE.md, "Why this public surface?").
package builtin

import (
	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/internal/cloud"
	"github.com/airlockhq/airlock/internal/httpout"
	"github.com/airlockhq/airlock/internal/metrics"
	"github.com/airlockhq/airlock/internal/mount"
	"github.com/airlockhq/airlock/internal/mqtt"
	"github.com/airlockhq/airlock/internal/registry"
	"github.com/airlockhq/airlock/internal/shared"
	"github.com/airlockhq/airlock/internal/simdevice"
	"github.com/airlockhq/airlock/internal/supervisor"
	"github.com/airlockhq/airlock/internal/udev"
)

// Capabilities returns the capabilities that the airlock binary offers. A
// new capability is a new package, added to this list.
func Capabilities() []capability.Capability { return CapabilitiesWith(mount.Options{}) }

// CapabilitiesWith is Capabilities with the mount capability's options,
// such as the simulated device's extra sticks.
func CapabilitiesWith(mo mount.Options) []capability.Capability {
	// One block-device table: udev feeds it and probes through it, mount
	// looks devices up in it and hears of those that vanish.
	u := udev.New()
	mo.Devices = u.Devices()
	m := mount.New(mo)
	s := supervisor.NewCapability(supervisor.CapabilityOptions{})
	// The simulated device (its demo and clock) acts through the others'
	// simulated backends; it is a module of the host, not a power plugins
	// can hold.
	sim := simdevice.New(simdevice.Options{Udev: u, Supervisor: s.Sim})
	return []capability.Capability{u, sim.NewDBus(), s, m, shared.New(), cloud.New(cloud.Options{}), httpout.New(httpout.Options{}), mqtt.New(mqtt.Options{}), sim}
}

// Options returns o with what the airlock binary adds to the core, where
// o leaves it unset: Capabilities (nil: all of them), the metrics endpoint
// and the registry client that pulls [[bundle]]s.
func Options(o host.Options) host.Options {
	if o.Capabilities == nil {
		o.Capabilities = Capabilities()
	}
	if o.Metrics == nil {
		o.Metrics = metrics.ForHost
	}
	if o.Pull == nil {
		o.Pull = registry.Fetch
	}
	return o
}

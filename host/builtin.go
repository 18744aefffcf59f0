package host

import (
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/mount"
	"github.com/airlockhq/airlock/host/supervisor"
	"github.com/airlockhq/airlock/host/udev"
	"github.com/airlockhq/airlock/internal/cloud"
	"github.com/airlockhq/airlock/internal/httpout"
	"github.com/airlockhq/airlock/internal/shared"
	"github.com/airlockhq/airlock/internal/simdevice"
)

// Builtin returns the capabilities that the airlock binary offers. A new
// capability is a new package, added to this list.
func Builtin() []capability.Capability { return BuiltinWith(mount.Options{}) }

// BuiltinWith is Builtin with the mount capability's options, such as the
// simulated device's extra sticks.
func BuiltinWith(mo mount.Options) []capability.Capability {
	// mount watches udev's block events, to unmount devices that vanish.
	m := mount.New(mo)
	u := udev.New()
	s := supervisor.NewCapability(supervisor.CapabilityOptions{})
	// The simulated device (its demo and clock) acts through the others'
	// simulated backends; it is a module of the host, not a power plugins
	// can hold.
	sim := simdevice.New(simdevice.Options{Udev: u, Supervisor: s.Sim})
	return []capability.Capability{m.WatchDevices(u), sim.NewDBus(), s, m, shared.New(), cloud.New(cloud.Options{}), httpout.New(httpout.Options{}), sim}
}

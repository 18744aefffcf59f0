package host

import (
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/dbus"
	"github.com/airlockhq/airlock/host/mount"
	"github.com/airlockhq/airlock/host/supervisor"
	"github.com/airlockhq/airlock/host/udev"
)

// Builtin returns the capabilities that the airlock binary offers. A new
// capability is a new package, added to this list.
func Builtin() []capability.Capability {
	// mount watches udev's block events, to unmount devices that vanish.
	m := mount.New(mount.Options{})
	return []capability.Capability{
		m.WatchDevices(udev.New()),
		dbus.New(),
		supervisor.NewCapability(supervisor.CapabilityOptions{}),
		m,
	}
}

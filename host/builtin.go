package host

import (
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/dbus"
	"github.com/airlockhq/airlock/host/supervisor"
	"github.com/airlockhq/airlock/host/udev"
)

// Builtin returns the capabilities that the airlock binary offers. A new
// capability is a new package, added to this list.
func Builtin() []capability.Capability {
	return []capability.Capability{
		udev.New(),
		dbus.New(),
		supervisor.NewCapability(supervisor.CapabilityOptions{}),
	}
}

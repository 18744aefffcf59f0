package dbus

import (
	"fmt"
	"slices"
	"strings"
)

// The bus driver and the standard interfaces. The driver is not a peer:
// a call to it changes the caller's own connection, which every plugin
// shares (RequestName makes the host own a name, AddMatch and BecomeMonitor
// change what it receives). So what a grant may reach on the driver is
// decided here, by what the call does, and no pattern can widen it.

const (
	driverName  = "org.freedesktop.DBus"
	driverPath  = "/org/freedesktop/DBus"
	driverIface = "org.freedesktop.DBus"
	// localIface and localPath are reserved by the spec for messages a
	// connection makes up for itself; sending one is a protocol violation
	// after which dbus-daemon drops the sender: the host's one connection.
	localIface = "org.freedesktop.DBus.Local"
	localPath  = "/org/freedesktop/DBus/Local"

	propsIface         = "org.freedesktop.DBus.Properties"
	objectManagerIface = "org.freedesktop.DBus.ObjectManager"
	introspectIface    = "org.freedesktop.DBus.Introspectable"
	peerIface          = "org.freedesktop.DBus.Peer"
)

// busDriverReadOnly are the bus driver's methods a plugin may be granted,
// by an exact rule only: they only read. The rest (name ownership, match
// rules, BecomeMonitor, UpdateActivationEnvironment, StartServiceByName)
// change the host's shared connection or the bus itself.
var busDriverReadOnly = []string{"GetNameOwner", "NameHasOwner", "ListNames", "ListActivatableNames", "GetConnectionUnixUser", "GetConnectionUnixProcessID"}

// systemd sends most Manager signals only to connections that called
// Manager.Subscribe, which the host does for every plugin listening to
// systemd1 (sync): one plugin's Unsubscribe would silence them all.
const (
	systemdName    = "org.freedesktop.systemd1"
	systemdManager = "org.freedesktop.systemd1.Manager"
)

func systemdSubscription(iface, member string) bool {
	return iface == systemdManager && (member == "Subscribe" || member == "Unsubscribe")
}

const subscriptionRefusal = "systemd's Manager.Subscribe and Unsubscribe act on the host's connection, which subscribes once for every plugin that listens to systemd1 (a [[trigger.dbus]] rule is all a plugin needs); Unsubscribe would silence systemd's signals for all of them"

// standardIfaces are the spec's per-object interfaces that any peer may
// implement. Every other interface named org.freedesktop.DBus or below it
// is the driver's (Monitoring, Debug.Stats, Verbose, Containers1, ...) or
// Local, whatever the destination.
var standardIfaces = []string{propsIface, objectManagerIface, introspectIface, peerIface}

// reservedIface reports whether iface is the bus driver's or Local: no
// [[dbus.call]] rule may name it, except the driver's read-only methods.
func reservedIface(iface string) bool {
	return (iface == driverIface || strings.HasPrefix(iface, driverIface+".")) && !slices.Contains(standardIfaces, iface)
}

// refusal says why no grant can allow a call of member on iface at
// dest/path, or "" when the grants decide. It is the same for every plugin
// and every pattern, and runs before the grants are consulted.
func refusal(dest, path, iface, member string) string {
	switch {
	case iface == localIface || path == localPath:
		return fmt.Sprintf("%s and %s are reserved for a connection's own use: a message on them makes the bus drop the host's connection, for every plugin", localIface, localPath)
	case strings.HasPrefix(dest, ":"):
		return fmt.Sprintf("%s is a unique connection name; no grant reaches one (it changes whenever its owner reconnects, and one of them is the host's own): call the service's well-known name", dest)
	case dest == driverName:
		if iface == driverIface && slices.Contains(busDriverReadOnly, member) {
			return ""
		}
		return fmt.Sprintf("%s.%s on the bus driver cannot be granted: it would change the host's connection, which every plugin shares; a plugin may be granted only the read-only %s, by an exact [[dbus.call]] rule with destination = %q and interface = %q",
			iface, member, strings.Join(busDriverReadOnly, ", "), driverName, driverIface)
	case reservedIface(iface):
		return fmt.Sprintf("%s is the bus driver's interface, reserved by the D-Bus specification; no grant reaches it", iface)
	case dest == systemdName && systemdSubscription(iface, member):
		return subscriptionRefusal
	}
	return ""
}

// ruleRefusal says why a [[dbus.call]] rule can never be granted, or "".
func ruleRefusal(r CallRule) string {
	switch {
	case r.Interface == localIface || r.Path.raw == localPath:
		return fmt.Sprintf("%s and %s are reserved for a connection's own use: a message on them makes the bus drop the host's connection", localIface, localPath)
	case r.Interface == propsIface:
		return fmt.Sprintf("%s is a property access, which [[dbus.property]] grants (with access = \"get\" or \"set\"), judged against the property rules and the vendor's ceiling", propsIface)
	case r.Destination.name == driverName && !r.Destination.family:
		if r.Interface == driverIface && slices.Contains(busDriverReadOnly, r.Member) {
			return ""
		}
		return fmt.Sprintf("%s.%s on the bus driver cannot be granted: it would change the host's connection, which every plugin shares (the driver grants only %s of %s)", r.Interface, r.Member, strings.Join(busDriverReadOnly, ", "), driverIface)
	case reservedIface(r.Interface):
		return fmt.Sprintf("%s is the bus driver's interface; only its read-only methods (%s) may be granted, by a rule with destination = %q exactly", r.Interface, strings.Join(busDriverReadOnly, ", "), driverName)
	case r.Destination.match(systemdName) && systemdSubscription(r.Interface, r.Member):
		return subscriptionRefusal
	}
	return ""
}

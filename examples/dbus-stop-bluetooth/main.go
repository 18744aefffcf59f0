// Command dbus-stop-bluetooth stops the host's bluetooth.service, replacing
//
//	dbus-send --system --print-reply --dest=org.freedesktop.systemd1 \
//	  /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager.StopUnit \
//	  string:bluetooth.service string:replace
package main

import (
	airlock "github.com/airlockhq/airlock/sdk/go"
)

func init() {
	airlock.OnStart(func() error {
		systemd := airlock.DBus.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1")
		reply, err := systemd.Call("org.freedesktop.systemd1.Manager.StopUnit", "bluetooth.service", "replace")
		if err != nil {
			airlock.Error("stopping bluetooth.service failed", "error", err, "dbus_error", airlock.DBusErrorName(err))
			return err
		}
		var job airlock.ObjectPath
		reply.Store(&job)
		airlock.Info("bluetooth.service stop queued", "job", job)

		unit := airlock.DBus.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1/unit/bluetooth_2eservice")
		if v, err := unit.GetProperty("org.freedesktop.systemd1.Unit.ActiveState"); err == nil {
			airlock.Info("bluetooth.service", "active_state", v.Value)
		}

		// The grant names bluetooth.service only: this is denied, and says so.
		if _, err := systemd.Call("org.freedesktop.systemd1.Manager.StopUnit", "ssh.service", "replace"); err != nil {
			airlock.Info("as intended, ssh.service is out of reach", "error", err)
		}
		return nil
	})
}

func main() {}

// Command dbus-reboot-systemd reboots the host through systemd, replacing the
// classic device-docs call
//
//	DBUS_SYSTEM_BUS_ADDRESS=unix:path=/host/run/dbus/system_bus_socket \
//	  dbus-send --system --print-reply --dest=org.freedesktop.systemd1 \
//	  /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager.Reboot
//
// with a plugin that can do that and nothing else. Manager.Reboot skips the
// orderly stop of services; see README.md before choosing it over
// examples/dbus-reboot.
package main

import (
	airlock "github.com/airlockhq/airlock/sdk/go"
)

func init() {
	airlock.OnTimer(func(t airlock.Timer) error {
		if t.Name != "reboot" {
			return nil
		}
		systemd := airlock.DBus.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1")
		if _, err := systemd.Call("org.freedesktop.systemd1.Manager.Reboot"); err != nil {
			airlock.Error("reboot refused", "error", err, "dbus_error", airlock.DBusErrorName(err))
			return err
		}
		airlock.Info("reboot requested through systemd1 Manager.Reboot")
		return nil
	})
}

func main() {}

// Command dbus-reboot reboots the host through logind, replacing
//
//	DBUS_SYSTEM_BUS_ADDRESS=unix:path=/host/run/dbus/system_bus_socket \
//	  dbus-send --system --print-reply --dest=org.freedesktop.login1 \
//	  /org/freedesktop/login1 org.freedesktop.login1.Manager.Reboot boolean:false
//
// with a plugin that can do that and nothing else.
package main

import (
	airlock "github.com/airlockhq/airlock/sdk/go"
)

func init() {
	airlock.OnTimer(func(t airlock.Timer) error {
		if t.Name != "reboot" {
			return nil
		}
		logind := airlock.DBus.Object("org.freedesktop.login1", "/org/freedesktop/login1")
		// interactive = false: a device has nobody to answer a prompt.
		if _, err := logind.Call("org.freedesktop.login1.Manager.Reboot", false); err != nil {
			airlock.Error("reboot refused", "error", err)
			return err
		}
		airlock.Info("reboot requested through logind")
		return nil
	})
}

func main() {}

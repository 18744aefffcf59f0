package main

import (
	airlock "github.com/airlockhq/airlock/sdk/go"
)

// dbusText prints decoded D-Bus values in the text form every SDK writes.
func dbusText(vals []any) string { return airlock.FormatDBus(vals...) }

// dbusStep calls the simulated device's system bus. The manifest grants
// systemd's StopUnit for bluetooth.service and GetUnit, reading unit
// properties, and reading and writing hostname1's PrettyHostname.
func dbusStep(step string) {
	log := func(s string) { airlock.Info("dbus " + step + ": " + s) }
	reply := func(r *airlock.Reply, err error) {
		if err != nil {
			log(result(err) + " (error name " + airlock.DBusErrorName(err) + ")")
			return
		}
		log("ok sig=" + string(r.Signature) + " body=" + dbusText(r.Body))
	}
	systemd := airlock.DBus.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1")
	unit := airlock.DBus.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1/unit/bluetooth_2eservice")
	hostname := airlock.DBus.Object("org.freedesktop.hostname1", "/org/freedesktop/hostname1")
	switch step {
	case "getunit":
		reply(systemd.Call("org.freedesktop.systemd1.Manager.GetUnit", "bluetooth.service"))
	case "getunit-missing":
		reply(systemd.Call("org.freedesktop.systemd1.Manager.GetUnit", "nosuch.service"))
	case "stop":
		reply(systemd.Call("org.freedesktop.systemd1.Manager.StopUnit", "bluetooth.service", "replace"))
	case "stop-badmode":
		reply(systemd.Call("org.freedesktop.systemd1.Manager.StopUnit", "bluetooth.service", "sideways"))
	case "stop-ssh":
		reply(systemd.Call("org.freedesktop.systemd1.Manager.StopUnit", "ssh.service", "replace"))
	case "reboot":
		reply(systemd.Call("org.freedesktop.systemd1.Manager.Reboot"))
	case "get":
		v, err := unit.GetProperty("org.freedesktop.systemd1.Unit.ActiveState")
		if err != nil {
			log(result(err))
			return
		}
		log("ok " + dbusText([]any{v}))
	case "getall":
		m, err := unit.GetAllProperties("org.freedesktop.systemd1.Unit")
		if err != nil {
			log(result(err))
			return
		}
		log("ok " + dbusText([]any{m}))
	case "get-denied":
		_, err := hostname.GetProperty("org.freedesktop.hostname1.Hostname")
		log(result(err))
	case "set":
		log(result(hostname.SetProperty("org.freedesktop.hostname1.PrettyHostname", "Plant 7")))
	case "set-struct":
		v := airlock.Struct{int32(-7), []string{"a", "b"}, map[string]airlock.Variant{"k": airlock.MakeVariant(uint64(9))}}
		log(result(hostname.SetProperty("org.freedesktop.hostname1.PrettyHostname", v)))
	case "set-denied":
		log(result(hostname.SetProperty("org.freedesktop.hostname1.Hostname", "x")))
	default:
		airlock.Warn("unknown dbus step " + step)
	}
}

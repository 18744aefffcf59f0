// Command ntp-check reports whether the host clock is NTP-synchronized,
// replacing
//
//	dbus-send --system --print-reply --dest=org.freedesktop.timedate1 \
//	  /org/freedesktop/timedate1 org.freedesktop.DBus.Properties.GetAll \
//	  string:org.freedesktop.timedate1
//
// polled from a cron job, with a read-only grant and a signal trigger.
package main

import (
	airlock "github.com/airlockhq/airlock/sdk/go"
)

var timedate = airlock.DBus.Object("org.freedesktop.timedate1", "/org/freedesktop/timedate1")

func check() error {
	// GetAll returns only what the grant lets us read: NTP and
	// NTPSynchronized, not the timezone or the RTC.
	props, err := timedate.GetAllProperties("org.freedesktop.timedate1")
	if err != nil {
		airlock.Warn("cannot read timedate1", "error", err)
		return err
	}
	synced, _ := props["NTPSynchronized"].Value.(bool)
	ntp, _ := props["NTP"].Value.(bool)
	report(synced, ntp)
	return nil
}

func report(synced, ntp bool) {
	switch {
	case synced:
		airlock.Info("clock is NTP-synchronized")
	case !ntp:
		airlock.Warn("clock is not synchronized and NTP is off")
	default:
		airlock.Warn("clock is not NTP-synchronized yet")
	}
}

func init() {
	airlock.OnStart(check)
	airlock.OnTimer(func(airlock.Timer) error { return check() })
	airlock.OnDBusSignal(func(s airlock.Signal) error {
		iface, changed, invalidated, ok := s.PropertiesChanged()
		if !ok || iface != "org.freedesktop.timedate1" {
			return nil
		}
		if v, ok := changed["NTPSynchronized"]; ok {
			synced, _ := v.Value.(bool)
			airlock.Info("NTPSynchronized changed", "synced", synced)
			return nil
		}
		for _, name := range invalidated {
			if name == "NTPSynchronized" {
				return check() // changed without its value: read it
			}
		}
		return nil
	})
}

func main() {}

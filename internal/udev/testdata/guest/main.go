// Command guest is the udev tests' plugin: it logs every device event it
// is given, one line each, so that a test can read what reached a plugin.
package main

import (
	airlock "github.com/airlockhq/airlock/sdk/go"
)

func init() {
	airlock.OnUdev(func(e airlock.UEvent) error {
		airlock.Info("uevent", "action", e.Action, "subsystem", e.Subsystem, "devtype", e.DevType,
			"devname", e.DevName, "label", e.Label(), "uuid", e.UUID(), "fstype", e.FSType(),
			"synth", e.Props["AIRLOCK_SYNTH"], "devpath", e.DevPath)
		return nil
	})
	airlock.OnDropped(func(d airlock.Dropped) error {
		airlock.Warn("dropped", "count", d.Count)
		return nil
	})
}

func main() {}

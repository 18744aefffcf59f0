// Command usb-logger logs every partition that is plugged in or pulled out.
// It replaces the classic udev rule
//
//	ACTION=="add|remove", SUBSYSTEM=="block", ENV{DEVTYPE}=="partition", RUN+="/usr/local/bin/log-usb.sh"
//
// without a shell, a fork per event or any power besides reading events.
package main

import (
	airlock "github.com/airlockhq/airlock/sdk/go"
)

func init() {
	airlock.OnUdev(func(e airlock.UEvent) error {
		what := "partition plugged in"
		switch {
		case e.Action == "remove":
			what = "partition removed"
		case e.Coldplug():
			what = "partition present at start"
		}
		fstype := e.FSType()
		if fstype == "" {
			fstype = "unknown" // no filesystem, or two signatures (blkid's "ambivalent")
		}
		airlock.Info(what, "device", e.DevName, "label", e.Label(), "uuid", e.UUID(), "fstype", fstype)
		return nil
	})
	// With a full queue the host drops events and says how many: a storage
	// plugin must then look at what is mounted instead of trusting its log.
	airlock.OnDropped(func(d airlock.Dropped) error {
		airlock.Warn("device events were lost", "count", d.Count, "reason", d.Reason)
		return nil
	})
}

func main() {}

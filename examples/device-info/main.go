// Command device-info logs what the device is (its type and architecture,
// from GET /v2/local/device-info) and what its app is doing (each app's
// update status and services, from GET /v2/applications/state), at start
// and then on its timer. It shows the read-only supervisor operations: the
// grants device.read and app.read allow nothing else.
package main

import (
	"sort"
	"strings"

	airlock "github.com/airlockhq/airlock/sdk/go"
	"github.com/airlockhq/airlock/sdk/go/supervisor"
)

func init() {
	airlock.OnStart(report)
	airlock.OnTimer(func(airlock.Timer) error { return report() })
}

func report() error {
	deviceType, arch, err := supervisor.DeviceType()
	if err != nil {
		// Unavailable or a timeout: say so and try again on the next tick.
		airlock.Warn("cannot read the device type", "error", err.Error())
		return nil
	}
	apps, err := supervisor.Apps()
	if err != nil {
		airlock.Warn("cannot read the apps' state", "error", err.Error())
		return nil
	}
	names := make([]string, 0, len(apps))
	for n := range apps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a := apps[n]
		services := make([]string, 0, len(a.Services))
		for s, status := range a.Services {
			services = append(services, s+"="+status)
		}
		sort.Strings(services)
		airlock.Info("device report", "device_type", deviceType, "arch", arch, "app", n,
			"update_status", a.UpdateStatus, "services", strings.Join(services, ","))
	}
	return nil
}

func main() {}

// Command supervisor-reboot watches one service of the app through the
// device supervisor and asks for a reboot when it has been down for several
// checks in a row. A reboot is a request, not an order: when the app holds
// an update lock the supervisor refuses it, and the plugin asks again at the
// next check instead of forcing it.
package main

import (
	"errors"
	"strconv"

	airlock "github.com/airlockhq/airlock/sdk/go"
	"github.com/airlockhq/airlock/sdk/go/abi"
	"github.com/airlockhq/airlock/sdk/go/supervisor"
)

// down counts consecutive checks that found the service not running. It
// lives in the instance's memory: a restart of the plugin starts afresh,
// which errs on the side of not rebooting.
var down int

func init() {
	airlock.OnTimer(func(airlock.Timer) error { return check() })
}

func check() error {
	service, err := airlock.Config("service")
	if err != nil {
		service = "main"
	}
	strikes := 3
	if s, err := airlock.Config("strikes"); err == nil {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			strikes = n
		}
	}

	st, err := supervisor.State()
	if err != nil {
		// Unavailable or a timeout says nothing about the service: keep
		// the count and look again next time.
		airlock.Warn("cannot read the device state", "error", err)
		return nil
	}
	status := st.Services[service]
	if status == "Running" {
		if down > 0 {
			airlock.Info("service is running again", "service", service)
		} else {
			airlock.Debug("service is running", "service", service)
		}
		down = 0
		return nil
	}
	down++
	airlock.Warn("service is not running", "service", service, "status", status, "strikes", down, "of", strikes)
	if down < strikes {
		return nil
	}

	err = supervisor.Reboot(false)
	switch {
	case err == nil:
		airlock.Warn("reboot requested", "service", service, "down_for_checks", down)
		down = 0
	case errors.Is(err, abi.Locked):
		// The app holds an update lock (/tmp/balena/updates.lock): it is in
		// the middle of something it must not lose. Respect it.
		airlock.Warn("the update lock refused the reboot; asking again at the next check", "service", service)
	case errors.Is(err, abi.Denied):
		airlock.Error("reboot is not granted; add \"reboot\" to [supervisor] allow", "error", err)
	default:
		airlock.Error("reboot request failed", "error", err)
	}
	return nil
}

func main() {}

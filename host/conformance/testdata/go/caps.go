package main

import (
	"errors"
	"sort"
	"strings"

	"github.com/airlockhq/airlock/abi"
	airlock "github.com/airlockhq/airlock/sdk/go"
	"github.com/airlockhq/airlock/sdk/go/supervisor"
)

// The capability steps: each logs "<capability> <step>: ok ..." or
// "<capability> <step>: <errno>: <the host's message>", so that every SDK's
// typed calls, error codes and messages are compared.

// result is how every language prints a host call's outcome.
func result(err error) string {
	if err == nil {
		return "ok"
	}
	var he *airlock.HostError
	if errors.As(err, &he) {
		return he.Error()
	}
	return "failed: " + err.Error()
}

// supervisorStep runs one operation against the simulated supervisor. The
// manifest grants blink, reboot, device.read and service.restart:main.
func supervisorStep(step string) {
	log := func(s string) { airlock.Info("supervisor " + step + ": " + s) }
	switch step {
	case "version":
		v, err := supervisor.Version()
		if err != nil {
			log(result(err))
			return
		}
		log("ok " + v)
	case "device":
		d, err := supervisor.Device()
		if err != nil {
			log(result(err))
			return
		}
		log("ok status=" + d.Status + " supervisor=" + d.SupervisorVersion)
	case "state":
		st, err := supervisor.State()
		if err != nil {
			log(result(err))
			return
		}
		var names []string
		for n := range st.Services {
			names = append(names, n)
		}
		sort.Strings(names)
		var svc []string
		for _, n := range names {
			svc = append(svc, n+"="+st.Services[n])
		}
		log("ok app=" + st.AppState + " services=" + strings.Join(svc, ","))
	case "blink":
		log(result(supervisor.Blink()))
	case "restart-main":
		log(result(supervisor.RestartService("main", false)))
	case "restart-other":
		log(result(supervisor.RestartService("other", false)))
	case "shutdown":
		log(result(supervisor.Shutdown(false)))
	case "reboot":
		err := supervisor.Reboot(false)
		log(result(err))
		if errors.Is(err, abi.Locked) {
			log("locked, retry later")
		}
	case "raw":
		_, err := supervisor.Call("reboot", abi.Record{{Key: "forse", Value: []byte("true")}})
		log(result(err))
	default:
		airlock.Warn("unknown supervisor step " + step)
	}
}

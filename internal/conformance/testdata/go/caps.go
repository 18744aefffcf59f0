package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	airlock "github.com/airlockhq/airlock/sdk/go"
	"github.com/airlockhq/airlock/sdk/go/abi"
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
	case "device-info":
		dt, arch, err := supervisor.DeviceType()
		if err != nil {
			log(result(err))
			return
		}
		log("ok type=" + dt + " arch=" + arch)
	case "apps":
		apps, err := supervisor.Apps()
		if err != nil {
			log(result(err))
			return
		}
		var names []string
		for n, a := range apps {
			names = append(names, n+"="+a.UpdateStatus)
		}
		sort.Strings(names)
		log("ok " + strings.Join(names, ","))
	case "logs-other":
		_, err := supervisor.ReadLogs("bluetooth-helper", supervisor.Bounds{})
		log(result(err))
	case "tag-hostile":
		log(result(supervisor.SetTag("a b", "x")))
	default:
		airlock.Warn("unknown supervisor step " + step)
	}
}

// mountInfo prints a mount record. The uid= and gid= options are the
// host's own ids, which differ between machines, so they are left out.
func mountInfo(m airlock.MountInfo) string {
	var opts []string
	for _, o := range m.Options {
		if !strings.HasPrefix(o, "uid=") && !strings.HasPrefix(o, "gid=") {
			opts = append(opts, o)
		}
	}
	return "target=" + m.Target + " path=" + m.Path + " source=" + m.Source + " device=" + m.Device +
		" fstype=" + m.FSType + " label=" + m.Label + " uuid=" + m.UUID +
		" readonly=" + strconv.FormatBool(m.ReadOnly) + " options=" + strings.Join(opts, ",") + " note=" + m.Note
}

// mountStep mounts on the simulated device's storage. The manifest grants
// vfat from label:MEDIA* and device:/dev/sd*, with the extra option sync.
func mountStep(step string) {
	log := func(s string) { airlock.Info("mount " + step + ": " + s) }
	mounted := func(m airlock.MountInfo, err error) {
		if err != nil {
			log(result(err))
			return
		}
		log("ok " + mountInfo(m))
	}
	switch step {
	case "label":
		mounted(airlock.Mount.ByLabel("MEDIA", &airlock.MountOptions{Options: []string{"sync"}}))
	case "uuid": // the same stick again: busy
		mounted(airlock.Mount.ByUUID("1234-ABCD", nil))
	case "device":
		mounted(airlock.Mount.Device("/dev/sdb1", &airlock.MountOptions{FSType: "vfat", Target: "stick", Options: []string{"ro"}}))
	case "denied-option":
		mounted(airlock.Mount.ByLabel("MEDIA", &airlock.MountOptions{Options: []string{"uid=5"}}))
	case "denied-source":
		mounted(airlock.Mount.ByLabel("resin-boot", nil))
	case "read":
		b, err := os.ReadFile("/media/MEDIA/README.txt")
		if err != nil {
			log("error")
			return
		}
		log(fmt.Sprintf("ok len=%d sum=%d", len(b), sum(b)))
	case "list":
		ms, err := airlock.Mount.List()
		if err != nil {
			log(result(err))
			return
		}
		log(fmt.Sprintf("ok %d", len(ms)))
		for _, m := range ms {
			log(mountInfo(m))
		}
	case "unmount":
		log(result(airlock.Mount.Unmount("MEDIA")))
	default:
		airlock.Warn("unknown mount step " + step)
	}
}

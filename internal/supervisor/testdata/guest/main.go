// Command guest is the supervisor capability's test plugin. Each timer
// event named "<id> <command> [arg]" runs one SDK call and logs
// "done <id> ok <result>" or "done <id> <errno>: <message>", so that a test
// drives the guest through the real host and reads what the guest saw.
package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	airlock "github.com/airlockhq/airlock/sdk/go"
	"github.com/airlockhq/airlock/sdk/go/abi"
	"github.com/airlockhq/airlock/sdk/go/supervisor"
)

func init() {
	airlock.OnStart(func() error { airlock.Info("started"); return nil })
	airlock.OnTimer(func(t airlock.Timer) error {
		f := strings.Fields(t.Name)
		if len(f) < 2 {
			return nil
		}
		id, cmd, arg := f[0], f[1], ""
		if len(f) > 2 {
			arg = f[2]
		}
		res, err := run(cmd, arg)
		if err != nil {
			var he *airlock.HostError
			if !errors.As(err, &he) {
				airlock.Info(fmt.Sprintf("done %s badtype %T %v", id, err, err))
				return nil
			}
			// errors.Is must see the code, as plugins test it.
			locked := errors.Is(err, abi.Locked)
			airlock.Info(fmt.Sprintf("done %s %s: %s", id, he.Code, he.Msg), "is_locked", locked)
			return nil
		}
		airlock.Info(fmt.Sprintf("done %s ok %s", id, res))
		return nil
	})
}

func run(cmd, arg string) (string, error) {
	force := arg == "force"
	switch cmd {
	case "ping":
		return "", supervisor.Ping()
	case "healthy":
		ok, err := supervisor.Healthy()
		return fmt.Sprint(ok), err
	case "blink":
		return "", supervisor.Blink()
	case "reboot":
		return "", supervisor.Reboot(force)
	case "shutdown":
		return "", supervisor.Shutdown(force)
	case "update":
		t, err := supervisor.Update(force)
		return fmt.Sprint("triggered=", t), err
	case "restart-app":
		return "", supervisor.RestartApp(force)
	case "purge":
		return "", supervisor.PurgeApp(force)
	case "restart":
		return "", supervisor.RestartService(arg, false)
	case "stop":
		return "", supervisor.StopService(arg, false)
	case "start":
		return "", supervisor.StartService(arg, false)
	case "device":
		d, err := supervisor.Device()
		return fmt.Sprintf("status=%s supervisor=%s json=%t", d.Status, d.SupervisorVersion, len(d.JSON) > 0), err
	case "state":
		s, err := supervisor.State()
		var svcs []string
		for k, v := range s.Services {
			svcs = append(svcs, k+"="+v)
		}
		sort.Strings(svcs)
		return fmt.Sprintf("app=%s services=%s", s.AppState, strings.Join(svcs, ",")), err
	case "version":
		return supervisor.Version()
	case "name":
		return supervisor.DeviceName()
	case "tags":
		t, err := supervisor.Tags()
		return fmt.Sprint(t), err
	case "hostname":
		return supervisor.Hostname()
	case "set-hostname":
		return "", supervisor.SetHostname(arg, false)
	case "restart-app-v1":
		return "", supervisor.RestartAppV1(force)
	case "apps":
		apps, err := supervisor.Apps()
		var out []string
		for name, a := range apps {
			out = append(out, fmt.Sprintf("%s:%s:%d", name, a.UpdateStatus, len(a.Images)))
		}
		sort.Strings(out)
		return strings.Join(out, ","), err
	case "app-state":
		commit, js, err := supervisor.AppStateJSON()
		return fmt.Sprintf("commit=%t json=%t", commit != "", len(js) > 0), err
	case "vpn":
		e, c, err := supervisor.VPN()
		return fmt.Sprintf("enabled=%t connected=%t", e, c), err
	case "device-type":
		dt, arch, err := supervisor.DeviceType()
		return fmt.Sprintf("type=%t arch=%t", dt != "", arch != ""), err
	case "container-ids":
		ids, err := supervisor.ContainerIDs()
		var names []string
		for n := range ids {
			names = append(names, n)
		}
		sort.Strings(names)
		return strings.Join(names, ","), err
	case "cleanup":
		return "", supervisor.CleanupVolumes()
	case "set-tag":
		k, v, _ := strings.Cut(arg, "=")
		return "", supervisor.SetTag(k, v)
	case "logs":
		l, err := supervisor.ReadLogs(arg, supervisor.Bounds{WaitMS: 100})
		return fmt.Sprintf("lines=%d end=%s", len(l.Lines), l.End), err
	case "journal":
		l, err := supervisor.ReadJournal(supervisor.JournalQuery{Unit: arg, Format: "cat", Bounds: supervisor.Bounds{MaxLines: 2}})
		return fmt.Sprintf("%q end=%s", l.Lines, l.End), err
	case "raw":
		// An operation the SDK does not wrap, or a malformed request:
		// "raw op" or "raw op:key=value".
		op, kv, _ := strings.Cut(arg, ":")
		var req abi.Record
		if k, v, ok := strings.Cut(kv, "="); ok {
			req = abi.Record{{Key: k, Value: []byte(v)}}
		}
		r, err := supervisor.Call(op, req)
		return fmt.Sprint(len(r)), err
	}
	return "", fmt.Errorf("unknown command %q", cmd)
}

func main() {}

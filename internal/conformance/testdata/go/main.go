// Command conformance is the conformance plugin in Go, the reference that
// the C, Rust and AssemblyScript versions beside it must match line for
// line. The timer event's name selects a step; see ../../README.md.
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	airlock "github.com/airlockhq/airlock/sdk/go"
)

// count shows that the instance's memory lives from one event to the next.
var count int

func init() {
	airlock.OnStart(func() error { airlock.Info("started"); return nil })
	airlock.OnStop(func() error { airlock.Info("stopped cleanly"); return nil })
	airlock.OnDropped(func(d airlock.Dropped) error {
		kinds := func(m map[string]uint64) string {
			out := ""
			for _, k := range []string{"timer", "udev", "dbus_signal", "mount"} {
				if n, ok := m[k]; ok {
					out += fmt.Sprintf(" %s:%d", k, n)
				}
			}
			return out
		}
		airlock.Info(fmt.Sprintf("dropped count=%d reason=%s rate_limited=%d coalesced=%d by_kind=%s coalesced_by_kind=%s",
			d.Count, d.Reason, d.RateLimited, d.Coalesced, kinds(d.ByKind), kinds(d.CoalescedByKind)))
		return nil
	})
	airlock.OnUdev(func(e airlock.UEvent) error {
		airlock.Info(fmt.Sprintf("udev action=%s subsystem=%s devtype=%s devname=%s label=%s uuid=%s fstype=%s seqnum=%d coldplug=%v",
			e.Action, e.Subsystem, e.DevType, e.DevName, e.Label(), e.UUID(), e.FSType(), e.SeqNum(), e.Coldplug()))
		return nil
	})
	airlock.OnDBusSignal(func(s airlock.Signal) error {
		airlock.Info("dbus signal rule=" + s.Rule + " sender_name=" + s.SenderName + " path=" + string(s.Path) +
			" interface=" + s.Interface + " member=" + s.Member + " sig=" + string(s.Signature) + " body=" + dbusText(s.Body))
		if iface, changed, invalidated, ok := s.PropertiesChanged(); ok {
			airlock.Info(fmt.Sprintf("dbus properties changed %s: %d changed, %d invalidated", iface, len(changed), len(invalidated)))
		}
		return nil
	})
	airlock.OnMount(func(e airlock.MountEvent) error {
		airlock.Info("mount event action=" + e.Action + " target=" + e.Target + " source=" + e.Source + " device=" + e.Device + " reason=" + e.Reason)
		return nil
	})
	airlock.OnTimer(func(t airlock.Timer) error {
		cmd, arg, _ := strings.Cut(t.Name, ":")
		switch cmd {
		case "seq":
			airlock.Info("seq " + arg)
		case "count":
			count++
			airlock.Info(fmt.Sprintf("count %d", count))
		case "time":
			airlock.Info("time " + strconv.FormatInt(t.Time.UnixNano(), 10))
		case "config":
			v, err := airlock.Config(arg)
			if err != nil {
				var he *airlock.HostError
				errors.As(err, &he)
				airlock.Info("config " + arg + " missing: " + he.Code.String() + ": " + he.Msg)
			} else {
				airlock.Info("config " + arg + "=" + v)
			}
		case "bigconfig":
			v, err := airlock.Config(arg)
			if err != nil {
				return err
			}
			airlock.Info(fmt.Sprintf("config %s len=%d sum=%d", arg, len(v), sum([]byte(v))))
		case "big":
			airlock.Info(fmt.Sprintf("big name len=%d sum=%d", len(t.Name), sum([]byte(t.Name))))
		case "env":
			env := os.Environ()
			sort.Strings(env)
			airlock.Info("env " + strings.Join(env, ","))
		case "levels":
			airlock.Debug("level debug")
			airlock.Info("level info")
			airlock.Warn("level warn")
			airlock.Error("level error")
		case "fields":
			airlock.Info("fields", "colour", "blue", "count", 3, "bad key", "x", "msg", "m")
		case "write":
			if err := os.WriteFile("/data/"+arg, []byte("data of "+arg), 0o600); err != nil {
				airlock.Info("write " + arg + ": error")
			} else {
				airlock.Info("write " + arg + ": ok")
			}
		case "read":
			b, err := os.ReadFile("/data/" + arg)
			if err != nil {
				airlock.Info("read " + arg + ": error")
			} else {
				airlock.Info("read " + arg + ": " + string(b))
			}
		case "sleep":
			ms, _ := strconv.ParseInt(arg, 10, 64)
			airlock.Info("sleep " + arg + " begin")
			if err := airlock.Sleep(time.Duration(ms) * time.Millisecond); err != nil {
				var he *airlock.HostError
				errors.As(err, &he)
				airlock.Info("sleep " + arg + ": " + he.Code.String())
			} else {
				airlock.Info("sleep " + arg + ": ok")
			}
		case "deadline":
			d := airlock.Deadline()
			airlock.Info(fmt.Sprintf("deadline ok=%v", d > 0 && d <= 10*time.Second))
		case "clock":
			now := airlock.Now().UnixNano()
			airlock.Info(fmt.Sprintf("clock ok=%v", now > 1_600_000_000_000_000_000))
		case "fail":
			return errors.New("handler failed on purpose")
		case "sup":
			supervisorStep(arg)
		case "mount":
			mountStep(arg)
		case "dbus":
			dbusStep(arg)
		case "cloud":
			cloudStep(arg)
		default:
			airlock.Warn("unknown step " + cmd)
		}
		return nil
	})
}

// sum is a checksum that every language computes the same way.
func sum(b []byte) uint32 {
	var s uint32
	for _, c := range b {
		s = s*31 + uint32(c)
	}
	return s
}

func main() {}

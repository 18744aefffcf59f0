// Package simdevice is the simulated device's own module: the demo that
// `airlock run` plays on it (a short, narrated sequence of things that
// happen to a device: a USB stick comes and goes, the clock loses NTP
// sync, the app takes an update lock and crashes, so that a new user sees
// the bundled plugins react, on a laptop, in seconds), the clock that
// becomes NTP-synchronized once a plugin listens, and the runtime of one
// plugin alone on the device (Solo). It acts through the capabilities'
// simulated backends and synthesizers, which it is given (Options): the
// capabilities hold no demo code.
package simdevice

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/internal/timer"
	"github.com/airlockhq/airlock/internal/udev"
)

// Names lists the scenarios that runtime.toml's scenario key accepts.
var Names = []string{"demo"}

// Env is what a scenario acts through: the simulated device (the
// capabilities' simulated backends and synthesizers) and the host's event
// delivery.
type Env struct {
	*Player
	Deliver capability.Deliver
	Logger  *slog.Logger
}

// step is one beat of the story: after a pause, say what happens, then
// make it happen.
type step struct {
	after time.Duration
	say   string
	do    func(e *Env) error
}

// Play runs the named scenario until it ends or ctx does.
func Play(ctx context.Context, name string, e Env) error {
	if name != "demo" {
		return fmt.Errorf("unknown scenario %q", name)
	}
	log := e.Logger.With("scenario", name)
	for i, s := range demo {
		t := time.NewTimer(s.after)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		log.Info(fmt.Sprintf("▶ %d/%d %s", i+1, len(demo), s.say))
		if s.do == nil {
			continue
		}
		if err := s.do(&e); err != nil {
			log.Warn("scenario step could not run", "step", i+1, "error", err.Error())
		}
	}
	return nil
}

var demo = []step{
	{after: time.Second, say: "a USB stick labelled MEDIA is plugged in (automount mounts it under /media)", do: stickEvents("add")},
	{after: 3 * time.Second, say: "the stick is pulled out (automount and the host unmount it)", do: stickEvents("remove")},
	{after: 2 * time.Second, say: "NTP loses sync (ntp-check hears timedate1's PropertiesChanged)", do: ntp(false)},
	{after: 2 * time.Second, say: "the app takes an update lock, then its service main crashes", do: lockAndCrash},
	{after: time.Second, say: "supervisor-reboot's check runs (1 of 3)", do: check},
	{after: time.Second, say: "supervisor-reboot's check runs (2 of 3)", do: check},
	{after: time.Second, say: "supervisor-reboot's check runs (3 of 3): it asks for a reboot, and the update lock refuses", do: check},
	{after: 2 * time.Second, say: "end of the demo; the plugins keep running on the simulated device. Ctrl-C stops airlock cleanly."},
}

// stickEvents replays the built-in USB-stick recording's events of one
// action through the udev router, as the kernel would send them.
func stickEvents(action string) func(*Env) error {
	return func(e *Env) error {
		if e.o.Udev == nil {
			return fmt.Errorf("no udev capability")
		}
		evs, err := udev.SampleReplay()
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if ev.Event.Action != action && (action != "add" || ev.Event.Action != "change") {
				continue
			}
			syn, err := e.o.Udev.Synthesize(nil, ueventArgs(ev.Event))
			if err != nil {
				return err
			}
			syn.Inject()
		}
		return nil
	}
}

// ueventArgs is a uevent as a synthesizer's KEY=VALUE arguments.
func ueventArgs(ev udev.UEvent) []string {
	args := []string{"ACTION=" + ev.Action, "DEVPATH=" + ev.DevPath, "SUBSYSTEM=" + ev.Subsystem, "DEVTYPE=" + ev.DevType,
		"DEVNAME=" + ev.DevName, "SEQNUM=" + ev.SeqNum}
	for k, v := range ev.Props {
		args = append(args, k+"="+v)
	}
	return args
}

func ntp(synced bool) func(*Env) error {
	return func(e *Env) error {
		r := e.DBus()
		if r == nil {
			return fmt.Errorf("the simulated system bus is not running (is dbus-daemon installed?)")
		}
		r.Device.SetNTPSynchronized(synced)
		return nil
	}
}

func lockAndCrash(e *Env) error {
	s := e.Supervisor()
	if s == nil {
		return fmt.Errorf("no simulated supervisor")
	}
	s.Lock("main")
	if !s.Crash("main") {
		return fmt.Errorf("the simulated app has no service main")
	}
	return nil
}

func check(e *Env) error {
	const p = "supervisor-reboot"
	if !e.Deliver(p, timer.Event(p, "check", time.Now())) {
		return fmt.Errorf("plugin %s is not loaded", p)
	}
	return nil
}

package simdevice

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/airlockhq/airlock/internal/simdevice/dbussim"

	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/dbus"
	"github.com/airlockhq/airlock/internal/simdevice/supsim"
)

// Player plugs the simulated device into the host's module lifecycle:
// runtime.toml's [scenario] section chooses the demo, Provision learns
// whether the device is simulated (and starts the NTP clock), and Start
// plays the demo once the plugins run. It grants nothing: a plugin's
// manifest cannot name it.
type Player struct {
	o    Options
	play string
	sim  bool
	log  *slog.Logger
	wg   sync.WaitGroup

	heard  chan struct{} // poked once a match on timedate1 is added
	cancel context.CancelFunc
}

// Options are the capabilities' simulated backends and synthesizers that
// the simulated device acts through. A nil one makes the steps that need
// it fail with a warning.
type Options struct {
	Udev       capability.Synthesizer // injects the stick's uevents
	DBus       func() *dbussim.Run    // the simulated system bus, or nil; NewDBus sets it
	Supervisor func() *supsim.Server  // the simulated supervisor, or nil
}

// Config is the [scenario] section of runtime.toml.
type Config struct {
	Play string `toml:"play"` // "demo", or "none"
}

// New returns a player that acts through o. Make the dbus capability with
// its NewDBus, for the NTP clock.
func New(o Options) *Player { return &Player{o: o, heard: make(chan struct{}, 1)} }

// NewDBus makes the dbus capability that p acts through: p hears the
// match rules it adds (OnMatch) and reaches its simulated bus.
func (p *Player) NewDBus() *dbus.DBus {
	d := dbus.New(dbus.Options{OnMatch: p.OnMatch})
	p.o.DBus = d.Sim
	return d
}

// OnMatch hears each match rule the dbus capability adds: the simulated
// clock becomes NTP-synchronized two seconds after some plugin listens to
// timedate1, so that ntp-check first reads "not yet" and then sees
// PropertiesChanged.
func (p *Player) OnMatch(rule string) {
	if strings.Contains(rule, "sender='org.freedesktop.timedate1'") {
		select {
		case p.heard <- struct{}{}:
		default:
		}
	}
}

// DBus is the simulated system bus and its services, or nil (no
// dbus-daemon, a real device, or p is nil).
func (p *Player) DBus() *dbussim.Run {
	if p == nil || p.o.DBus == nil {
		return nil
	}
	return p.o.DBus()
}

// Supervisor is the simulated supervisor, or nil.
func (p *Player) Supervisor() *supsim.Server {
	if p == nil || p.o.Supervisor == nil {
		return nil
	}
	return p.o.Supervisor()
}

// clock sets the simulated NTP sync of r, as OnMatch says.
func (p *Player) clock(ctx context.Context, r *dbussim.Run) {
	defer p.wg.Done()
	select {
	case <-p.heard:
	case <-ctx.Done():
		return
	}
	select {
	case <-time.After(2 * time.Second):
		r.Device.SetNTPSynchronized(true)
	case <-ctx.Done():
	}
}

func (*Player) Name() string                 { return "scenario" }
func (*Player) Module() string               { return "" }
func (*Player) Functions() []capability.Func { return nil }
func (*Player) Trigger() string              { return "scenario" }
func (*Player) Subscribe(string, any)        {}

// DecodeGrant refuses a [scenario] table in a plugin's manifest.
func (*Player) DecodeGrant(s manifest.Section) (any, error) {
	s.Errorf("", "scenarios are chosen in runtime.toml, not by plugins; remove this table", "a plugin cannot grant itself a scenario")
	return nil, fmt.Errorf("scenario in a manifest")
}

// DecodeTrigger refuses [[trigger.scenario]].
func (*Player) DecodeTrigger(s manifest.Section) (any, error) {
	s.Errorf("", "a scenario wakes plugins through their own triggers (timers, udev, dbus); remove this table", "scenario is not a trigger")
	return nil, fmt.Errorf("scenario trigger")
}

// DecodeConfig reads [scenario] play = "demo".
func (*Player) DecodeConfig(s manifest.Section) (any, error) {
	var c Config
	if !s.Decode(&c) {
		return nil, fmt.Errorf("bad [scenario]")
	}
	if c.Play != "none" && !slices.Contains(Names, c.Play) {
		s.Errorf("play", `use "none" or one of: `+strings.Join(Names, ", "), "unknown scenario %q", c.Play)
		return nil, fmt.Errorf("bad [scenario]")
	}
	return &c, nil
}

// Provision records the choice. A scenario plays only on the simulated
// device: on a real one it would lie about what happened.
func (p *Player) Provision(ctx context.Context, env capability.Env) error {
	p.log, p.sim = env.Logger, env.Sim
	// The dbus capability, provisioned before, has started the bus.
	if p.sim && p.DBus() != nil {
		ctx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
		p.wg.Add(1)
		go p.clock(ctx, p.DBus())
	}
	if c, ok := env.Config.(*Config); ok && c.Play != "none" {
		p.play = c.Play
	}
	if p.play != "" && !p.sim {
		p.log.Warn("scenario not played: the device is real", "scenario", p.play)
		p.play = ""
	}
	return nil
}

// Start plays the scenario in the background.
func (p *Player) Start(ctx context.Context, deliver capability.Deliver) error {
	if p.play == "" {
		return nil
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		Play(ctx, p.play, Env{Player: p, Deliver: deliver, Logger: p.log})
	}()
	return nil
}

// Close stops the clock and waits for the scenario to notice that the
// host is stopping.
func (p *Player) Close() error {
	if p.cancel != nil {
		p.cancel()
	}
	p.wg.Wait()
	return nil
}

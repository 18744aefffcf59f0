package scenario

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/manifest"
)

// Player plugs a scenario into the host's module lifecycle: runtime.toml's
// [scenario] section chooses it, Provision learns whether the device is
// simulated, and Start plays it once the plugins run. It grants nothing: a
// plugin's manifest cannot name it.
type Player struct {
	caps []capability.Capability
	play string
	sim  bool
	log  *slog.Logger
	wg   sync.WaitGroup
}

// Config is the [scenario] section of runtime.toml.
type Config struct {
	Play string `toml:"play"` // "demo", or "none"
}

// New returns a player that acts on caps' simulated backends.
func New(caps ...capability.Capability) *Player { return &Player{caps: caps} }

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
func (p *Player) Provision(_ context.Context, env capability.Env) error {
	p.log, p.sim = env.Logger, env.Sim
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
		Play(ctx, p.play, Env{Capabilities: p.caps, Deliver: deliver, Logger: p.log})
	}()
	return nil
}

// Close waits for the scenario to notice that the host is stopping.
func (p *Player) Close() error {
	p.wg.Wait()
	return nil
}

package dbus

import (
	"errors"
	"fmt"
	"strings"

	"github.com/airlockhq/airlock/host/manifest"
)

// Ceiling is runtime.toml's [trust.vendor.ceiling.dbus]: the most a
// vendor's plugins may be granted on the bus. It names destinations, not
// whole rules, because an operator caps whom a vendor may talk to; the
// plugin's own manifest narrows it to methods and properties.
type Ceiling struct {
	Destinations []busNamePattern
	// SetProperties allows property writes; reads and calls need only a
	// destination.
	SetProperties bool
}

type ceilingTOML struct {
	Destinations  []string `toml:"destinations"`
	SetProperties bool     `toml:"set_properties"`
}

// DecodeCeiling decodes [trust.vendor.ceiling.dbus] into a *Ceiling.
func (*DBus) DecodeCeiling(s manifest.Section) (any, error) {
	var t ceilingTOML
	if !s.Decode(&t) {
		return nil, errors.New("bad dbus ceiling")
	}
	c := &Ceiling{SetProperties: t.SetProperties}
	ok := true
	for i, d := range t.Destinations {
		p, err := parseBusNamePattern(d)
		if err != nil {
			ok = false
			s.Errorf("destinations", `name services such as "org.freedesktop.timedate1", or a family, "org.freedesktop.*"`, "entry %d: %v", i, err)
		}
		c.Destinations = append(c.Destinations, p)
	}
	if !ok {
		return nil, errors.New("bad dbus ceiling")
	}
	return c, nil
}

// covers reports whether every name that p matches, c matches too.
// A family never covers the bus driver, which only its exact name does.
func (c busNamePattern) covers(p busNamePattern) bool {
	if !c.family {
		return !p.family && p.name == c.name
	}
	if !p.family && p.name == driverName {
		return false
	}
	return p.name == c.name || strings.HasPrefix(p.name, c.name+".")
}

func (c *Ceiling) allows(p busNamePattern) bool {
	for _, d := range c.Destinations {
		if d.covers(p) {
			return true
		}
	}
	return false
}

func (c *Ceiling) String() string {
	ds := make([]string, len(c.Destinations))
	for i, d := range c.Destinations {
		ds[i] = d.String()
	}
	return "destinations = " + quoteList(ds)
}

// Within reports whether every rule of g stays inside ceiling (a
// *Ceiling), and names each rule that does not.
func (g *Grant) Within(ceiling any) (bool, []string) {
	c, ok := ceiling.(*Ceiling)
	if !ok {
		return false, []string{fmt.Sprintf("the ceiling is a %T, not a dbus ceiling", ceiling)}
	}
	var excess []string
	for _, r := range g.Calls {
		switch {
		case !c.allows(r.Destination):
			excess = append(excess, fmt.Sprintf("call %s %s.%s is outside the ceiling (%s)", r.Destination, r.Interface, r.Member, c))
		case r.Interface == propsIface && r.Member != "Get" && r.Member != "GetAll" && !c.SetProperties:
			// Judged by what it does: decodeGrant refuses such a rule,
			// and the ceiling would too.
			excess = append(excess, fmt.Sprintf("call %s %s.%s sets properties, which is outside the ceiling (set_properties = false)", r.Destination, r.Interface, r.Member))
		}
	}
	for _, r := range g.Properties {
		if !c.allows(r.Destination) {
			excess = append(excess, fmt.Sprintf("property %s %s.%s is outside the ceiling (%s)", r.Destination, r.Interface, r.Name, c))
		} else if r.Set && !c.SetProperties {
			excess = append(excess, fmt.Sprintf("setting property %s %s.%s is outside the ceiling (set_properties = false)", r.Destination, r.Interface, r.Name))
		}
	}
	return len(excess) == 0, excess
}

// Within reports whether every signal rule listens only to senders the
// ceiling (a *Ceiling) names.
func (rs SignalRules) Within(ceiling any) (bool, []string) {
	c, ok := ceiling.(*Ceiling)
	if !ok {
		return false, []string{fmt.Sprintf("the ceiling is a %T, not a dbus ceiling", ceiling)}
	}
	var excess []string
	for _, r := range rs {
		p, err := parseBusNamePattern(r.Sender)
		if err != nil || !c.allows(p) {
			excess = append(excess, fmt.Sprintf("signals from %s are outside the ceiling (%s)", r.Sender, c))
		}
	}
	return len(excess) == 0, excess
}

// Describe says in plain words what g allows: "may call
// org.freedesktop.systemd1 StopUnit with bluetooth.service, replace".
func (g *Grant) Describe() []string {
	var out []string
	for _, r := range g.Calls {
		s := fmt.Sprintf("may call %s %s (%s at %s)", r.Destination, r.Member, r.Interface, r.Path)
		if r.Args != nil {
			args := make([]string, len(r.Args))
			for i, a := range r.Args {
				args[i] = a
				if a == "*" {
					args[i] = "any value"
				}
			}
			s += " with " + strings.Join(args, ", ")
			if len(args) == 0 {
				s += "no arguments"
			}
		}
		out = append(out, s)
	}
	for _, r := range g.Properties {
		var verbs []string
		if r.Get {
			verbs = append(verbs, "read")
		}
		if r.Set {
			verbs = append(verbs, "change")
		}
		what := "the property " + r.Name
		if r.Name == "*" {
			what = "every property"
		}
		out = append(out, fmt.Sprintf("may %s %s of %s on %s (at %s)", strings.Join(verbs, " and "), what, r.Interface, r.Destination, r.Path))
	}
	return out
}

// Describe says in plain words which signals wake the plugin.
func (rs SignalRules) Describe() []string {
	var out []string
	for _, r := range rs {
		what := "any D-Bus signal"
		if r.Member != "" {
			what = "the D-Bus signal " + r.Member
		}
		s := fmt.Sprintf("is woken by %s from %s", what, r.Sender)
		if r.Interface != "" {
			s += " on " + r.Interface
		}
		if r.Path != "" {
			s += " at " + r.Path
		}
		out = append(out, s)
	}
	return out
}

package httpout

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Within reports whether every [[http.request]] rule of g fits under one
// rule of ceiling (a Grant decoded from runtime.toml's
// [trust.vendor.ceiling.http]), and lists those that do not. A rule fits
// when the ceiling rule covers each of its hosts (a family covers its
// names and narrower families), schemes, ports, methods and paths, allows
// private addresses if it does, and adds the same headers: a vendor's
// plugin gets no secret the operator's ceiling does not attach.
func (g *Grant) Within(ceiling any) (bool, []string) {
	c, ok := ceiling.(*Grant)
	if !ok {
		return false, []string{fmt.Sprintf("the ceiling is a %T, not an http grant", ceiling)}
	}
	var excess []string
	for _, r := range g.Rules {
		if !slices.ContainsFunc(c.Rules, func(cr *Rule) bool { return cr.covers(r) }) {
			excess = append(excess, fmt.Sprintf("[[http.request]] rule %d (%s) fits under no rule of the ceiling", r.index, r))
		}
	}
	return len(excess) == 0, excess
}

// covers reports whether every request r allows, c allows too.
func (c *Rule) covers(r *Rule) bool {
	if r.AllowPrivate && !c.AllowPrivate {
		return false
	}
	for _, h := range r.Hosts {
		if !slices.ContainsFunc(c.Hosts, func(ch hostPattern) bool { return ch.coversPattern(h) }) {
			return false
		}
	}
	for _, sc := range r.Schemes {
		if !slices.Contains(c.Schemes, sc) {
			return false
		}
		for _, p := range r.portsFor(sc) {
			if !slices.Contains(c.portsFor(sc), p) {
				return false
			}
		}
	}
	for _, m := range r.Methods {
		if !slices.Contains(c.Methods, m) {
			return false
		}
	}
	for _, p := range r.Paths {
		if !c.pathAllowed(p) || (!strings.HasSuffix(p, "/") && !c.pathAllowed(p+"/x")) {
			return false
		}
	}
	return slices.EqualFunc(r.Headers, c.Headers, func(a, b headerTemplate) bool { return a.Name == b.Name && a.String() == b.String() })
}

// portsFor is the ports the rule allows for a scheme.
func (r *Rule) portsFor(scheme string) []int {
	if len(r.Ports) == 0 {
		return []int{r.defaultPort(scheme)}
	}
	return r.Ports
}

// coversPattern reports whether every host h matches is matched by p.
func (p hostPattern) coversPattern(h hostPattern) bool {
	if !h.wildcard {
		return p.matches(h.name)
	}
	return p.wildcard && (h.name == p.name || strings.HasSuffix(h.name[1:], p.name[1:]))
}

// String is the rule as a manifest would write it, in short.
func (r *Rule) String() string {
	var hosts []string
	for _, h := range r.Hosts {
		hosts = append(hosts, h.name)
	}
	var ports []string
	for _, p := range r.Ports {
		ports = append(ports, strconv.Itoa(p))
	}
	s := fmt.Sprintf("%s %s://%s", strings.Join(r.Methods, ","), strings.Join(r.Schemes, ","), strings.Join(hosts, ","))
	if len(ports) > 0 {
		s += ":" + strings.Join(ports, ",")
	}
	s += " " + strings.Join(r.Paths, ",")
	if r.AllowPrivate {
		s += " allow_private"
	}
	for _, h := range r.Headers {
		s += fmt.Sprintf(" %s: %s", h.Name, h)
	}
	return s
}

// Describe says in plain words what g allows, one line per rule.
func (g *Grant) Describe() []string {
	var out []string
	for _, r := range g.Rules {
		line := "may send HTTP " + r.String()
		if len(r.Headers) > 0 {
			line += " (headers added by the host)"
		}
		out = append(out, line)
	}
	return out
}

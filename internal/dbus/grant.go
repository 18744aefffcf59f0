package dbus

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	godbus "github.com/godbus/dbus/v5"

	"github.com/airlockhq/airlock/host/manifest"
)

// Grant is a plugin's [dbus] section: what it may call and which
// properties it may read or write. Anything not listed is denied.
type Grant struct {
	Calls      []CallRule
	Properties []PropertyRule
	file       string
}

// CallRule is one [[dbus.call]]: a method call is allowed when every field
// matches. Arguments are matched only when Args is set; then the call must
// have exactly len(Args) arguments.
type CallRule struct {
	Destination busNamePattern
	Path        pathPattern
	Interface   string
	Member      string
	Args        []string // per argument: "*" is any value, else its exact text
}

// PropertyRule is one [[dbus.property]]: Name is a property name or "*".
type PropertyRule struct {
	Destination busNamePattern
	Path        pathPattern
	Interface   string
	Name        string
	Get, Set    bool
}

type grantTOML struct {
	Call     []callTOML     `toml:"call"`
	Property []propertyTOML `toml:"property"`
}

type callTOML struct {
	Destination string   `toml:"destination"`
	Path        string   `toml:"path"`
	Interface   string   `toml:"interface"`
	Member      string   `toml:"member"`
	Args        []string `toml:"args"`
}

type propertyTOML struct {
	Destination string `toml:"destination"`
	Path        string `toml:"path"`
	Interface   string `toml:"interface"`
	Name        string `toml:"name"`
	Access      any    `toml:"access"`
}

var errBadGrant = errors.New("bad [dbus] grant")

// maxGrantRules bounds each of [[dbus.call]] and [[dbus.property]], and
// maxPatternSegs a path pattern: a call is matched against every rule, in
// at most len(pattern) × len(path) segment matches each.
const (
	maxGrantRules  = 256
	maxPatternSegs = 64
)

// decodeGrant decodes [dbus] strictly; every problem is positioned on s.
func decodeGrant(s manifest.Section) (*Grant, error) {
	var t grantTOML
	if !s.Decode(&t) {
		return nil, errBadGrant
	}
	g := &Grant{file: s.File()}
	ok := true
	for _, n := range []struct {
		kind string
		n    int
	}{{"call", len(t.Call)}, {"property", len(t.Property)}} {
		if n.n > maxGrantRules {
			s.Errorf(n.kind, "grant what the plugin needs: a family destination or a path glob covers many objects in one rule",
				"%d [[dbus.%s]] rules; a plugin may have at most %d (each is checked on every call)", n.n, n.kind, maxGrantRules)
			return nil, errBadGrant
		}
	}
	bad := func(kind string, i, n int, key, hint, format string, args ...any) {
		ok = false
		msg := fmt.Sprintf(format, args...)
		if n > 1 {
			msg = fmt.Sprintf("%s rule %d: %s", kind, i+1, msg)
		}
		s.Errorf(kind+"."+key, hint, "%s", msg)
	}
	for i, c := range t.Call {
		var r CallRule
		var err error
		if r.Destination, err = parseBusNamePattern(c.Destination); err != nil {
			bad("call", i, len(t.Call), "destination", `name the service, such as "org.freedesktop.systemd1", or a family, "org.freedesktop.*"`, "%v", err)
		}
		if r.Path, err = parsePathPattern(c.Path); err != nil {
			bad("call", i, len(t.Call), "path", `write an object path such as "/org/freedesktop/systemd1"; "*" matches within one segment, "**" across segments`, "%v", err)
		}
		if err = checkInterface(c.Interface); err != nil {
			bad("call", i, len(t.Call), "interface", `name the interface exactly, such as "org.freedesktop.systemd1.Manager"`, "%v", err)
		}
		if err = checkMember(c.Member); err != nil {
			bad("call", i, len(t.Call), "member", `name the method exactly, such as "StopUnit"`, "%v", err)
		}
		r.Interface, r.Member, r.Args = c.Interface, c.Member, c.Args
		if why := ruleRefusal(r); why != "" && r.Member != "" && r.Interface != "" {
			bad("call", i, len(t.Call), "interface", "grant the service's own interfaces; see host/RATIONALE.md, \"Why can no grant reach the bus driver?\"", "%s", why)
		}
		g.Calls = append(g.Calls, r)
	}
	for i, p := range t.Property {
		var r PropertyRule
		var err error
		if r.Destination, err = parseBusNamePattern(p.Destination); err != nil {
			bad("property", i, len(t.Property), "destination", `name the service, such as "org.freedesktop.timedate1"`, "%v", err)
		}
		if r.Path, err = parsePathPattern(p.Path); err != nil {
			bad("property", i, len(t.Property), "path", `write an object path such as "/org/freedesktop/timedate1"`, "%v", err)
		}
		if err = checkInterface(p.Interface); err != nil {
			bad("property", i, len(t.Property), "interface", `name the interface that holds the property, such as "org.freedesktop.timedate1"`, "%v", err)
		}
		r.Interface, r.Name = p.Interface, p.Name
		if r.Destination.name == driverName && !r.Destination.family {
			bad("property", i, len(t.Property), "destination", "grant the properties of a service, not of the bus", "the bus driver's properties cannot be granted: no call reaches the driver but its read-only methods")
		}
		if r.Name != "*" {
			if err = checkMember(r.Name); err != nil {
				bad("property", i, len(t.Property), "name", `name the property, such as "NTPSynchronized", or "*" for all of the interface's`, "%v", err)
			}
		}
		acc, err := accessList(p.Access)
		if err != nil {
			bad("property", i, len(t.Property), "access", `write access = "get", access = "set" or access = ["get", "set"]`, "%v", err)
		}
		r.Get, r.Set = slices.Contains(acc, "get"), slices.Contains(acc, "set")
		g.Properties = append(g.Properties, r)
	}
	if !ok {
		return nil, errBadGrant
	}
	return g, nil
}

func accessList(v any) ([]string, error) {
	var out []string
	switch a := v.(type) {
	case nil:
		return nil, fmt.Errorf("access is required")
	case string:
		out = []string{a}
	case []any:
		for _, x := range a {
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("access list holds %v, not a string", x)
			}
			out = append(out, s)
		}
	default:
		return nil, fmt.Errorf("access is %T, not a string or list", v)
	}
	for _, a := range out {
		if a != "get" && a != "set" {
			return nil, fmt.Errorf("unknown access %q", a)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("access is empty")
	}
	return out, nil
}

// busNamePattern is an exact bus name, or "org.foo.*", which covers
// org.foo and every name below it but not org.foobar.
type busNamePattern struct {
	name   string
	family bool
}

func parseBusNamePattern(s string) (busNamePattern, error) {
	if s == "" {
		return busNamePattern{}, fmt.Errorf("destination is required")
	}
	if base, ok := strings.CutSuffix(s, ".*"); ok {
		if strings.Count(base, ".") < 1 {
			return busNamePattern{}, fmt.Errorf("%q is too wide: a family needs at least two elements before .*", s)
		}
		if err := checkBusName(base); err != nil {
			return busNamePattern{}, err
		}
		return busNamePattern{name: base, family: true}, nil
	}
	if strings.ContainsAny(s, "*?[") {
		return busNamePattern{}, fmt.Errorf("%q: a bus name is exact, or ends in .* for a family", s)
	}
	if strings.HasPrefix(s, ":") {
		return busNamePattern{}, fmt.Errorf("%q is a unique name, which changes at every restart of the service; grant its well-known name", s)
	}
	return busNamePattern{name: s}, checkBusName(s)
}

func (p busNamePattern) String() string {
	if p.family {
		return p.name + ".*"
	}
	return p.name
}

// match never lets a family reach the bus driver: org.freedesktop.* covers
// org.freedesktop.DBus by its spelling, not by what it means.
func (p busNamePattern) match(name string) bool {
	if !p.family {
		return name == p.name
	}
	if name == driverName {
		return false
	}
	return name == p.name || strings.HasPrefix(name, p.name+".")
}

// pathPattern is an object path with snapd-style globs: "*" within one
// segment, "**" (a whole segment) for zero or more segments.
type pathPattern struct {
	raw  string
	segs []string
}

func parsePathPattern(s string) (pathPattern, error) {
	if s == "" {
		return pathPattern{}, fmt.Errorf("path is required")
	}
	if !strings.HasPrefix(s, "/") {
		return pathPattern{}, fmt.Errorf("%q does not start with /", s)
	}
	p := pathPattern{raw: s}
	if s == "/" {
		return p, nil
	}
	for _, seg := range strings.Split(s[1:], "/") {
		if seg == "" {
			return pathPattern{}, fmt.Errorf("%q has an empty segment", s)
		}
		if seg != "**" {
			for _, c := range seg {
				if !(c == '*' || c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
					return pathPattern{}, fmt.Errorf("%q: %q may not appear in an object path", s, c)
				}
			}
			if strings.Contains(seg, "**") {
				return pathPattern{}, fmt.Errorf("%q: ** must be a whole segment", s)
			}
		}
		p.segs = append(p.segs, seg)
	}
	if len(p.segs) > maxPatternSegs || len(s) > maxPath {
		return pathPattern{}, fmt.Errorf("%.60q...: a path pattern has at most %d segments and %d bytes", s, maxPatternSegs, maxPath)
	}
	return p, nil
}

func (p pathPattern) String() string { return p.raw }

func (p pathPattern) match(path string) bool {
	if path == "/" {
		return len(p.segs) == 0 || len(p.segs) == 1 && p.segs[0] == "**"
	}
	return matchSegs(p.segs, strings.Split(strings.TrimPrefix(path, "/"), "/"))
}

// matchSegs matches path segments against pattern segments, where "**"
// is any run of segments. It backtracks only to the last "**", so its cost
// is at most len(pat) × len(segs) segment matches, whatever the guest sends
// (a recursive matcher was exponential in the number of "**").
func matchSegs(pat, segs []string) bool {
	p, s := 0, 0
	star, mark := -1, 0
	for s < len(segs) {
		switch {
		case p < len(pat) && pat[p] == "**":
			star, mark = p, s
			p++
		case p < len(pat) && globSeg(pat[p], segs[s]):
			p++
			s++
		case star >= 0:
			p = star + 1
			mark++
			s = mark
		default:
			return false
		}
	}
	for p < len(pat) && pat[p] == "**" {
		p++
	}
	return p == len(pat)
}

// globSeg matches one segment where "*" is any run of characters, in
// O(len(pat) × len(s)) like matchSegs.
func globSeg(pat, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pat) && pat[p] == '*':
			star, mark = p, i
			p++
		case p < len(pat) && pat[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pat) && pat[p] == '*' {
		p++
	}
	return p == len(pat)
}

// checkBusName validates a well-known or unique bus name as the D-Bus spec
// defines it.
func checkBusName(s string) error {
	if len(s) > 255 || s == "" {
		return fmt.Errorf("%.60q is not a bus name (1 to 255 characters)", s)
	}
	unique := strings.HasPrefix(s, ":")
	elems := strings.Split(strings.TrimPrefix(s, ":"), ".")
	if len(elems) < 2 {
		return fmt.Errorf("%q is not a bus name: it needs at least two dot-separated elements", s)
	}
	for _, e := range elems {
		if e == "" {
			return fmt.Errorf("%q is not a bus name: empty element", s)
		}
		for i, c := range e {
			ok := c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && (unique || i > 0)
			if !ok {
				return fmt.Errorf("%q is not a bus name: %q at element %q", s, c, e)
			}
		}
	}
	return nil
}

func checkInterface(s string) error {
	if s == "" {
		return fmt.Errorf("interface is required")
	}
	if len(s) > 255 {
		return fmt.Errorf("%.60q is longer than 255 characters", s)
	}
	elems := strings.Split(s, ".")
	if len(elems) < 2 {
		return fmt.Errorf("%q is not an interface name: it needs at least two dot-separated elements", s)
	}
	for _, e := range elems {
		if err := checkElement(e); err != nil {
			return fmt.Errorf("%q is not an interface name: %v", s, err)
		}
	}
	return nil
}

func checkMember(s string) error {
	if s == "" {
		return fmt.Errorf("a name is required")
	}
	if len(s) > 255 {
		return fmt.Errorf("%.60q is longer than 255 characters", s)
	}
	if err := checkElement(s); err != nil {
		return fmt.Errorf("%q is not a member name: %v", s, err)
	}
	return nil
}

func checkElement(e string) error {
	if e == "" {
		return fmt.Errorf("empty element")
	}
	for i, c := range e {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && i > 0) {
			return fmt.Errorf("%q may not appear there", c)
		}
	}
	return nil
}

// Call is one method call as the gate sees it.
type Call struct {
	Destination, Path, Interface, Member string
	Args                                 []any
}

func (c Call) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s.%s(", c.Destination, c.Path, c.Interface, c.Member)
	for i, a := range c.Args {
		if i > 0 {
			b.WriteString(", ")
		}
		if s, ok := argText(a); ok {
			b.WriteString(strconv.Quote(s))
		} else {
			fmt.Fprintf(&b, "<%s>", godbus.SignatureOf(a))
		}
	}
	b.WriteString(")")
	return b.String()
}

// argText is the text an args pattern compares with: basic values only.
func argText(a any) (string, bool) {
	switch v := a.(type) {
	case string:
		return v, true
	case godbus.ObjectPath:
		return string(v), true
	case godbus.Signature:
		return v.String(), true
	case bool:
		return strconv.FormatBool(v), true
	case byte, int16, uint16, int32, uint32, int64, uint64:
		return fmt.Sprint(v), true
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), true
	}
	return "", false
}

// allowCall returns the decision for c, with a reason that names the
// matching rule or says what the manifest lacks.
func (g *Grant) allowCall(c Call) (bool, string) {
	if why := refusal(c.Destination, c.Path, c.Interface, c.Member); why != "" {
		return false, why
	}
	if g == nil || len(g.Calls) == 0 {
		return false, "plugin.toml has no [[dbus.call]] rules (add one naming destination, path, interface and member)"
	}
	closest := ""
	for i, r := range g.Calls {
		if !r.Destination.match(c.Destination) || !r.Path.match(c.Path) || r.Interface != c.Interface || r.Member != c.Member {
			continue
		}
		if r.Args == nil {
			return true, fmt.Sprintf("[[dbus.call]] rule %d allows %s.%s on %s", i+1, r.Interface, r.Member, r.Destination)
		}
		if why := r.argsMismatch(c.Args); why != "" {
			closest = fmt.Sprintf("[[dbus.call]] rule %d names %s.%s but its args = %s: %s", i+1, r.Interface, r.Member, quoteList(r.Args), why)
			continue
		}
		return true, fmt.Sprintf("[[dbus.call]] rule %d allows %s.%s%s on %s", i+1, r.Interface, r.Member, quoteList(r.Args), r.Destination)
	}
	if closest != "" {
		return false, closest
	}
	return false, fmt.Sprintf("no [[dbus.call]] rule allows %s.%s on %s at %s (add one)", c.Interface, c.Member, c.Destination, short(c.Path))
}

func (r CallRule) argsMismatch(args []any) string {
	if len(args) != len(r.Args) {
		return fmt.Sprintf("the call has %d arguments, the rule %d", len(args), len(r.Args))
	}
	for i, p := range r.Args {
		if p == "*" {
			continue
		}
		s, ok := argText(args[i])
		if !ok {
			return fmt.Sprintf("argument %d is a %s, which only \"*\" matches", i, godbus.SignatureOf(args[i]))
		}
		if s != p {
			return fmt.Sprintf("argument %d is %s, not %q", i, short(strconv.Quote(s)), p)
		}
	}
	return ""
}

// short bounds guest text quoted in a reason, which the audit records: a
// guest must not make one decision cost the audit a megabyte.
func short(s string) string {
	const max = 200
	if len(s) <= max {
		return s
	}
	return s[:max] + fmt.Sprintf("… (%d bytes)", len(s))
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// allowProperty decides a property Get ("get") or Set ("set") of name;
// name "*" asks for GetAll, which is allowed when any get rule covers the
// interface (its reply is then filtered by propertyFilter).
func (g *Grant) allowProperty(access, dest, path, iface, name string) (bool, string) {
	member := map[string]string{"get": "Get", "set": "Set"}[access]
	if name == "*" {
		member = "GetAll"
	}
	if why := refusal(dest, path, propsIface, member); why != "" {
		return false, why
	}
	what := fmt.Sprintf("%s %s.%s on %s at %s", access, iface, name, dest, short(path))
	if g == nil || len(g.Properties) == 0 {
		return false, fmt.Sprintf("plugin.toml has no [[dbus.property]] rules (add one with access = %q to %s)", access, what)
	}
	near := ""
	for i, r := range g.Properties {
		if !r.Destination.match(dest) || !r.Path.match(path) || r.Interface != iface {
			continue
		}
		if name != "*" && r.Name != "*" && r.Name != name {
			continue
		}
		if access == "get" && r.Get || access == "set" && r.Set {
			return true, fmt.Sprintf("[[dbus.property]] rule %d allows %s", i+1, what)
		}
		near = fmt.Sprintf("[[dbus.property]] rule %d covers %s.%s but not access %q (add %q to its access)", i+1, iface, r.Name, access, access)
	}
	if near != "" {
		return false, near
	}
	return false, fmt.Sprintf("no [[dbus.property]] rule allows %s (add one)", what)
}

// propertyAllowed reports whether a get rule covers one property, for
// filtering a GetAll reply.
func (g *Grant) propertyAllowed(dest, path, iface, name string) bool {
	ok, _ := g.allowProperty("get", dest, path, iface, name)
	return ok
}

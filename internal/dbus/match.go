package dbus

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/airlockhq/airlock/host/manifest"
)

// SignalRule is one [[trigger.dbus]] table: a signal matches when every
// field it sets matches, as in a D-Bus match rule. Sender is required, so
// that no plugin listens to the whole bus.
type SignalRule struct {
	Name          string // optional; delivered as the event's "rule" field
	Sender        string // well-known or unique name
	Path          string
	PathNamespace string
	Interface     string
	Member        string
	Args          [maxArgMatch]*string // arg0..arg3: exact string arguments
	Arg0Path      string
}

// maxArgMatch is how many argN keys a rule may set.
const maxArgMatch = 4

// maxSignalRules bounds one plugin's [[trigger.dbus]] rules. The host's
// connection holds them all as match rules, and dbus-daemon caps a
// connection's match rules (max_match_rules_per_connection, 512 by
// default); dbus.max_match_rules bounds the sum over plugins below that.
const maxSignalRules = 32

// maxMatchRuleLen is the D-Bus spec's bound on a match rule: dbus-daemon
// refuses a longer AddMatch, and the plugin would wait for signals forever.
const maxMatchRuleLen = 1024

// SignalRules is what DecodeTrigger returns for one plugin.
type SignalRules []SignalRule

type signalTOML struct {
	Name          string  `toml:"name"`
	Sender        string  `toml:"sender"`
	Path          string  `toml:"path"`
	PathNamespace string  `toml:"path_namespace"`
	Interface     string  `toml:"interface"`
	Member        string  `toml:"member"`
	Arg0          *string `toml:"arg0"`
	Arg1          *string `toml:"arg1"`
	Arg2          *string `toml:"arg2"`
	Arg3          *string `toml:"arg3"`
	Arg0Path      string  `toml:"arg0path"`
}

var errBadTrigger = errors.New("bad [[trigger.dbus]] rules")

func decodeSignalRules(s manifest.Section) (SignalRules, error) {
	var raw []signalTOML
	if !s.Decode(&raw) {
		return nil, errBadTrigger
	}
	if len(raw) > maxSignalRules {
		s.Errorf("", "listen with fewer, wider rules (path_namespace, or no member), and tell the signals apart in the handler",
			"%d [[trigger.dbus]] rules; a plugin may have at most %d (each is a match rule on the host's one bus connection, which all plugins share)", len(raw), maxSignalRules)
		return nil, errBadTrigger
	}
	ok := true
	var out SignalRules
	for i, t := range raw {
		r := SignalRule{Name: t.Name, Sender: t.Sender, Path: t.Path, PathNamespace: t.PathNamespace,
			Interface: t.Interface, Member: t.Member, Args: [maxArgMatch]*string{t.Arg0, t.Arg1, t.Arg2, t.Arg3}, Arg0Path: t.Arg0Path}
		if key, err := r.validate(); err != nil {
			ok = false
			msg := err.Error()
			if len(raw) > 1 {
				msg = fmt.Sprintf("rule %d: %s", i+1, msg)
			}
			s.Errorf(key, "a rule names the sender and narrows by path, interface, member and arg0..arg3, like a D-Bus match rule", "%s", msg)
		}
		out = append(out, r)
	}
	if !ok {
		return nil, errBadTrigger
	}
	return out, nil
}

// validate checks every field, so that matchString never builds a rule the
// plugin did not write: AddMatch strings are not escaped by godbus. It
// returns the offending key.
func (r SignalRule) validate() (string, error) {
	if r.Sender == "" {
		return "sender", fmt.Errorf("sender is required, such as \"org.freedesktop.timedate1\"")
	}
	if err := checkBusName(r.Sender); err != nil {
		return "sender", err
	}
	if r.Path != "" && r.PathNamespace != "" {
		return "path_namespace", fmt.Errorf("set path or path_namespace, not both")
	}
	for _, f := range []struct{ key, v string }{{"path", r.Path}, {"path_namespace", r.PathNamespace}, {"arg0path", r.Arg0Path}} {
		if f.v != "" && !validObjectPath(f.v) && !(f.key == "arg0path" && strings.HasPrefix(f.v, "/")) {
			return f.key, fmt.Errorf("%.60q is not an object path", f.v)
		}
	}
	if r.Interface != "" {
		if err := checkInterface(r.Interface); err != nil {
			return "interface", err
		}
	}
	if r.Member != "" {
		if err := checkMember(r.Member); err != nil {
			return "member", err
		}
	}
	for i, a := range r.Args {
		if a == nil {
			continue
		}
		if len(*a) > 255 || !utf8.ValidString(*a) || strings.ContainsRune(*a, 0) {
			return fmt.Sprintf("arg%d", i), fmt.Errorf("arg%d must be UTF-8 without NUL, at most 255 bytes", i)
		}
	}
	if r.Arg0Path != "" && r.Args[0] != nil {
		return "arg0path", fmt.Errorf("set arg0 or arg0path, not both")
	}
	if len(r.Name) > 255 || !utf8.ValidString(r.Name) {
		return "name", fmt.Errorf("name must be UTF-8, at most 255 bytes")
	}
	if n := len(r.matchString()); n > maxMatchRuleLen {
		return "", fmt.Errorf("the rule is %d bytes as a D-Bus match rule; the bus takes at most %d (shorten path, path_namespace or the args)", n, maxMatchRuleLen)
	}
	return "", nil
}

func validObjectPath(p string) bool {
	if p == "/" {
		return true
	}
	if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return false
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "" {
			return false
		}
		for _, c := range seg {
			if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				return false
			}
		}
	}
	return true
}

// matchString is the rule as AddMatch takes it. Values are quoted, and a
// quote inside one is written '\” as the D-Bus spec says; validate has
// already refused anything else that could change the rule's meaning.
func (r SignalRule) matchString() string {
	parts := []string{"type='signal'"}
	add := func(k, v string) {
		parts = append(parts, k+"='"+strings.ReplaceAll(v, "'", `'\''`)+"'")
	}
	add("sender", r.Sender)
	if r.Path != "" {
		add("path", r.Path)
	}
	if r.PathNamespace != "" {
		add("path_namespace", r.PathNamespace)
	}
	if r.Interface != "" {
		add("interface", r.Interface)
	}
	if r.Member != "" {
		add("member", r.Member)
	}
	for i, a := range r.Args {
		if a != nil {
			add(fmt.Sprintf("arg%d", i), *a)
		}
	}
	if r.Arg0Path != "" {
		add("arg0path", r.Arg0Path)
	}
	return strings.Join(parts, ",")
}

// signalMsg is what the demultiplexer knows of one received signal.
type signalMsg struct {
	Sender, Path, Interface, Member string
	Args                            []any
}

// match reports whether the signal matches r, given the unique name that
// currently owns r's sender ("" if none).
func (r SignalRule) match(s *signalMsg, owner string) bool {
	if s.Sender != r.Sender && (owner == "" || s.Sender != owner) {
		return false
	}
	if r.Path != "" && s.Path != r.Path {
		return false
	}
	if r.PathNamespace != "" && r.PathNamespace != "/" && s.Path != r.PathNamespace && !strings.HasPrefix(s.Path, r.PathNamespace+"/") {
		return false
	}
	if r.Interface != "" && s.Interface != r.Interface {
		return false
	}
	if r.Member != "" && s.Member != r.Member {
		return false
	}
	for i, a := range r.Args {
		if a == nil {
			continue
		}
		if i >= len(s.Args) {
			return false
		}
		v, ok := s.Args[i].(string)
		if !ok || v != *a {
			return false
		}
	}
	if r.Arg0Path != "" {
		if len(s.Args) == 0 {
			return false
		}
		var v string
		switch a := s.Args[0].(type) {
		case string:
			v = a
		default:
			if p, ok := argText(a); ok {
				v = p
			}
		}
		if !pathPrefixMatch(r.Arg0Path, v) {
			return false
		}
	}
	return true
}

// pathPrefixMatch is the spec's argNpath: equal, or one is a prefix of the
// other ending in "/".
func pathPrefixMatch(rule, v string) bool {
	if rule == v {
		return true
	}
	if strings.HasSuffix(rule, "/") && strings.HasPrefix(v, rule) {
		return true
	}
	return strings.HasSuffix(v, "/") && strings.HasPrefix(rule, v)
}

package udev

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/airlockhq/airlock/host/manifest"
)

// Rule is one [[trigger.udev]] table: an event matches when every key that
// the table sets matches, like the match keys of one udev rule line.
type Rule struct {
	Actions   []string // empty: any action
	Subsystem string   // exact; "" is any
	DevType   string   // exact; "" is any
	Kernel    *glob    // the kernel name (KERNEL==), nil is any
	Props     []propMatch
}

// propMatch is one ENV{KEY}=="glob" of a rule. An absent property reads
// as "", so "?*" requires a property to be set.
type propMatch struct {
	key string
	g   *glob
}

// Rules is what DecodeTrigger returns: one plugin's rules, in file order.
type Rules []Rule

// ruleTOML is the table as written. action is a string or a list.
type ruleTOML struct {
	Action     any               `toml:"action"`
	Subsystem  string            `toml:"subsystem"`
	DevType    string            `toml:"devtype"`
	Kernel     string            `toml:"kernel"`
	Properties map[string]string `toml:"properties"`
}

var errBadRules = errors.New("bad [[trigger.udev]] rules")

// decodeRules decodes [[trigger.udev]] strictly: every problem is recorded
// on s, positioned, and errBadRules is returned if there was any.
// MaxRules bounds one plugin's [[trigger.udev]] rules: the router matches
// each uevent against the rules of every plugin, under the lock that
// orders events, so a plugin with thousands would slow every other
// plugin's device events.
const MaxRules = 256

func decodeRules(s manifest.Section) (Rules, error) {
	var raw []ruleTOML
	if !s.Decode(&raw) {
		return nil, errBadRules
	}
	ok := true
	bad := func(i int, key, hint, format string, args ...any) {
		ok = false
		msg := fmt.Sprintf(format, args...)
		if len(raw) > 1 {
			msg = fmt.Sprintf("rule %d: %s", i+1, msg)
		}
		s.Errorf(key, hint, "%s", msg)
	}
	if len(raw) > MaxRules {
		// Every uevent is matched against every plugin's rules.
		s.Errorf("", fmt.Sprintf("use at most %d rules; one rule matches many devices through globs and action lists", MaxRules), "%d [[trigger.udev]] rules", len(raw))
		return nil, errBadRules
	}
	rules := make(Rules, 0, len(raw))
	for i, t := range raw {
		var r Rule
		acts, err := actionList(t.Action)
		if err != nil {
			bad(i, "action", `write one action, action = "add", or a list, action = ["add", "remove"]`, "%v", err)
		}
		for _, a := range acts {
			if !slices.Contains(actions, a) {
				hint := "the kernel's actions are " + strings.Join(actions, ", ")
				if s := closest(a, actions); s != "" {
					hint = fmt.Sprintf("did you mean %q? ", s) + hint
				}
				bad(i, "action", hint, "unknown action %q", a)
			} else if !slices.Contains(r.Actions, a) {
				r.Actions = append(r.Actions, a)
			}
		}
		for _, f := range []struct{ key, v string }{{"subsystem", t.Subsystem}, {"devtype", t.DevType}} {
			if strings.ContainsAny(f.v, `*?[]|\`) {
				bad(i, f.key, "name it exactly, such as \"block\"; globs are for kernel and properties", "%q is a glob", f.v)
			}
		}
		r.Subsystem, r.DevType = t.Subsystem, t.DevType
		if t.Kernel != "" {
			if r.Kernel, err = compileGlob(t.Kernel); err != nil {
				bad(i, "kernel", `fix the glob: * any text, ? one character, [a-z] a class, a|b either`, "bad glob %q: %v", t.Kernel, err)
			}
		}
		keys := make([]string, 0, len(t.Properties))
		for k := range t.Properties {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !validPropName(k) {
				bad(i, "properties."+k, "property names are udev's, such as ID_FS_LABEL: letters, digits and _", "bad property name %q", k)
				continue
			}
			g, err := compileGlob(t.Properties[k])
			if err != nil {
				bad(i, "properties."+k, `fix the glob: * any text, ? one character, [a-z] a class, a|b either`, "bad glob %q: %v", t.Properties[k], err)
				continue
			}
			r.Props = append(r.Props, propMatch{k, g})
		}
		rules = append(rules, r)
	}
	if !ok {
		return nil, errBadRules
	}
	return rules, nil
}

// actionList accepts action as a string or a list of strings.
func actionList(v any) ([]string, error) {
	switch a := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{a}, nil
	case []any:
		out := make([]string, 0, len(a))
		for _, e := range a {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("action list holds %s, not a string", tomlType(e))
			}
			out = append(out, s)
		}
		if len(out) == 0 {
			return nil, errors.New("empty action list matches nothing")
		}
		return out, nil
	}
	return nil, fmt.Errorf("action is %s, not a string or a list", tomlType(v))
}

func tomlType(v any) string {
	switch v.(type) {
	case int64:
		return "an integer"
	case float64:
		return "a number"
	case bool:
		return "true or false"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("a %T", v)
}

func validPropName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// closest returns the candidate within two edits of s, for "did you mean".
func closest(s string, candidates []string) string {
	if c := manifest.Suggest(s, candidates); c != "" && manifest.EditDistance(s, c) <= 2 {
		return c
	}
	return ""
}

// matchRest reports whether e matches the rule's keys other than action
// and subsystem, which the router's index has already checked.
func (r *Rule) matchRest(e *UEvent) bool {
	if !r.matchKeys(e) {
		return false
	}
	for i := range r.Props {
		if !r.Props[i].g.match(e.Get(r.Props[i].key)) {
			return false
		}
	}
	return true
}

// matchKeys checks devtype and kernel: what is known before probing.
func (r *Rule) matchKeys(e *UEvent) bool {
	if r.DevType != "" && r.DevType != e.DevType {
		return false
	}
	return r.Kernel == nil || r.Kernel.match(e.Kernel())
}

// wantsAdd reports whether the rule can match an add, the only action that
// coldplug synthesises.
func (r *Rule) wantsAdd() bool { return len(r.Actions) == 0 || slices.Contains(r.Actions, "add") }

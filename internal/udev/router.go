package udev

import (
	"sort"
)

// Router matches an event against every plugin's rules once. Rules are
// indexed by (subsystem, action), with "" for a rule that leaves either
// open, so an event looks at four buckets and only at rules that can match;
// with 100 plugins on different subsystems, a tty event costs four map
// lookups. A Router is immutable once built: the capability swaps in a new
// one when a plugin subscribes.
type Router struct {
	plugins []string // sorted; an entry's plugin is an index here
	rules   [][]Rule // by plugin index
	buckets map[bucketKey][]entry
	// subsystems are those that rules accepting "add" name, for coldplug;
	// anySubsystem is set when such a rule names none.
	subsystems   map[string]bool
	anySubsystem bool
}

type bucketKey struct{ subsystem, action string }

type entry struct {
	plugin int
	rule   *Rule
}

// NewRouter indexes the rules of each plugin. Plugins without rules are
// left out.
func NewRouter(rules map[string]Rules) *Router {
	r := &Router{buckets: map[bucketKey][]entry{}, subsystems: map[string]bool{}}
	for p, rs := range rules {
		if len(rs) > 0 {
			r.plugins = append(r.plugins, p)
		}
	}
	sort.Strings(r.plugins)
	for i, p := range r.plugins {
		rs := append([]Rule(nil), rules[p]...)
		r.rules = append(r.rules, rs)
		for j := range rs {
			rule := &rs[j]
			acts := rule.Actions
			if len(acts) == 0 {
				acts = []string{""}
			}
			for _, a := range acts {
				k := bucketKey{rule.Subsystem, a}
				r.buckets[k] = append(r.buckets[k], entry{i, rule})
			}
			if rule.wantsAdd() {
				if rule.Subsystem == "" {
					r.anySubsystem = true
				} else {
					r.subsystems[rule.Subsystem] = true
				}
			}
		}
	}
	return r
}

// Empty reports whether no plugin has a rule.
func (r *Router) Empty() bool { return len(r.plugins) == 0 }

// Plugins returns the subscribed plugins' names, sorted.
func (r *Router) Plugins() []string { return r.plugins }

func (r *Router) lookup(e *UEvent) [4][]entry {
	return [4][]entry{
		r.buckets[bucketKey{e.Subsystem, e.Action}],
		r.buckets[bucketKey{e.Subsystem, ""}],
		r.buckets[bucketKey{"", e.Action}],
		r.buckets[bucketKey{"", ""}],
	}
}

// Candidate reports whether some rule could match e once its properties
// are known. The capability probes a block device only then, so that a
// rule for USB partitions does not make the host open the boot disk.
func (r *Router) Candidate(e *UEvent) bool {
	for _, b := range r.lookup(e) {
		for _, en := range b {
			if en.rule.matchKeys(e) {
				return true
			}
		}
	}
	return false
}

// Match appends to dst the indices of the plugins with a rule that matches
// e, each once, in plugin order, and returns it. seen is scratch space of
// at least len(Plugins()) bools, all false, left all false again; it lets
// the caller match without allocating.
func (r *Router) Match(e *UEvent, dst []int, seen []bool) []int {
	start := len(dst)
	for _, b := range r.lookup(e) {
		for _, en := range b {
			if seen[en.plugin] || !en.rule.matchRest(e) {
				continue
			}
			seen[en.plugin] = true
			dst = append(dst, en.plugin)
		}
	}
	for _, p := range dst[start:] {
		seen[p] = false
	}
	if len(dst)-start > 1 {
		sort.Ints(dst[start:])
	}
	return dst
}

// MatchPlugin reports whether one of plugin i's rules matches e.
func (r *Router) MatchPlugin(i int, e *UEvent) bool {
	for j := range r.rules[i] {
		rule := &r.rules[i][j]
		if rule.Subsystem != "" && rule.Subsystem != e.Subsystem {
			continue
		}
		if len(rule.Actions) > 0 && !contains(rule.Actions, e.Action) {
			continue
		}
		if rule.matchRest(e) {
			return true
		}
	}
	return false
}

// Index returns the index of a plugin, or -1.
func (r *Router) Index(plugin string) int {
	i := sort.SearchStrings(r.plugins, plugin)
	if i < len(r.plugins) && r.plugins[i] == plugin {
		return i
	}
	return -1
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

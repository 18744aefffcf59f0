package mount

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Within reports whether every [[mount]] rule of g fits inside one rule
// of ceiling (a *Grant decoded from [trust.vendor.ceiling] [[mount]]
// tables): each source inside one of its sources, each fstype among its
// fstypes, each option granted by it. The media root's name is not a
// power and is not compared.
func (g *Grant) Within(ceiling any) (bool, []string) {
	c, ok := ceiling.(*Grant)
	if !ok {
		return false, []string{fmt.Sprintf("the ceiling is a %T, not a mount grant", ceiling)}
	}
	var excess []string
	for i, r := range g.Rules {
		var items []string
		fits := false
		for _, cr := range c.Rules {
			if len(r.outside(&cr)) == 0 {
				fits = true
				break
			}
		}
		if fits {
			continue
		}
		// Name what no ceiling rule grants; if each part fits somewhere
		// but no rule holds them all, say that.
		for _, x := range r.outside(&Rule{Sources: allOf(c, func(r Rule) []string { return r.Sources }), FSTypes: allOf(c, func(r Rule) []string { return r.FSTypes }), Options: allOf(c, func(r Rule) []string { return r.Options })}) {
			items = append(items, fmt.Sprintf("rule %d: %s is outside the ceiling", i+1, x))
		}
		if len(items) == 0 {
			items = append(items, fmt.Sprintf("rule %d: no single ceiling rule grants its sources, fstypes and options together", i+1))
		}
		excess = append(excess, items...)
	}
	excess = append(excess, g.acceptsOutside(c)...)
	return len(excess) == 0, excess
}

func allOf(g *Grant, f func(Rule) []string) []string {
	var out []string
	for _, r := range g.Rules {
		out = append(out, f(r)...)
	}
	return out
}

// outside lists what r grants beyond c.
func (r *Rule) outside(c *Rule) []string {
	var out []string
	for _, s := range r.Sources {
		if !slices.ContainsFunc(c.Sources, func(cs string) bool { return sourceCovers(cs, s) }) {
			out = append(out, fmt.Sprintf("source %q", s))
		}
	}
	for _, fs := range r.FSTypes {
		if !slices.Contains(c.FSTypes, fs) {
			out = append(out, fmt.Sprintf("fstype %q", fs))
		}
	}
	for _, o := range r.Options {
		if !slices.ContainsFunc(c.Options, func(co string) bool { return optionCovers(co, o) }) {
			out = append(out, fmt.Sprintf("option %q", o))
		}
	}
	return out
}

// sourceCovers reports whether every device the pattern s matches, the
// ceiling pattern c matches too. It compares "/"-separated segments: a
// literal segment must match c's glob; a segment that is itself a glob is
// covered only by an equal segment or by "*".
func sourceCovers(c, s string) bool {
	ck, cp, _ := strings.Cut(c, ":")
	sk, sp, _ := strings.Cut(s, ":")
	if ck != sk {
		return false
	}
	cs, ss := strings.Split(cp, "/"), strings.Split(sp, "/")
	if len(cs) != len(ss) {
		return false
	}
	for i := range cs {
		if strings.ContainsAny(ss[i], `*?[\`) {
			if cs[i] != ss[i] && cs[i] != "*" {
				return false
			}
			continue
		}
		if ok, _ := path.Match(cs[i], ss[i]); !ok {
			return false
		}
	}
	return true
}

// optionCovers: "uid=" (any value) is covered only by "uid="; "uid=1000"
// by "uid=" or "uid=1000"; a flag by itself.
func optionCovers(c, o string) bool {
	if c == o {
		return true
	}
	ck, cv, cHas := strings.Cut(c, "=")
	ok, _, oHas := strings.Cut(o, "=")
	return cHas && oHas && cv == "" && ck == ok
}

// Describe says in plain words what g lets the plugin mount.
func (g *Grant) Describe() []string {
	var out []string
	for _, r := range g.Rules {
		srcs := make([]string, len(r.Sources))
		for i, s := range r.Sources {
			kind, pat, _ := strings.Cut(s, ":")
			switch kind {
			case "label":
				srcs[i] = "labelled " + pat
			case "uuid":
				srcs[i] = "with UUID " + pat
			case "partlabel":
				srcs[i] = "in a partition named " + pat
			case "partuuid":
				srcs[i] = "in a partition with PARTUUID " + pat
			default:
				srcs[i] = "at " + pat
			}
		}
		s := fmt.Sprintf("may mount devices %s (%s) under %s, always nosuid, nodev and noexec", strings.Join(srcs, " or "), strings.Join(r.FSTypes, ", "), g.Target)
		if len(r.Options) > 0 {
			s += ", with the options " + strings.Join(r.Options, ", ") + " if it asks"
		}
		out = append(out, s)
	}
	return append(out, g.describeAccepts()...)
}

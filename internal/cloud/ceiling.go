package cloud

import (
	"fmt"
	"sort"
	"strings"
)

// List returns the grant's entries in allow-list spelling, sorted.
func (g *Grant) List() []string {
	var out []string
	for op := range g.ops {
		out = append(out, op)
	}
	for op, keys := range g.keys {
		for k := range keys {
			out = append(out, op+":"+k)
		}
	}
	sort.Strings(out)
	return out
}

// Within reports whether every entry of g is also granted by ceiling (a
// *Grant decoded from runtime.toml's [trust.vendor.ceiling.cloud]), and
// lists those that are not. "tags.set:k" fits under "tags.set:k" or
// "tags.set:*"; "tags.set:*" only under "tags.set:*".
func (g *Grant) Within(ceiling any) (bool, []string) {
	c, ok := ceiling.(*Grant)
	if !ok || c == nil {
		return false, []string{fmt.Sprintf("the ceiling is a %T, not a cloud grant", ceiling)}
	}
	var excess []string
	for _, entry := range g.List() {
		op, key, perKey := strings.Cut(entry, ":")
		switch {
		case !perKey && c.ops[op]:
		case perKey && c.keys[op][AnyKey]:
		case perKey && key != AnyKey && c.keys[op][key]:
		default:
			excess = append(excess, fmt.Sprintf("%q is outside the ceiling [%s]", entry, strings.Join(c.List(), ", ")))
		}
	}
	return len(excess) == 0, excess
}

var docs = map[string]string{
	OpDeviceRead: "read this device's uuid and name",
	OpNameSet:    "rename this device",
	OpTagsRead:   "read this device's tags",
	OpTagSet:     "set this device's tag %s",
	OpTagDelete:  "delete this device's tag %s",
	OpEnvRead:    "read this device's and its fleet's environment variables",
	OpConfigRead: "read this device's and its fleet's configuration variables",
	OpFleetRead:  "read its fleet's id, name, slug, device type and visibility",
}

// Describe says in plain words what g allows, one line per entry.
func (g *Grant) Describe() []string {
	var out []string
	for _, entry := range g.List() {
		op, key, perKey := strings.Cut(entry, ":")
		doc := docs[op]
		if perKey {
			target := fmt.Sprintf("%q", key)
			if key == AnyKey {
				target = "(any key)"
			}
			doc = fmt.Sprintf(doc, target)
		}
		out = append(out, "may "+doc+" in the balena cloud")
	}
	return out
}

package supervisor

import (
	"fmt"
	"strings"
)

// Within reports whether every operation g grants is also granted by
// ceiling (a Grant decoded from runtime.toml's [trust.vendor.ceiling.
// supervisor]), and lists those that are not, in allow-list spelling. A
// per-service entry fits under the same operation for that service or
// for "*"; "op:*" fits only under "op:*".
func (g Grant) Within(ceiling any) (bool, []string) {
	c, ok := ceiling.(Grant)
	if !ok {
		return false, []string{fmt.Sprintf("the ceiling is a %T, not a supervisor grant", ceiling)}
	}
	var excess []string
	for _, entry := range g.List() {
		op, service, scoped := strings.Cut(entry, ":")
		switch {
		case !scoped && c.ops[op]:
		case scoped && c.services[op][AnyService]:
		case scoped && service != AnyService && c.services[op][service]:
		default:
			excess = append(excess, fmt.Sprintf("%q is outside the ceiling %s", entry, c))
		}
	}
	return len(excess) == 0, excess
}

// Describe says in plain words what g allows, one line per entry, from
// the operations' docs: "may reboot the device ... through the supervisor".
func (g Grant) Describe() []string {
	var out []string
	for _, entry := range g.List() {
		name, service, scoped := strings.Cut(entry, ":")
		op, _ := LookupOp(name)
		doc := op.Doc
		if scoped {
			target := "the service " + service
			if service == AnyService {
				target = "any service of the app"
			}
			doc = strings.Replace(doc, "the named service", target, 1)
		}
		out = append(out, "may "+doc+" through the supervisor")
	}
	return out
}

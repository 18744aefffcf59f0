package bundle

import (
	"fmt"
	"strings"

	"github.com/airlockhq/airlock/host/manifest"
)

// Describer is a grant or a set of trigger rules that says in plain words
// what it lets a plugin do, one sentence per power, each starting "may" or
// "is woken by". Capabilities implement it on their grant and rule types,
// so that airlock inspect never needs a word written per plugin.
type Describer interface {
	Describe() []string
}

// Describe lists in plain words what m is granted and what wakes it.
func Describe(m *manifest.Manifest) []string {
	var out []string
	for _, name := range sortedKeys(m.Grants) {
		out = append(out, describeOne(name, m.Grants[name])...)
	}
	if m.Data {
		out = append(out, "may keep files in its own persistent /data directory")
	}
	if len(m.EnvAllow) > 0 {
		out = append(out, "may read the environment variables "+strings.Join(m.EnvAllow, ", "))
	}
	for _, t := range m.Timers {
		if t.Cron != "" {
			out = append(out, fmt.Sprintf("is woken on the schedule %q (timer %s)", t.Cron, t.Name))
		} else {
			out = append(out, fmt.Sprintf("is woken every %s (timer %s)", t.Every, t.Name))
		}
	}
	for _, kind := range sortedKeys(m.Triggers) {
		out = append(out, describeOne("trigger."+kind, m.Triggers[kind])...)
	}
	if len(out) == 0 {
		out = append(out, "may do nothing beyond logging, reading its own config and the clock")
	}
	return out
}

func describeOne(name string, v any) []string {
	if d, ok := v.(Describer); ok {
		return d.Describe()
	}
	return []string{fmt.Sprintf("is granted [%s] (this airlock cannot say more about it)", name)}
}

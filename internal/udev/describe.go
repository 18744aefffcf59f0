package udev

import (
	"fmt"
	"strings"
)

// Describe says in plain words which device events wake the plugin: "is
// woken by block partitions being added or removed (ID_BUS is usb)".
func (rs Rules) Describe() []string {
	var out []string
	for _, r := range rs {
		what := "devices"
		switch {
		case r.Subsystem != "" && r.DevType != "":
			what = r.Subsystem + " " + r.DevType + "s"
		case r.Subsystem != "":
			what = r.Subsystem + " devices"
		case r.DevType != "":
			what = r.DevType + "s"
		}
		s := "is woken by " + what
		if len(r.Actions) == 0 {
			s += " changing in any way"
		} else {
			verbs := make([]string, len(r.Actions))
			for i, a := range r.Actions {
				verbs[i] = actionWords[a]
				if verbs[i] == "" {
					verbs[i] = "getting " + a + " events"
				}
			}
			s += " being " + strings.Join(verbs, " or ")
		}
		var where []string
		if r.Kernel != nil {
			where = append(where, fmt.Sprintf("named %s", r.Kernel))
		}
		for _, p := range r.Props {
			where = append(where, fmt.Sprintf("%s is %s", p.key, p.g))
		}
		if len(where) > 0 {
			s += " (" + strings.Join(where, ", ") + ")"
		}
		out = append(out, s)
	}
	return out
}

var actionWords = map[string]string{
	"add": "added", "remove": "removed", "change": "changed", "move": "renamed",
	"online": "brought online", "offline": "taken offline", "bind": "bound to a driver", "unbind": "unbound from a driver",
}

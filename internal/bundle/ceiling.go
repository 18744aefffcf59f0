package bundle

import (
	"fmt"
	"slices"
	"strings"

	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/manifest"
)

// CeilingError is a manifest that asks for more than its vendor's ceiling.
type CeilingError struct {
	Plugin, Vendor string
	Excess         []string // one line per thing outside the ceiling
}

func (e *CeilingError) Error() string {
	return fmt.Sprintf("plugin %q asks for more than vendor %q may be granted (its [trust.vendor] ceiling in runtime.toml):\n  - %s\n(ask the vendor for a plugin that needs less, or raise the vendor's ceiling if you trust it with this)",
		e.Plugin, e.Vendor, strings.Join(e.Excess, "\n  - "))
}

// CheckCeiling holds m to v's ceiling: every capability grant, trigger
// kind, environment variable and /data.
func CheckCeiling(m *manifest.Manifest, v *manifest.Vendor) error {
	c := v.Ceiling
	var excess []string
	for _, name := range sortedKeys(m.Grants) {
		ceil, ok := c.Grants[name]
		if !ok {
			excess = append(excess, fmt.Sprintf("%s: the vendor's ceiling grants no %s at all", name, name))
			continue
		}
		if b, ok := m.Grants[name].(capability.Bounded); ok {
			if within, more := b.Within(ceil); !within {
				for _, x := range more {
					excess = append(excess, name+": "+x)
				}
			}
		}
	}
	for _, kind := range sortedKeys(m.Triggers) {
		if !slices.Contains(c.Triggers, kind) {
			excess = append(excess, fmt.Sprintf("trigger.%s: the vendor's ceiling allows no %s triggers (triggers = %s)", kind, kind, quoted(c.Triggers)))
			continue
		}
		if b, ok := m.Triggers[kind].(capability.Bounded); ok {
			if ceil, ok := c.Grants[kind]; ok {
				if within, more := b.Within(ceil); !within {
					for _, x := range more {
						excess = append(excess, "trigger."+kind+": "+x)
					}
				}
			}
		}
	}
	for _, e := range m.EnvAllow {
		if !envWithin(e, c.Env) {
			excess = append(excess, fmt.Sprintf("env: %s is outside the vendor's ceiling (env = %s)", e, quoted(c.Env)))
		}
	}
	if m.Data && !c.Data {
		excess = append(excess, "storage: /data is outside the vendor's ceiling (data = false)")
	}
	if len(excess) == 0 {
		return nil
	}
	return &CeilingError{Plugin: m.Name, Vendor: v.Name, Excess: excess}
}

// envWithin reports whether the env.allow entry e (a name, or a prefix
// ending in *) selects only variables that some ceiling entry selects.
func envWithin(e string, ceiling []string) bool {
	for _, c := range ceiling {
		if prefix, ok := strings.CutSuffix(c, "*"); ok {
			if strings.HasPrefix(strings.TrimSuffix(e, "*"), prefix) {
				return true
			}
		} else if c == e {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func quoted(ss []string) string {
	if len(ss) == 0 {
		return "[]"
	}
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

package plugin

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/host/manifest"
)

// envChoice is one variable of the host's environment that the manifest's
// env.allow selects, and whether it reaches the plugin.
type envChoice struct {
	name, value string
	refused     string // why not; "" if it passes
}

// hostSecrets returns the variables that hold the host's secrets, each with
// where the host knows it from: the names every balena device uses, each
// capability's (SecretHolder) and runtime.toml's [env] secrets.
func hostSecrets(rt *manifest.Runtime, caps []capability.Capability) map[string]string {
	held := map[string]string{}
	for _, n := range manifest.HostSecretEnv {
		held[n] = "a balena API key"
	}
	for _, c := range caps {
		if s, ok := c.(capability.SecretHolder); ok {
			for _, n := range s.SecretEnv() {
				held[n] = "the key the " + c.Name() + " capability uses"
			}
		}
	}
	if rt != nil {
		for _, n := range rt.Env.Secrets {
			held[n] = "named in runtime.toml's [env] secrets"
		}
	}
	return held
}

// chooseEnv decides, for each variable of environ that m's env.allow names
// (exactly, or by a prefix ending in "*"), whether it reaches the plugin:
//  1. a host secret never does (held: name -> where it is known from);
//  2. nor a variable whose value is a host secret's, or holds one of 8
//     bytes or more;
//  3. a secret-looking one (manifest.SecretLooking) only when env.allow
//     names it exactly, runtime.toml's [env] pass lists it, and the plugin
//     is not a vendor's bundle;
//  4. any other does.
func chooseEnv(environ []string, m *manifest.Manifest, pass []string, held map[string]string) []envChoice {
	type secret struct{ name, value string }
	var values []secret
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && v != "" && held[k] != "" {
			values = append(values, secret{k, v})
		}
	}
	var out []envChoice
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		exact, named := false, false
		for _, a := range m.EnvAllow {
			if a == k {
				exact, named = true, true
				break
			}
			if strings.HasSuffix(a, "*") && strings.HasPrefix(k, a[:len(a)-1]) {
				named = true
			}
		}
		if !named {
			continue
		}
		c := envChoice{name: k, value: v}
		if from := held[k]; from != "" {
			c.refused = fmt.Sprintf("%s holds a host secret (%s); host secrets never reach a plugin", k, from)
		}
		for _, s := range values {
			if c.refused == "" && s.name != k && (v == s.value || len(s.value) >= 8 && strings.Contains(v, s.value)) {
				c.refused = fmt.Sprintf("%s's value holds the host secret in %s; host secrets never reach a plugin", k, s.name)
			}
		}
		if why := manifest.SecretLooking(k, v); c.refused == "" && why != "" {
			switch {
			case !exact:
				c.refused = fmt.Sprintf("%s looks like a secret (%s): a pattern in env.allow never selects one; name it exactly, and the operator must list it in runtime.toml's [env] pass", k, why)
			case m.Vendor != "":
				c.refused = fmt.Sprintf("%s looks like a secret (%s): a vendor's bundle never reads one", k, why)
			case !slices.Contains(pass, k):
				c.refused = fmt.Sprintf("%s looks like a secret (%s): it reaches a plugin only when runtime.toml's [env] pass lists it", k, why)
			}
		}
		out = append(out, c)
	}
	return out
}

// environ returns the variables that reach the plugin, and audits each
// variable its env.allow selected, allowed or refused, with the reason.
func (p *Plugin) environ(ctx context.Context) []envChoice {
	environ := p.opts.Environ
	if environ == nil {
		environ = os.Environ()
	}
	var pass []string
	if p.opts.Runtime != nil {
		pass = p.opts.Runtime.Env.Pass
	}
	var out []envChoice
	for _, c := range chooseEnv(environ, p.M, pass, hostSecrets(p.opts.Runtime, p.opts.Capabilities)) {
		d := gate.Allow("env.allow selects it")
		if c.refused != "" {
			d = gate.Deny(c.refused)
			p.log.Warn("environment variable withheld", "variable", c.name, "reason", c.refused)
		} else {
			out = append(out, c)
		}
		if p.opts.Gate != nil {
			p.opts.Gate.Check(ctx, p.M.Name, "env", "read "+c.name, d)
		}
	}
	return out
}

// Package httpout is the outbound HTTP(S) capability: the [[http.request]]
// grant, the airlock_http_v1 host functions, the address rules that run in
// the dialer after DNS resolution, and the host-held secrets that grants
// attach to requests. The plugin never holds a socket or a secret.
package httpout

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"sync"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/secret"
)

// Name is the manifest and runtime.toml section, and the audit name.
const Name = "http"

// Options configure a Capability. The zero value is what the airlock binary
// uses.
type Options struct {
	// Getenv reads secrets and the supervisor's address; nil means
	// os.Getenv.
	Getenv func(string) string
	// Resolver resolves host names; nil means the system's. Tests pass one
	// that asks their own name server.
	Resolver *net.Resolver
}

// Capability is the "http" capability. Create it with New; its life is
// DecodeConfig, Provision, DecodeGrant per plugin, Functions, Close.
type Capability struct {
	opts Options

	// Set by Provision and read-only after it.
	cfg         Config
	provisioned bool
	roots       *x509.CertPool
	secrets     map[string]string // name → value
	secretErr   map[string]string // name → why it is unavailable (no value in it)
	forbidden   map[netip.AddrPort]string
	sim         *echoServer
	simHosts    map[string]string // on the simulated device: host:port → the echo service's address
	log         *slog.Logger

	// bodies are the open response bodies, by plugin. Guarded by mu: a
	// plugin's goroutine opens and reads its own, InstanceEnded and Close
	// come from elsewhere.
	mu     sync.Mutex
	bodies map[string]*bodySet
}

// New returns the capability, unprovisioned.
func New(o Options) *Capability {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	return &Capability{opts: o, cfg: DefaultConfig(), log: slog.New(slog.DiscardHandler), bodies: map[string]*bodySet{}}
}

var (
	_ capability.Capability    = (*Capability)(nil)
	_ capability.Configurer    = (*Capability)(nil)
	_ capability.Provisioner   = (*Capability)(nil)
	_ capability.Closer        = (*Capability)(nil)
	_ capability.SecretHolder  = (*Capability)(nil)
	_ capability.InstanceEnder = (*Capability)(nil)
)

func (c *Capability) Name() string   { return Name }
func (c *Capability) Module() string { return abi.ModuleHTTP }

// DecodeConfig decodes runtime.toml's [http].
func (c *Capability) DecodeConfig(s manifest.Section) (any, error) { return decodeConfig(s) }

// DecodeGrant decodes plugin.toml's [http]. Once provisioned, a header that
// names a secret runtime.toml does not declare is an error at load.
func (c *Capability) DecodeGrant(s manifest.Section) (any, error) {
	var known func(string) bool
	if c.provisioned {
		known = func(n string) bool { _, ok := c.cfg.Secrets[n]; return ok }
	}
	return decodeGrant(s, known)
}

// SecretEnv names the variables secrets are read from, so that no plugin's
// env.allow reaches them.
func (c *Capability) SecretEnv() []string {
	var names []string
	for _, s := range c.cfg.Secrets {
		if s.Env != "" {
			names = append(names, s.Env)
		}
	}
	slices.Sort(names)
	return names
}

// Provision loads the CA file and the secrets, finds the supervisor's
// address, and on the simulated device starts the echo service. A secret
// that cannot be read does not stop the host: requests that need it fail
// with abi.Unavailable, and the log says why.
func (c *Capability) Provision(ctx context.Context, env capability.Env) error {
	if env.Logger != nil {
		c.log = env.Logger
	}
	if cfg, ok := env.Config.(*Config); ok && cfg != nil {
		c.cfg = *cfg
	}
	roots, err := LoadRoots(c.cfg.CAFile)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	c.roots = roots
	c.secrets, c.secretErr = map[string]string{}, map[string]string{}
	for _, name := range sortedKeys(c.cfg.Secrets) {
		src := c.cfg.Secrets[name]
		stateDir := ""
		if env.Runtime != nil {
			stateDir = env.Runtime.StateDir
		}
		v, err := secret.Load(name, src, c.opts.Getenv, stateDir)
		if err != nil && env.Sim {
			// The simulated device has no secrets of its own: a made-up
			// one shows the path, and where it would come from.
			v, err = simSecret(), nil
			c.log.Info("http secret made up for the simulated device", "secret", name, "source", c.cfg.Secrets[name].String())
		}
		if err != nil {
			c.secretErr[name] = err.Error()
			c.log.Warn("http secret unavailable; requests that need it will fail", "error", err.Error())
			continue
		}
		c.secrets[name] = v
	}
	c.forbidden = map[netip.AddrPort]string{}
	if addr := supervisorAddress(c.opts.Getenv); addr != "" {
		for _, ap := range resolveForbidden(ctx, addr, c.opts.Resolver) {
			c.forbidden[ap] = "the supervisor's address"
		}
	}
	if env.Sim {
		if err := c.startSim(); err != nil {
			c.log.Warn("simulated HTTP echo service not started", "error", err.Error())
		}
	}
	c.provisioned = true
	return nil
}

// supervisorAddress is the host:port of BALENA_SUPERVISOR_ADDRESS (or its
// HOST and PORT pair, or the RESIN_ twins), or "".
func supervisorAddress(getenv func(string) string) string {
	for _, prefix := range []string{"BALENA_", "RESIN_"} {
		if a := getenv(prefix + "SUPERVISOR_ADDRESS"); a != "" {
			if u, err := url.Parse(a); err == nil && u.Host != "" {
				if u.Port() == "" {
					if u.Scheme == "https" {
						return net.JoinHostPort(u.Hostname(), "443")
					}
					return net.JoinHostPort(u.Hostname(), "80")
				}
				return u.Host
			}
		}
		if h, p := getenv(prefix+"SUPERVISOR_HOST"), getenv(prefix+"SUPERVISOR_PORT"); h != "" && p != "" {
			return net.JoinHostPort(h, p)
		}
	}
	return ""
}

// InstanceEnded closes the bodies an ended instance left open.
func (c *Capability) InstanceEnded(plugin string) {
	c.mu.Lock()
	set := c.bodies[plugin]
	delete(c.bodies, plugin)
	c.mu.Unlock()
	set.closeAll()
}

// Close closes every open body and stops the echo service.
func (c *Capability) Close() error {
	c.mu.Lock()
	sets := c.bodies
	c.bodies = map[string]*bodySet{}
	c.mu.Unlock()
	for _, s := range sets {
		s.closeAll()
	}
	if c.sim != nil {
		c.sim.close()
	}
	return nil
}

// SimURL is the simulated device's echo service, as plugins reach it
// ("http://echo.sim.airlock"), or "" when it is not running.
func (c *Capability) SimURL() string {
	if c.sim == nil {
		return ""
	}
	return "http://" + SimHost
}

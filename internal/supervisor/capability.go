package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/simdevice/supsim"
)

// CapabilityName is the manifest section, the runtime.toml section and the
// audit name of the capability.
const CapabilityName = "supervisor"

// grant is the plugin's [supervisor] grant.
var grant = capability.GrantKey[Grant](CapabilityName)

// DefaultSimServices are the services of the simulated device's application.
var DefaultSimServices = []string{"main", "bluetooth-helper"}

// CapabilityOptions configure a Capability. The zero value is what the
// airlock binary uses.
type CapabilityOptions struct {
	// Getenv reads the environment for the supervisor's address and key;
	// nil means os.Getenv. Tests pass their own.
	Getenv func(string) string
	// Sim configures the simulated supervisor started on the simulated
	// device. Services defaults to DefaultSimServices; the logger is the
	// capability's.
	Sim supsim.Options
}

// Capability is the "supervisor" capability: the [supervisor] grant, the
// airlock_supervisor_v1 host functions, and the client (to the device's
// supervisor or to the simulator) that they call. Create it with
// NewCapability. Its life: DecodeConfig, Provision, DecodeGrant per plugin,
// Functions, Close.
type Capability struct {
	opts CapabilityOptions

	// Set by Provision and read-only after it, so that plugins' goroutines
	// may call host functions concurrently without a lock.
	client *Client
	key    string // for the last scrub of what a guest or a log may see
	keyEnv string // runtime.toml's api_key_env, "" for the default
	// notReady says why calls fail with abi.Unavailable when client is nil.
	notReady string
	sim      *supsim.Server
	log      *slog.Logger
}

// NewCapability returns the capability, unprovisioned: until Provision every
// call returns abi.Unavailable.
func NewCapability(o CapabilityOptions) *Capability {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	return &Capability{opts: o, notReady: "the supervisor capability was not provisioned", log: slog.New(slog.DiscardHandler)}
}

var (
	_ capability.Capability   = (*Capability)(nil)
	_ capability.Configurer   = (*Capability)(nil)
	_ capability.Provisioner  = (*Capability)(nil)
	_ capability.Closer       = (*Capability)(nil)
	_ capability.SecretHolder = (*Capability)(nil)
)

// SecretEnv names the variables the key may be read from: the balena
// defaults, and api_key_env's, so that no plugin reads them.
func (c *Capability) SecretEnv() []string {
	names := []string{DefaultAPIKeyEnv, "RESIN_SUPERVISOR_API_KEY"}
	if c.keyEnv != "" {
		names = append(names, c.keyEnv)
	}
	return names
}

func (*Capability) Name() string   { return CapabilityName }
func (*Capability) Module() string { return abi.ModuleSupervisor }

type grantTOML struct {
	Allow []string `toml:"allow"`
}

// DecodeGrant decodes plugin.toml's [supervisor] into a Grant. Each bad
// entry of allow is reported at its line, with a "did you mean".
func (*Capability) DecodeGrant(s manifest.Section) (any, error) {
	var t grantTOML
	if !s.Decode(&t) {
		return nil, errors.New("bad [supervisor] section")
	}
	bad := false
	for i, entry := range t.Allow {
		if _, err := ParseGrant([]string{entry}); err != nil {
			bad = true
			msg := strings.TrimPrefix(err.Error(), fmt.Sprintf("supervisor.allow[0] %q: ", entry))
			s.Errorf("allow", "known operations: "+opNames(), "entry %d %q: %s", i, entry, msg)
		}
	}
	if bad {
		return nil, errors.New("bad [supervisor] allow list")
	}
	return ParseGrant(t.Allow)
}

// DecodeConfig decodes runtime.toml's [supervisor] into a *RuntimeConfig.
func (*Capability) DecodeConfig(s manifest.Section) (any, error) { return decodeRuntime(s) }

// Provision starts the simulator on the simulated device, or builds the
// client from the environment and runtime.toml on a real one. A supervisor
// that is not configured does not fail the host: the plugins' calls return
// abi.Unavailable with the reason, and the host says so once in its log.
func (c *Capability) Provision(_ context.Context, env capability.Env) error {
	if env.Logger != nil {
		c.log = env.Logger
	}
	var rc RuntimeConfig
	if p, ok := env.Config.(*RuntimeConfig); ok && p != nil {
		rc = *p
	}
	c.keyEnv = rc.APIKeyEnv
	cfg := Config{Timeout: rc.Timeout, Retries: rc.Retries, Logger: c.log}
	if env.Sim {
		so := c.opts.Sim
		if so.Services == nil {
			so.Services = DefaultSimServices
		}
		if so.Logger == nil {
			so.Logger = c.log
		}
		c.sim = supsim.New(so)
		url, err := c.sim.Start("127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("starting the simulated supervisor: %w", err)
		}
		cfg.Address, cfg.APIKey, cfg.AppID = url, c.sim.APIKey(), c.sim.State().AppID
	} else {
		var why string
		cfg, why = c.resolve(rc, cfg)
		if why != "" {
			c.notReady = why
			c.log.Warn("no supervisor; plugins' supervisor calls will return unavailable", "reason", why)
			return nil
		}
	}
	cl, err := New(cfg)
	if err != nil {
		c.notReady = redact(err.Error(), cfg.APIKey)
		c.log.Warn("no supervisor; plugins' supervisor calls will return unavailable", "reason", c.notReady)
		return nil
	}
	c.client, c.key, c.notReady = cl, cfg.APIKey, ""
	c.log.Info("supervisor ready", "supervisor", cfg, "simulated", env.Sim)
	return nil
}

// resolve merges the environment with runtime.toml's overrides. It returns
// a reason when the result cannot reach a supervisor.
func (c *Capability) resolve(rc RuntimeConfig, base Config) (Config, string) {
	envCfg, err := ConfigFromEnv(c.opts.Getenv)
	if err != nil && !errors.Is(err, ErrNotConfigured) && rc.AppID == 0 {
		return base, err.Error() // a malformed BALENA_APP_ID; the message has no key
	}
	base.Address, base.APIKey, base.AppID = envCfg.Address, envCfg.APIKey, envCfg.AppID
	if rc.Address != "" {
		base.Address = rc.Address
	}
	if rc.AppID != 0 {
		base.AppID = rc.AppID
	}
	keyFrom := DefaultAPIKeyEnv
	if rc.APIKeyEnv != "" {
		keyFrom = rc.APIKeyEnv
		base.APIKey = c.opts.Getenv(rc.APIKeyEnv)
	}
	switch {
	case base.Address == "":
		return base, "no supervisor configured: BALENA_SUPERVISOR_ADDRESS is not set (give the service the io.balena.features.supervisor-api label, or set address in runtime.toml's [supervisor])"
	case base.APIKey == "":
		return base, fmt.Sprintf("no supervisor configured: %s is not set (the key is read from the environment variable that api_key_env in runtime.toml's [supervisor] names)", keyFrom)
	}
	return base, ""
}

// Sim returns the simulated supervisor, or nil on a real device. Tests and
// the scripted demo use it to watch and steer the device.
func (c *Capability) Sim() *supsim.Server { return c.sim }

// Close stops the simulator and drops idle connections. It is safe after a
// partial Provision and more than once.
func (c *Capability) Close() error {
	if c.sim != nil {
		c.sim.Close()
	}
	if c.client != nil {
		c.client.http.CloseIdleConnections()
	}
	return nil
}

func opNames() string {
	names := make([]string, len(Ops))
	for i, op := range Ops {
		names[i] = op.Name
		if op.PerService {
			names[i] += ":<" + op.Scope.Field + ">"
		}
	}
	return strings.Join(names, ", ")
}

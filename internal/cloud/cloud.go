// Package cloud is the "cloud" capability: a few typed operations on this
// device's record in the balena cloud (its name, tags, environment and
// config variables, its fleet's facts), made by the host with the key the
// platform injects (BALENA_API_KEY), which no plugin ever holds. Each
// operation is its own grant; the device is the one the host's environment
// names, never one a plugin names. README.md beside this file lists each
// request and the balena documentation it follows; the simulator in sim
// answers the same requests on the simulated device.
package cloud

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/cloud/sim"
)

// Name is the manifest section, the runtime.toml section and the audit name.
const Name = "cloud"

// FuncCall is airlock_cloud_v1's one function (ABI.md §3.5):
//
//	call(op_ptr, op_len, req_ptr, req_len, out_ptr, out_cap, out_len_ptr) -> errno
const FuncCall = "call"

// The environment the platform gives a service with the
// io.balena.features.balena-api label (and every service, for the device's
// uuid), as the balena-supervisor sets it.
const (
	EnvKey  = "BALENA_API_KEY"
	EnvURL  = "BALENA_API_URL"
	EnvUUID = "BALENA_DEVICE_UUID"
)

// Operations, as plugin.toml's [cloud] allow names them.
const (
	OpDeviceRead = "device.read" // -> uuid, name
	OpNameSet    = "name.set"    // name -> ()
	OpTagsRead   = "tags.read"   // -> one field per tag: key = value
	OpTagSet     = "tags.set"    // key, value -> (); granted per key
	OpTagDelete  = "tags.delete" // key -> deleted = "true"/"false"; per key
	OpEnvRead    = "env.read"    // [scope] -> one field per variable
	OpConfigRead = "config.read" // [scope] -> one field per variable
	OpFleetRead  = "fleet.read"  // -> id, name, slug, device_type, is_public
)

// ops lists every operation; perKey marks those granted per tag key.
var ops = []struct {
	name   string
	perKey bool
	fields []string
}{
	{OpDeviceRead, false, nil},
	{OpNameSet, false, []string{"name"}},
	{OpTagsRead, false, nil},
	{OpTagSet, true, []string{"key", "value"}},
	{OpTagDelete, true, []string{"key"}},
	{OpEnvRead, false, []string{"scope"}},
	{OpConfigRead, false, []string{"scope"}},
	{OpFleetRead, false, nil},
}

// AnyKey in a per-key grant ("tags.set:*") grants every tag key.
const AnyKey = "*"

// Scopes of env.read and config.read.
const (
	scopeDevice = "device"
	scopeFleet  = "fleet"
)

// Bounds on what a guest passes in. Names and keys travel in the API's
// URLs or bodies: they are short, printable and bounded.
const (
	maxOp      = 64
	maxRequest = 8 << 10
	MaxKey     = 100  // a tag key
	MaxName    = 128  // a device name
	MaxValue   = 1024 // a tag value
)

// DefaultTimeout bounds one HTTP request to the API.
const DefaultTimeout = 10 * time.Second

// Grant is a plugin's [cloud] grant: the operations it may call, and for the
// per-key ones, the tag keys.
type Grant struct {
	ops  map[string]bool
	keys map[string]map[string]bool
}

var grant = capability.GrantKey[*Grant](Name)

// Options configure the capability; the zero value is the airlock binary's.
type Options struct {
	// Getenv reads the environment; nil is os.Getenv.
	Getenv func(string) string
	// Sim seeds the simulated cloud on the simulated device; zero is
	// DefaultSim().
	Sim *sim.Options
}

// Cloud is the capability. Create it with New.
type Cloud struct {
	opts     Options
	client   *client
	notReady string
	sim      *sim.Server
	log      *slog.Logger
}

var (
	_ capability.Capability   = (*Cloud)(nil)
	_ capability.Configurer   = (*Cloud)(nil)
	_ capability.Provisioner  = (*Cloud)(nil)
	_ capability.Closer       = (*Cloud)(nil)
	_ capability.SecretHolder = (*Cloud)(nil)
)

// New returns the capability, unprovisioned: until Provision every call
// returns abi.Unavailable.
func New(o Options) *Cloud {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	return &Cloud{opts: o, notReady: "the cloud capability was not provisioned", log: slog.New(slog.DiscardHandler)}
}

func (*Cloud) Name() string   { return Name }
func (*Cloud) Module() string { return abi.ModuleCloud }

// SecretEnv names the key's variables, so that no plugin's environment
// has them, whatever its env.allow says (RESIN_API_KEY is the legacy twin).
func (*Cloud) SecretEnv() []string { return []string{EnvKey, "RESIN_API_KEY"} }

// RuntimeConfig is runtime.toml's [cloud].
type RuntimeConfig struct {
	// Timeout bounds one HTTP request (0: DefaultTimeout).
	Timeout time.Duration
}

type runtimeTOML struct {
	Timeout manifest.Duration `toml:"timeout"`
	APIKey  *string           `toml:"api_key"`
}

// DecodeConfig decodes runtime.toml's [cloud].
func (*Cloud) DecodeConfig(s manifest.Section) (any, error) {
	var t runtimeTOML
	if !s.Decode(&t) {
		return nil, errors.New("bad [cloud] section")
	}
	if t.APIKey != nil {
		s.Errorf("api_key", "the platform sets "+EnvKey+" for a service with the io.balena.features.balena-api label; the host reads it from there",
			"the cloud API key must not be written in runtime.toml")
		return nil, errors.New("bad [cloud] section")
	}
	if d := t.Timeout.D(); d < 0 || d > 5*time.Minute {
		s.Errorf("timeout", `write a duration from "1s" to "5m"`, "timeout = %s is out of range", d)
		return nil, errors.New("bad [cloud] section")
	}
	return &RuntimeConfig{Timeout: t.Timeout.D()}, nil
}

type grantTOML struct {
	Allow []string `toml:"allow"`
}

// DecodeGrant decodes plugin.toml's [cloud]: allow = ["tags.read",
// "tags.set:location", ...]. Each bad entry is reported at its line.
func (*Cloud) DecodeGrant(s manifest.Section) (any, error) {
	var t grantTOML
	if !s.Decode(&t) {
		return nil, errors.New("bad [cloud] section")
	}
	g, bad := &Grant{ops: map[string]bool{}, keys: map[string]map[string]bool{}}, false
	for i, entry := range t.Allow {
		if err := g.add(entry); err != nil {
			bad = true
			s.Errorf("allow", "known operations: "+opNames(), "entry %d %q: %v", i, entry, err)
		}
	}
	if bad {
		return nil, errors.New("bad [cloud] allow list")
	}
	return g, nil
}

// ParseGrant builds a Grant from allow entries (tests and tools).
func ParseGrant(allow ...string) (*Grant, error) {
	g := &Grant{ops: map[string]bool{}, keys: map[string]map[string]bool{}}
	for _, e := range allow {
		if err := g.add(e); err != nil {
			return nil, fmt.Errorf("%q: %w", e, err)
		}
	}
	return g, nil
}

func (g *Grant) add(entry string) error {
	op, key, hasKey := strings.Cut(entry, ":")
	i := slices.IndexFunc(ops, func(o struct {
		name   string
		perKey bool
		fields []string
	}) bool {
		return o.name == op
	})
	switch {
	case i < 0:
		return fmt.Errorf("%q is not a cloud operation", op)
	case ops[i].perKey && !hasKey:
		return fmt.Errorf("%s is granted per tag key: write %q, or %q for every key", op, op+":<key>", op+":*")
	case !ops[i].perKey && hasKey:
		return fmt.Errorf("%s takes no key", op)
	case hasKey && key != AnyKey:
		if err := checkKey(key); err != nil {
			return err
		}
	}
	if hasKey {
		if g.keys[op] == nil {
			g.keys[op] = map[string]bool{}
		}
		g.keys[op][key] = true
	} else {
		g.ops[op] = true
	}
	return nil
}

func opNames() string {
	var n []string
	for _, o := range ops {
		if o.perKey {
			n = append(n, o.name+":<key>")
		} else {
			n = append(n, o.name)
		}
	}
	return strings.Join(n, ", ")
}

// decide is the capability's verdict for the gate.
func decide(g *Grant, op, key string, perKey bool) gate.Decision {
	if g == nil {
		return gate.Deny("the plugin has no [cloud] section")
	}
	if !perKey {
		if g.ops[op] {
			return gate.Allow(fmt.Sprintf("cloud.allow lists %q", op))
		}
		return gate.Deny(fmt.Sprintf("cloud.allow does not list %q (add it to [cloud] allow in plugin.toml)", op))
	}
	switch set := g.keys[op]; {
	case set[key]:
		return gate.Allow(fmt.Sprintf("cloud.allow lists %q", op+":"+key))
	case set[AnyKey]:
		return gate.Allow(fmt.Sprintf("cloud.allow lists %q", op+":*"))
	}
	return gate.Deny(fmt.Sprintf("cloud.allow does not list %q (add it to [cloud] allow in plugin.toml)", op+":"+key))
}

// uuidRE is a balena device uuid: 32 (or, for old devices, 62) hex digits.
var uuidRE = regexp.MustCompile(`^[0-9a-f]{32}(?:[0-9a-f]{30})?$`)

// DefaultSim is the simulated device's cloud: the device, a tag or two,
// variables, and its fleet, with a second device it must never reach.
func DefaultSim() sim.Options {
	return sim.Options{
		Devices: []sim.Device{
			{ID: 101, UUID: SimUUID, Name: "airlock-sim", Fleet: 7, Key: "simcloudkey0123456789abcdef"},
			{ID: 102, UUID: "ffffffffffffffffffffffffffffffff", Name: "neighbour", Fleet: 7, Key: "othersimkey9876543210"},
		},
		Fleets:   []sim.Fleet{{ID: 7, Name: "airlock-demo", Slug: "acme/airlock-demo", DeviceType: "raspberrypi4-64"}},
		Tags:     map[int]map[string]string{101: {"location": "lab", "owner": "ops"}, 102: {"secret": "neighbour's"}},
		Env:      map[int][]sim.Var{101: {{Name: "LOG_LEVEL", Value: "debug"}}},
		Config:   map[int][]sim.Var{101: {{Name: "BALENA_HOST_CONFIG_gpu_mem", Value: "64"}}},
		FleetEnv: map[int][]sim.Var{7: {{Name: "LOG_LEVEL", Value: "info"}, {Name: "REGION", Value: "eu"}}},
		FleetCfg: map[int][]sim.Var{7: {{Name: "BALENA_SUPERVISOR_POLL_INTERVAL", Value: "900000"}}},
	}
}

// SimUUID is the simulated device's uuid.
const SimUUID = "5f3a1c2e9b7d4e60a1b2c3d4e5f60718"

// Provision starts the simulator on the simulated device, or reads the
// platform's environment on a real one. Without it, calls return
// abi.Unavailable with the reason; the host does not fail.
func (c *Cloud) Provision(_ context.Context, env capability.Env) error {
	if env.Logger != nil {
		c.log = env.Logger
	}
	timeout := DefaultTimeout
	if rc, ok := env.Config.(*RuntimeConfig); ok && rc != nil && rc.Timeout > 0 {
		timeout = rc.Timeout
	}
	var base, key, uuid string
	if env.Sim {
		so := DefaultSim()
		if c.opts.Sim != nil {
			so = *c.opts.Sim
		}
		if len(so.Devices) == 0 {
			return errors.New("the simulated cloud has no device: Options.Sim.Devices[0] is this device")
		}
		if so.Logger == nil {
			so.Logger = c.log
		}
		c.sim = sim.New(so)
		u, err := c.sim.Start("127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("starting the simulated cloud API: %w", err)
		}
		base, key, uuid = u, so.Devices[0].Key, so.Devices[0].UUID
	} else {
		base, key, uuid = strings.TrimRight(c.opts.Getenv(EnvURL), "/"), c.opts.Getenv(EnvKey), c.opts.Getenv(EnvUUID)
		if why := checkEnv(base, key, uuid); why != "" {
			c.notReady = why
			c.log.Info("no cloud API; plugins' cloud calls will return unavailable", "reason", why)
			return nil
		}
	}
	c.client = &client{base: base, key: key, uuid: uuid, timeout: timeout, http: &http.Client{
		// A redirect would carry the key elsewhere; the API does not redirect.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	c.notReady = ""
	c.log.Info("cloud API ready", "url", base, "device", uuid, "simulated", env.Sim)
	return nil
}

// checkEnv says why the environment cannot reach the API, or "".
func checkEnv(base, key, uuid string) string {
	switch {
	case base == "":
		return EnvURL + " is not set (give the service the io.balena.features.balena-api label)"
	case key == "":
		return EnvKey + " is not set (give the service the io.balena.features.balena-api label)"
	case !uuidRE.MatchString(uuid):
		return EnvUUID + " is not a balena device uuid (32 or 62 lowercase hex digits)"
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" {
		return EnvURL + " is not an http(s) URL without credentials or query"
	}
	return ""
}

// Sim returns the simulator, or nil on a real device.
func (c *Cloud) Sim() *sim.Server { return c.sim }

// Close stops the simulator.
func (c *Cloud) Close() error {
	if c.sim != nil {
		c.sim.Close()
	}
	if c.client != nil {
		c.client.http.CloseIdleConnections()
	}
	return nil
}

// Functions returns airlock_cloud_v1's one function.
func (c *Cloud) Functions() []capability.Func {
	return []capability.Func{capability.HostFunc(FuncCall, c.call,
		capability.Input{Name: "op", Max: maxOp},
		capability.Input{Name: "req", Max: maxRequest, Record: true})}
}

func (c *Cloud) call(ctx context.Context, in *capability.Caller, a *capability.Args) (abi.Record, error) {
	return c.Do(ctx, in, string(a.Bytes(0)), a.Record(1))
}

// Do runs one operation for the calling plugin: check the request, ask the
// gate, call the API. Every error and reply is scrubbed of the key. The glue
// calls it with the guest's op and request record; tests call it directly.
func (c *Cloud) Do(ctx context.Context, in *capability.Caller, op string, req abi.Record) (abi.Record, error) {
	r, err := c.do(ctx, in, op, req)
	if err != nil {
		msg := c.scrub(err.Error())
		if errno := capability.ErrnoOf(err); errno != abi.Denied {
			log := in.Log
			if log == nil {
				log = c.log
			}
			log.WarnContext(ctx, "cloud call failed", "capability", Name, "op", clip(op), "error", msg)
		}
		return nil, capability.Errorf(capability.ErrnoOf(err), "%s", msg)
	}
	for i := range r {
		r[i].Value = []byte(c.scrub(string(r[i].Value)))
	}
	return r, nil
}

func (c *Cloud) do(ctx context.Context, in *capability.Caller, op string, req abi.Record) (abi.Record, error) {
	if op == "" || strings.ContainsFunc(op, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return nil, capability.Errorf(abi.Invalid, "cloud: the operation name %q is not printable ASCII (%s)", clip(op), opNames())
	}
	i := -1
	for j, o := range ops {
		if o.name == op {
			i = j
		}
	}
	fields := map[string]string{}
	for _, f := range req {
		if i >= 0 && !slices.Contains(ops[i].fields, f.Key) {
			return nil, capability.Errorf(abi.Invalid, "cloud %s: request field %q is not one it takes (%s)", op, clip(f.Key), takes(ops[i].fields))
		}
		if _, dup := fields[f.Key]; dup {
			return nil, capability.Errorf(abi.Invalid, "cloud %s: request field %q is repeated", op, f.Key)
		}
		fields[f.Key] = string(f.Value)
	}
	if i < 0 {
		d := gate.Deny(fmt.Sprintf("%q is not a cloud operation this host knows (%s)", clip(op), opNames()))
		return nil, in.Check(ctx, Name, clip(op), d)
	}
	key := fields["key"]
	auditOp := op
	if ops[i].perKey {
		if err := checkKey(key); err != nil {
			return nil, capability.Errorf(abi.Invalid, "cloud %s: %v", op, err)
		}
		auditOp = op + ":" + key
	}
	if err := in.Check(ctx, Name, auditOp, decide(grant.Of(in), op, key, ops[i].perKey)); err != nil {
		return nil, err
	}
	if err := checkFields(op, fields); err != nil {
		return nil, err
	}
	if c.client == nil {
		return nil, capability.Errorf(abi.Unavailable, "cloud %s: %s", op, c.notReady)
	}
	cl := c.client
	switch op {
	case OpDeviceRead:
		d, err := cl.device(ctx)
		if err != nil {
			return nil, err
		}
		return abi.Record{{Key: "uuid", Value: []byte(d.UUID)}, {Key: "name", Value: []byte(d.Name)}}, nil
	case OpNameSet:
		return nil, cl.setName(ctx, fields["name"])
	case OpTagsRead:
		tags, err := cl.tags(ctx, nil)
		if err != nil {
			return nil, err
		}
		sort.Slice(tags, func(a, b int) bool { return tags[a].Key < tags[b].Key })
		var r abi.Record
		for _, t := range tags {
			r = append(r, abi.Field{Key: t.Key, Value: []byte(t.Value)})
		}
		return r, nil
	case OpTagSet:
		return nil, cl.setTag(ctx, key, fields["value"])
	case OpTagDelete:
		had, err := cl.deleteTag(ctx, key)
		if err != nil {
			return nil, err
		}
		return abi.Record{{Key: "deleted", Value: []byte(strconv.FormatBool(had))}}, nil
	case OpEnvRead, OpConfigRead:
		kind := "environment"
		if op == OpConfigRead {
			kind = "config"
		}
		scope := fields["scope"]
		if scope == "" {
			scope = scopeDevice
		}
		vars, err := cl.vars(ctx, kind, scope)
		if err != nil {
			return nil, err
		}
		sort.Slice(vars, func(a, b int) bool { return vars[a].Name < vars[b].Name })
		var r abi.Record
		for _, v := range vars {
			r = append(r, abi.Field{Key: v.Name, Value: []byte(v.Value)})
		}
		return r, nil
	case OpFleetRead:
		f, err := cl.fleetInfo(ctx)
		if err != nil {
			return nil, err
		}
		dt := ""
		if len(f.Type) > 0 {
			dt = f.Type[0].Slug
		}
		return abi.Record{{Key: "id", Value: []byte(strconv.Itoa(f.ID))}, {Key: "name", Value: []byte(f.Name)},
			{Key: "slug", Value: []byte(f.Slug)}, {Key: "device_type", Value: []byte(dt)},
			{Key: "is_public", Value: []byte(strconv.FormatBool(f.Public))}}, nil
	}
	return nil, capability.Errorf(abi.Failed, "cloud %s: not implemented", op) // unreachable: ops lists each case
}

func takes(fields []string) string {
	if len(fields) == 0 {
		return "it takes none"
	}
	return strings.Join(fields, ", ")
}

// checkKey validates a tag key: 1 to MaxKey bytes of printable ASCII
// without spaces. Quotes and parentheses are allowed: the client quotes
// every key as an OData literal.
func checkKey(k string) error {
	if k == "" || len(k) > MaxKey {
		return fmt.Errorf("a tag key is 1 to %d bytes, got %d", MaxKey, len(k))
	}
	for _, r := range k {
		if r <= ' ' || r > '~' {
			return fmt.Errorf("tag key %q has a character outside printable ASCII or a space", clip(k))
		}
	}
	return nil
}

// checkFields validates the request's values for op, after the gate.
func checkFields(op string, f map[string]string) error {
	switch op {
	case OpNameSet:
		n, ok := f["name"]
		if !ok || n == "" || len(n) > MaxName {
			return capability.Errorf(abi.Invalid, "cloud %s: the name (field \"name\") is 1 to %d bytes, got %d", op, MaxName, len(n))
		}
		if !utf8.ValidString(n) || strings.ContainsFunc(n, isControl) {
			return capability.Errorf(abi.Invalid, "cloud %s: the name %q is not UTF-8 text without control characters", op, clip(n))
		}
	case OpTagSet:
		v, ok := f["value"]
		if !ok {
			return capability.Errorf(abi.Invalid, "cloud %s: the request has no value (field \"value\"; write \"\" for an empty one)", op)
		}
		if len(v) > MaxValue || !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return capability.Errorf(abi.Invalid, "cloud %s: a tag value is UTF-8 of at most %d bytes without NUL, got %d bytes", op, MaxValue, len(v))
		}
	case OpEnvRead, OpConfigRead:
		if s, ok := f["scope"]; ok && s != scopeDevice && s != scopeFleet {
			return capability.Errorf(abi.Invalid, "cloud %s: scope %q is not \"device\" or \"fleet\"", op, clip(s))
		}
	}
	return nil
}

func isControl(r rune) bool { return r < ' ' || r == 0x7f }

// scrub replaces the key wherever it appears, so that a reply or an error
// echoing it (a proxy's, a server's) never reaches a plugin or a log.
func (c *Cloud) scrub(s string) string {
	if c.client == nil || len(c.client.key) < 4 {
		return s
	}
	return strings.ReplaceAll(s, c.client.key, "[redacted]")
}

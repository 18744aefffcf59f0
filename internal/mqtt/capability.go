// Package mqtt is the MQTT capability: the [mqtt] grant, the
// airlock_mqtt_v1 host functions (publish), and [[trigger.mqtt]]
// subscriptions that the host makes on a plugin's behalf and delivers as
// abi.EventMQTT events. The host keeps one client connection per
// [[mqtt.broker]] of runtime.toml, shared by every plugin, that reconnects
// and resubscribes; a broker's password is a host-held secret (package
// secret) that no plugin sees.
package mqtt

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"sync"

	"golang.org/x/time/rate"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/httpout"
	"github.com/airlockhq/airlock/internal/mqtt/mosquitto"
	"github.com/airlockhq/airlock/internal/secret"
)

// Name is the manifest and runtime.toml section, the trigger kind, and the
// audit name.
const Name = "mqtt"

// FuncPublish is airlock_mqtt_v1's one function (ABI.md §3.7):
// publish(req_ptr, req_len, payload_ptr, payload_len, out_ptr, out_cap, out_len_ptr) -> errno.
const FuncPublish = "publish"

// Fields of a publish request and of an EventMQTT event.
const (
	fieldBroker   = "broker"
	fieldTopic    = "topic"
	fieldPayload  = "payload"
	fieldQoS      = "qos"
	fieldRetain   = "retain"
	fieldRetained = "retained"
)

// Options configure a Capability. The zero value is what the airlock
// binary uses.
type Options struct {
	// Getenv reads secrets; nil means os.Getenv.
	Getenv func(string) string
}

// Capability is the "mqtt" capability.
type Capability struct {
	opts Options
	cfg  Config
	log  *slog.Logger
	gate *gate.Gate

	mu      sync.Mutex
	brokers map[string]*broker       // by name; set by Provision
	subs    map[string]subscription  // by plugin
	rates   map[string]*rate.Limiter // by plugin
	deliver capability.Deliver       // set by Start

	provisioned bool
	sim         []*mosquitto.Broker // the simulated device's brokers
	onSim       bool                // the device is simulated (see defaultClientID)
}

// subscription is one plugin's granted filters on its broker.
type subscription struct {
	broker string
	rules  Rules
}

var grant = capability.GrantKey[*Grant](Name)

var (
	_ capability.Capability      = (*Capability)(nil)
	_ capability.Configurer      = (*Capability)(nil)
	_ capability.Provisioner     = (*Capability)(nil)
	_ capability.Closer          = (*Capability)(nil)
	_ capability.Triggerer       = (*Capability)(nil)
	_ capability.GrantSubscriber = (*Capability)(nil)
)

// New returns the capability, unprovisioned.
func New(o Options) *Capability {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	return &Capability{opts: o, cfg: DefaultConfig(), log: slog.New(slog.DiscardHandler), gate: &gate.Gate{},
		brokers: map[string]*broker{}, subs: map[string]subscription{}, rates: map[string]*rate.Limiter{}}
}

func (c *Capability) Name() string    { return Name }
func (c *Capability) Module() string  { return abi.ModuleMQTT }
func (c *Capability) Trigger() string { return Name }

// DecodeConfig decodes runtime.toml's [mqtt].
func (c *Capability) DecodeConfig(s manifest.Section) (any, error) { return decodeConfig(s) }

// DecodeGrant decodes plugin.toml's [mqtt]. Once provisioned, a broker
// that runtime.toml does not declare is an error at load.
func (c *Capability) DecodeGrant(s manifest.Section) (any, error) {
	var known map[string]Broker
	if c.provisioned {
		known = c.cfg.Brokers
	}
	return decodeGrant(s, known)
}

// DecodeTrigger decodes [[trigger.mqtt]].
func (c *Capability) DecodeTrigger(s manifest.Section) (any, error) {
	return decodeRules(s, c.cfg.MaxSubscriptions)
}

// Provision reads the brokers' passwords and starts one connection per
// broker. A broker that is down is not an error: the connection retries,
// and publishes fail with abi.Unavailable until it is up.
func (c *Capability) Provision(ctx context.Context, env capability.Env) error {
	if env.Logger != nil {
		c.log = env.Logger
	}
	if env.Gate != nil {
		c.gate = env.Gate
	}
	if cfg, ok := env.Config.(*Config); ok && cfg != nil {
		c.cfg = *cfg
	}
	var declared map[string]secret.Source
	stateDir := ""
	if env.Runtime != nil {
		stateDir = env.Runtime.StateDir
		if h, ok := env.Runtime.Sections[httpout.Name].(*httpout.Config); ok && h != nil {
			declared = h.Secrets
		}
	}
	c.onSim = env.Sim
	if env.Sim {
		c.startSim(stateDir, declared)
	}
	for _, name := range slices.Sorted(maps.Keys(c.cfg.Brokers)) {
		b := c.cfg.Brokers[name]
		password := ""
		if b.PasswordSecret != "" {
			src, ok := declared[b.PasswordSecret]
			if !ok {
				return fmt.Errorf("mqtt: broker %q: password_secret %q is not declared in runtime.toml's [http.secrets] (declare it there, as %s = { env = \"VARIABLE\" })", name, b.PasswordSecret, b.PasswordSecret)
			}
			v, err := secret.Load(b.PasswordSecret, src, c.opts.Getenv, stateDir)
			if err != nil {
				// Not fatal: the broker stays unconnected, and says why.
				c.log.Warn("mqtt broker password unavailable; the broker is not connected", "broker", name, "error", err.Error())
				c.brokers[name] = &broker{name: name, down: err.Error()}
				continue
			}
			password = v
		}
		br, err := c.connect(b, password)
		if err != nil {
			return fmt.Errorf("mqtt: broker %q: %w", name, err)
		}
		c.brokers[name] = br
	}
	c.provisioned = true
	return nil
}

// Subscribe is the Triggerer's call without a grant: the host calls
// SubscribeGranted instead; a plugin without a grant subscribes to
// nothing.
func (c *Capability) Subscribe(plugin string, rules any) { c.SubscribeGranted(plugin, rules, nil) }

// SubscribeGranted decides a plugin's [[trigger.mqtt]] filters against its
// [mqtt] grant, at load: each filter must be covered by a subscribe filter
// of the grant, or it is refused (audited, logged) and not subscribed.
func (c *Capability) SubscribeGranted(plugin string, rules, g any) {
	rs, _ := rules.(Rules)
	gr, _ := g.(*Grant)
	var s subscription
	for _, r := range rs {
		op := "subscribe " + r.Filter
		d := gate.Deny("the plugin has no [mqtt] grant")
		if gr != nil {
			s.broker = gr.Broker
			op = "subscribe " + gr.Broker + ":" + r.Filter
			if by := coveredBy(gr.Subscribe, r.Filter); by != "" {
				d = gate.Allow("within subscribe filter " + strconv.Quote(by))
			} else {
				d = gate.Deny(fmt.Sprintf("filter %q is not within the grant's subscribe = %q", r.Filter, gr.Subscribe))
			}
		}
		if err := c.gate.Check(context.Background(), plugin, Name, op, d); err != nil {
			c.log.Error("mqtt subscription refused; the plugin gets no messages for it", "plugin", plugin, "capability", Name, "error", err.Error())
			continue
		}
		s.rules = append(s.rules, r)
	}
	c.apply(plugin, s)
}

// apply replaces plugin's subscriptions with s and brings the brokers'
// subscriptions in line.
func (c *Capability) apply(plugin string, s subscription) {
	c.mu.Lock()
	old := c.subs[plugin]
	if len(s.rules) == 0 {
		delete(c.subs, plugin)
	} else {
		c.subs[plugin] = s
	}
	touched := map[string]bool{old.broker: old.broker != "", s.broker: s.broker != ""}
	c.mu.Unlock()
	for name, yes := range touched {
		if !yes {
			continue
		}
		if b := c.brokers[name]; b != nil {
			b.sync(c.wanted(name))
		} else if name == s.broker {
			c.log.Error("mqtt subscription to a broker runtime.toml does not declare", "plugin", plugin, "broker", name)
		}
	}
}

// wanted is the union of the plugins' filters on broker, with the highest
// QoS asked for each.
func (c *Capability) wanted(broker string) map[string]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := map[string]byte{}
	for _, s := range c.subs {
		if s.broker != broker {
			continue
		}
		for _, r := range s.rules {
			w[r.Filter] = max(w[r.Filter], r.QoS)
		}
	}
	return w
}

// Start begins delivering messages.
func (c *Capability) Start(_ context.Context, deliver capability.Deliver) error {
	c.mu.Lock()
	c.deliver = deliver
	c.mu.Unlock()
	return nil
}

// route hands one incoming message to each plugin whose filter on this
// broker matches it. A QoS 0 message replaces an unhandled older one of the
// same topic (telemetry: the newest value wins); a QoS 1 message is never
// coalesced. Each plugin's queue counts what it cannot take.
func (c *Capability) route(broker, topic string, payload []byte, qos byte, retained bool) {
	if len(payload) > c.cfg.MaxPayload {
		c.log.Warn("mqtt message dropped: payload over mqtt.max_payload", "broker", broker, "topic", clip(topic), "bytes", len(payload), "max_payload", c.cfg.MaxPayload)
		return
	}
	ev := c.event(broker, topic, payload, qos, retained)
	c.mu.Lock()
	deliver := c.deliver
	var to []string
	for plugin, s := range c.subs {
		if s.broker != broker {
			continue
		}
		for _, r := range s.rules {
			if covers(r.Filter, topic) {
				to = append(to, plugin)
				break
			}
		}
	}
	c.mu.Unlock()
	if deliver == nil {
		return
	}
	slices.Sort(to)
	for _, p := range to {
		deliver(p, ev)
	}
}

// event is the EventMQTT of one message. A QoS 0 message replaces a
// queued, unhandled one of the same broker and topic.
func (c *Capability) event(broker, topic string, payload []byte, qos byte, retained bool) capability.Event {
	ev := capability.Event{Kind: uint32(abi.EventMQTT), Payload: abi.AppendRecord(nil, abi.Record{
		{Key: fieldBroker, Value: []byte(broker)},
		{Key: fieldTopic, Value: []byte(topic)},
		{Key: fieldPayload, Value: payload},
		{Key: fieldQoS, Value: []byte{'0' + qos}},
		{Key: fieldRetained, Value: []byte(strconv.FormatBool(retained))},
	})}
	if qos == 0 {
		ev.Coalesce = "mqtt:" + broker + ":" + topic
	}
	return ev
}

// Close disconnects every broker.
func (c *Capability) Close() error {
	for _, b := range c.brokers {
		b.close()
	}
	for _, b := range c.sim {
		b.Stop()
	}
	return nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

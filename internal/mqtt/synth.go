package mqtt

import (
	"fmt"
	"strconv"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/manifest"
)

var _ capability.Synthesizer = (*Capability)(nil)

// SynthKind is [[trigger.mqtt]]'s name.
func (*Capability) SynthKind() string { return Name }

func (*Capability) SynthHelp() capability.SynthHelp {
	return capability.SynthHelp{Positional: []string{"topic", "payload"}, More: true,
		Usage: "<topic> <payload> [qos=0|1 retained=true|false]", Takes: "a topic and a payload",
		What: "a message on a [[trigger.mqtt]] filter of the plugin, such as:\n" +
			"mqtt airlock/commands/led on qos=1"}
}

// Synthesize makes a message as the plugin's broker would deliver it. For
// a plugin, the topic must match one of its [[trigger.mqtt]] filters: it
// would never receive another.
func (c *Capability) Synthesize(m *manifest.Manifest, args []string) (capability.Synthetic, error) {
	if err := capability.NoTrigger(m, Name, "an MQTT message"); err != nil {
		return capability.Synthetic{}, err
	}
	f, err := capability.SynthFields(Name, args)
	if err != nil {
		return capability.Synthetic{}, err
	}
	qos, retained := byte(0), false
	for k, v := range f {
		switch k {
		case "topic", "payload":
		case "qos":
			if v != "0" && v != "1" {
				return capability.Synthetic{}, fmt.Errorf("mqtt qos=%s: write 0 or 1", v)
			}
			qos = v[0] - '0'
		case "retained":
			if retained, err = strconv.ParseBool(v); err != nil {
				return capability.Synthetic{}, fmt.Errorf("mqtt retained=%s: write true or false", v)
			}
		default:
			return capability.Synthetic{}, fmt.Errorf("mqtt property %s: a message has a topic, a payload, qos and retained", k)
		}
	}
	topic := f["topic"]
	if why := checkTopic(topic, c.cfg.MaxTopic); why != "" {
		return capability.Synthetic{}, fmt.Errorf("mqtt topic %q: %s", topic, why)
	}
	broker := ""
	if m != nil {
		rs, _ := m.Triggers[Name].(Rules)
		matched := false
		for _, r := range rs {
			matched = matched || covers(r.Filter, topic)
		}
		if !matched {
			return capability.Synthetic{}, fmt.Errorf("topic %q matches no [[trigger.mqtt]] filter of plugin %q, so it never receives it (see %s)", topic, m.Name, m.File)
		}
		if g := grant.In(m); g != nil {
			broker = g.Broker
		}
	}
	ev := c.event(broker, topic, []byte(f["payload"]), qos, retained)
	rec, _ := abi.DecodeRecord(ev.Payload)
	rec = append(rec, abi.Field{Key: capability.SynthKey, Value: []byte(capability.SynthValue)})
	ev.Payload, ev.Coalesce = abi.AppendRecord(nil, rec), ""
	return capability.Synthetic{Event: ev, Desc: fmt.Sprintf("mqtt %s (%d bytes)", topic, len(f["payload"]))}, nil
}

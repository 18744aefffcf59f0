package mqtt

import (
	"errors"
	"fmt"

	"github.com/airlockhq/airlock/host/manifest"
)

// Grant is plugin.toml's [mqtt]: one broker, the topic filters the plugin
// may publish to, and those its [[trigger.mqtt]] filters must fall within.
type Grant struct {
	Broker    string
	Publish   []string
	Subscribe []string
}

type grantTOML struct {
	Broker    string   `toml:"broker"`
	Publish   []string `toml:"publish"`
	Subscribe []string `toml:"subscribe"`
}

// Rule is one [[trigger.mqtt]]: a filter the host subscribes to on the
// plugin's behalf, on its grant's broker.
type Rule struct {
	Filter string
	QoS    byte
}

// Rules are a plugin's [[trigger.mqtt]] tables.
type Rules []Rule

type ruleTOML struct {
	Filter string `toml:"filter"`
	QoS    int    `toml:"qos"`
}

var errBadSection = errors.New("bad mqtt section")

// maxFilterLen bounds a filter in a manifest, whatever max_topic says.
const maxFilterLen = 65535

func decodeGrant(s manifest.Section, brokers map[string]Broker) (*Grant, error) {
	var t grantTOML
	if !s.Decode(&t) {
		return nil, errBadSection
	}
	ok := true
	if t.Broker == "" {
		ok = false
		s.Errorf("broker", `name a [[mqtt.broker]] of runtime.toml, as in broker = "hub"`, "[mqtt] names no broker")
	} else if brokers != nil {
		if _, found := brokers[t.Broker]; !found {
			ok = false
			s.Errorf("broker", "declare it in runtime.toml as [[mqtt.broker]] name = \""+t.Broker+"\", or name one that is", "no broker %q in runtime.toml", t.Broker)
		}
	}
	for key, filters := range map[string][]string{"publish": t.Publish, "subscribe": t.Subscribe} {
		for _, f := range filters {
			if why := checkFilter(f, maxFilterLen); why != "" {
				ok = false
				s.Errorf(key, `write MQTT topic filters, such as "devices/+/status" or "commands/#"`, "filter %q: %s", f, why)
			}
		}
	}
	if !ok {
		return nil, errBadSection
	}
	return &Grant{Broker: t.Broker, Publish: t.Publish, Subscribe: t.Subscribe}, nil
}

func decodeRules(s manifest.Section, max int) (Rules, error) {
	var t []ruleTOML
	if !s.Decode(&t) {
		return nil, errBadSection
	}
	ok := true
	if len(t) > max {
		ok = false
		s.Errorf("", "subscribe to fewer, wider filters within the grant, or raise mqtt.max_subscriptions in runtime.toml", "%d [[trigger.mqtt]] tables, over mqtt.max_subscriptions = %d", len(t), max)
	}
	var rs Rules
	for i, r := range t {
		if why := checkFilter(r.Filter, maxFilterLen); why != "" {
			ok = false
			s.Errorf(fmt.Sprintf("[%d].filter", i), `write an MQTT topic filter, such as "commands/+/set"`, "filter %q: %s", r.Filter, why)
		}
		if r.QoS != 0 && r.QoS != 1 {
			ok = false
			s.Errorf(fmt.Sprintf("[%d].qos", i), "0 (at most once) or 1 (at least once)", "qos = %d", r.QoS)
		}
		rs = append(rs, Rule{Filter: r.Filter, QoS: byte(r.QoS)})
	}
	if !ok {
		return nil, errBadSection
	}
	return rs, nil
}

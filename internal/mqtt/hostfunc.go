package mqtt

import (
	"context"
	"fmt"
	"strconv"

	"golang.org/x/time/rate"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/gate"
)

const unavailable = abi.Unavailable

// maxRequest bounds the publish request record: a topic and two numbers.
const maxRequest = 65535 + 256

// Functions returns airlock_mqtt_v1's functions.
func (c *Capability) Functions() []capability.Func {
	return []capability.Func{
		capability.HostFunc(FuncPublish, c.publish,
			capability.Input{Name: "req", Max: maxRequest, Record: true},
			capability.Input{Name: "payload", TooLong: nil}),
	}
}

// publish sends one message to the grant's broker. The order: the request
// is well formed, the topic is within the grant (deny by default), the
// payload within max_payload, the plugin within its publish rate; each
// decision goes through the gate. QoS 1 waits for the broker's PUBACK,
// bounded by mqtt.timeout and the handler's deadline.
func (c *Capability) publish(ctx context.Context, cl *capability.Caller, a *capability.Args) (abi.Record, error) {
	var topic string
	qos, retain := byte(0), false
	for _, f := range a.Record(0) {
		v := string(f.Value)
		switch f.Key {
		case fieldTopic:
			topic = v
		case fieldQoS:
			if v != "0" && v != "1" {
				return nil, capability.Errorf(abi.Invalid, "mqtt: qos %q is not 0 or 1 (QoS 2 is not offered)", clip(v))
			}
			qos = v[0] - '0'
		case fieldRetain:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, capability.Errorf(abi.Invalid, "mqtt: retain %q is not true or false", clip(v))
			}
			retain = b
		default:
			return nil, capability.Errorf(abi.Invalid, "mqtt: unknown publish field %q (topic, qos, retain)", clip(f.Key))
		}
	}
	return nil, c.Publish(ctx, cl, Message{Topic: topic, Payload: a.Bytes(1), QoS: qos, Retain: retain})
}

// Message is one message a plugin publishes.
type Message struct {
	Topic   string
	Payload []byte // may alias guest memory: Publish copies it
	QoS     byte
	Retain  bool
}

// Publish is publish's work once the request is decoded (tests call it
// with the plugin's Caller, as the host function does).
func (c *Capability) Publish(ctx context.Context, cl *capability.Caller, m Message) error {
	topic, payload, qos, retain := m.Topic, m.Payload, m.QoS, m.Retain
	if qos > 1 {
		return capability.Errorf(abi.Invalid, "mqtt: qos %d is not 0 or 1", qos)
	}
	if why := checkTopic(topic, c.cfg.MaxTopic); why != "" {
		return capability.Errorf(abi.Invalid, "mqtt: publish to %q: %s", clip(topic), why)
	}
	g := grant.Of(cl)
	d := gate.Deny("the plugin has no [mqtt] grant")
	op := "publish " + topic
	if g != nil {
		op = "publish " + g.Broker + ":" + topic
		if by := coveredBy(g.Publish, topic); by != "" {
			d = gate.Allow("within publish filter " + strconv.Quote(by))
		} else {
			d = gate.Deny(fmt.Sprintf("topic is not within the grant's publish = %q", g.Publish))
		}
	}
	if d.Allowed && len(payload) > c.cfg.MaxPayload {
		d = gate.Deny(fmt.Sprintf("payload of %d bytes is over mqtt.max_payload = %d", len(payload), c.cfg.MaxPayload))
	}
	limited := d.Allowed && !c.limiter(cl.Plugin).Allow()
	if limited {
		d = gate.Deny(fmt.Sprintf("over the publish rate (mqtt.publish_rate = %g a second, burst %d); try again later", c.cfg.PublishRate, c.cfg.PublishBurst))
	}
	if err := cl.Check(ctx, Name, op, d); err != nil {
		if limited && capability.ErrnoOf(err) == abi.Denied {
			return capability.Errorf(abi.Busy, "%v", err) // audited as a denial; the guest may retry
		}
		return err
	}
	client, err := c.brokers[g.Broker].available()
	if err != nil {
		return err
	}
	// paho keeps the payload until it is sent: copy it out of guest memory.
	t := client.Publish(topic, qos, retain, append([]byte(nil), payload...))
	cctx, cancel := capability.CallContext(ctx, c.cfg.Timeout)
	defer cancel()
	select {
	case <-t.Done():
		if err := t.Error(); err != nil {
			return capability.Errorf(unavailable, "mqtt: publish to %s on broker %q: %v", topic, g.Broker, err)
		}
	case <-cctx.Done():
		return capability.Errorf(abi.Timeout, "mqtt: broker %q did not acknowledge the publish to %s in time", g.Broker, topic)
	}
	return nil
}

// limiter returns plugin's publish bucket.
func (c *Capability) limiter(plugin string) *rate.Limiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.rates[plugin]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(c.cfg.PublishRate), c.cfg.PublishBurst)
		c.rates[plugin] = l
	}
	return l
}

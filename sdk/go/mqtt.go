package airlock

import (
	"strconv"

	"github.com/airlockhq/airlock/sdk/go/abi"
)

// MQTT is the plugin's side of the broker that its [mqtt] grant names. The
// host holds the one connection (and its credentials); a plugin publishes
// within its grant's publish filters and is woken by MQTTMessage events
// for its [[trigger.mqtt]] filters:
//
//	err := airlock.MQTT.Publish("devices/pump/status", []byte("up"), airlock.QoS1, false)
//	airlock.OnMQTT(func(m airlock.MQTTMessage) error { ... })
var MQTT MQTTClient

// MQTTClient is the type of MQTT.
type MQTTClient struct{}

// QoS levels the host offers (QoS 2 is not).
const (
	QoS0 byte = 0 // at most once
	QoS1 byte = 1 // at least once: Publish returns after the broker's PUBACK
)

// Publish sends payload to topic on the grant's broker. Errors are
// *HostError: abi.Denied (outside the grant, or a payload over
// max_payload), abi.Busy (over the publish rate; retry later), abi.Invalid
// (a wildcard or NUL in topic), abi.Unavailable (the broker is down; the
// host reconnects), abi.Timeout.
func (MQTTClient) Publish(topic string, payload []byte, qos byte, retain bool) error {
	req := abi.AppendRecord(nil, abi.Record{
		{Key: "topic", Value: []byte(topic)},
		{Key: "qos", Value: []byte{'0' + qos}},
		{Key: "retain", Value: []byte(strconv.FormatBool(retain))},
	})
	_, err := call(func(p *byte, c uint32, n *uint32) uint32 { return mqttPublish(req, payload, p, c, n) })
	return err
}

// MQTTMessage is an incoming message of a [[trigger.mqtt]] filter.
type MQTTMessage struct {
	Broker   string // the [[mqtt.broker]] name
	Topic    string
	Payload  []byte
	QoS      byte
	Retained bool // a retained message the broker kept, sent on subscription
}

// OnMQTT runs h for each message that the plugin's [[trigger.mqtt]]
// filters match.
func OnMQTT(h func(MQTTMessage) error) {
	Handle(abi.EventMQTT, func(e Event) error {
		m := MQTTMessage{Broker: e.Get("broker"), Topic: e.Get("topic"), Retained: e.Get("retained") == "true"}
		if v, ok := e.Fields.Get("payload"); ok {
			m.Payload = []byte(v)
		}
		if q := e.Get("qos"); q == "1" {
			m.QoS = QoS1
		}
		return h(m)
	})
}

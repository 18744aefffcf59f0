// Command mqtt-telemetry publishes a heartbeat to the broker its [mqtt]
// grant names, on a timer, and logs each command a [[trigger.mqtt]] filter
// delivers. A command "airlock/commands/slow" makes the handler take a
// while, so that a test can fill the plugin's queue.
package main

import (
	"strconv"
	"time"

	airlock "github.com/airlockhq/airlock/sdk/go"
)

var beats int

func init() {
	airlock.OnTimer(func(t airlock.Timer) error {
		beats++
		err := airlock.MQTT.Publish("airlock/telemetry/heartbeat", []byte(strconv.Itoa(beats)), airlock.QoS1, true)
		if err != nil {
			// The broker may be down: the host reconnects; the next beat
			// tries again.
			airlock.Warn("heartbeat not published", "error", err.Error())
			return nil
		}
		airlock.Info("heartbeat published", "count", beats)
		return nil
	})
	airlock.OnMQTT(func(m airlock.MQTTMessage) error {
		airlock.Info("command received", "topic", m.Topic, "payload", string(m.Payload), "retained", m.Retained)
		if m.Topic == "airlock/commands/slow" {
			airlock.Sleep(500 * time.Millisecond)
		}
		return nil
	})
	airlock.OnDropped(func(d airlock.Dropped) error {
		airlock.Warn("commands missed", "count", d.Count, "reason", d.Reason)
		return nil
	})
}

func main() {}

package mqtt_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/plugintest"
	"github.com/airlockhq/airlock/internal/mqtt"
)

// TestExampleTelemetryEndToEnd runs examples/mqtt-telemetry (Go SDK) in a
// real host against a real broker: its timer's publish goes through
// airlock_mqtt_v1 to an outside subscriber, commands come back as events
// through the plugin's queue, and a burst while the handler is busy is
// dropped by the queue (limits.queue = 4) and counted exactly: every
// command sent is either handled or counted as lost to a full queue.
func TestExampleTelemetryEndToEnd(t *testing.T) {
	mq := mqtt.StartBroker(t)
	h := plugintest.New(t, "../../examples/mqtt-telemetry", plugintest.Options{
		Runtime: fmt.Sprintf("[[mqtt.broker]]\nname = \"hub\"\nurl = %q\n", mq.URL) + "[limits]\nqueue = 4\n"})
	r := mqtt.Outside(t, mq)
	telemetry := r.Listen("airlock/telemetry/#")
	h.Timer("heartbeat")
	mqtt.WaitFor(t, "the heartbeat at the outside subscriber", func() bool { return mqtt.Contains(telemetry(), "airlock/telemetry/heartbeat=1") })

	out := r.Outsider()
	mqtt.WaitFor(t, "the plugin's subscription", func() bool {
		out.Publish("airlock/commands/ping", 1, false, "ping").WaitTimeout(time.Second)
		return h.Logs().Count("command received", "airlock/commands/ping") > 0
	})
	out.Publish("airlock/commands/slow", 1, false, "slow").WaitTimeout(10 * time.Second)
	h.Logs().Wait(1, "command received", "airlock/commands/slow")
	const burst = 40
	for i := range burst {
		out.Publish(fmt.Sprintf("airlock/commands/n%d", i), 1, false, "x").WaitTimeout(10 * time.Second)
	}
	var handled, full uint64
	mqtt.WaitFor(t, "every command handled or counted", func() bool {
		handled = uint64(h.Logs().Count("command received", "airlock/commands/n"))
		full = h.Status().Losses.QueueFull[abi.EventMQTT]
		return handled+full == burst
	})
	t.Logf("burst of %d: %d handled, %d lost to the full queue", burst, handled, full)
	if full == 0 || handled == 0 {
		t.Errorf("handled %d, dropped %d: want some of each (queue 4, a busy handler)", handled, full)
	}
	h.Logs().Wait(1, "commands missed")
	if losses := h.Status().Losses; losses.CoalescedTotal() != 0 {
		n := losses.CoalescedTotal()
		t.Errorf("%d QoS 1 messages coalesced", n)
	}
	if strings.Contains(strings.Join(h.Logs().Lines(), "\n"), "level=ERROR") {
		t.Errorf("errors logged:\n%s", strings.Join(h.Logs().Lines(), "\n"))
	}
}

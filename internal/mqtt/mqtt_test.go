package mqtt

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
)

const pubGrant = `[mqtt]
broker = "hub"
publish = ["devices/+/status"]
`

const subGrant = `[mqtt]
broker = "hub"
subscribe = ["devices/#"]
`

const subTrigger = `[[trigger.mqtt]]
filter = "devices/+/status"
qos = 1
`

// TestPublishReachesTwoPlugins: a granted publish goes through the broker
// and comes back to both subscribed plugins, once each, with its fields;
// the allow is audited.
func TestPublishReachesTwoPlugins(t *testing.T) {
	r := newRig(t, rigOptions{})
	pub := r.plugin("pub", pubGrant, "")
	r.plugin("sub1", subGrant, subTrigger)
	r.plugin("sub2", subGrant, subTrigger)
	if err := r.publish(pub, "devices/a/status", "up", 1, false); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"sub1", "sub2"} {
		e := r.waitEvent(p, "up")
		if tp, _ := e.Get(fieldTopic); tp != "devices/a/status" {
			t.Errorf("%s: topic %q", p, tp)
		}
		if b, _ := e.Get(fieldBroker); b != "hub" {
			t.Errorf("%s: broker %q", p, b)
		}
	}
	if n := r.logs.Count("audit", "plugin=pub", "mqtt", "publish hub:devices/a/status", "allow"); n == 0 {
		t.Errorf("no audited allow:\n%s", strings.Join(r.logs.Lines(), "\n"))
	}
	if got := len(r.got("pub")); got != 0 {
		t.Errorf("the publisher, not subscribed, got %d events", got)
	}
}

// TestQoS1AndRetained: a retained QoS 1 message is acknowledged, and a
// plugin that subscribes afterwards gets it marked retained.
func TestQoS1AndRetained(t *testing.T) {
	r := newRig(t, rigOptions{})
	pub := r.plugin("pub", pubGrant, "")
	if err := r.publish(pub, "devices/b/status", "kept", 1, true); err != nil {
		t.Fatal(err)
	}
	r.plugin("late", subGrant, subTrigger)
	e := r.waitEvent("late", "kept")
	if v, _ := e.Get(fieldRetained); v != "true" {
		t.Errorf("retained = %q, want true", v)
	}
	if v, _ := e.Get(fieldQoS); v != "1" {
		t.Errorf("qos = %q, want 1", v)
	}
}

// TestReconnectResubscribes: the broker restarts with no memory of the
// host's session; the host reconnects, subscribes again, and delivery
// resumes without the plugin doing anything.
func TestReconnectResubscribes(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.plugin("sub", subGrant, subTrigger)
	out := r.outsider()
	out.Publish("devices/x/status", 1, false, "before").WaitTimeout(10 * time.Second)
	r.waitEvent("sub", "before")
	if err := r.mq.Restart(); err != nil {
		t.Fatal(err)
	}
	out2 := r.outsider()
	i := 0
	waitFor(t, "delivery after the broker restarted", func() bool {
		i++
		out2.Publish("devices/x/status", 1, false, "after").WaitTimeout(time.Second)
		for _, e := range r.got("sub") {
			if v, _ := e.Get(fieldPayload); v == "after" {
				return true
			}
		}
		time.Sleep(100 * time.Millisecond)
		return false
	})
	r.waitConnected()
	if err := r.publish(r.plugin("pub", pubGrant, ""), "devices/y/status", "again", 0, false); err != nil {
		t.Fatalf("publish after reconnect: %v", err)
	}
	r.waitEvent("sub", "again")
}

// TestQoS0Coalesces: a QoS 0 event carries a coalescing key per broker
// and topic (the plugin's queue keeps the newest), a QoS 1 event none; a
// message goes to each matching plugin once, even when two of its filters
// match.
func TestQoS0Coalesces(t *testing.T) {
	c := New(Options{})
	c.subs["p"] = subscription{broker: "hub", rules: Rules{{Filter: "a/+"}, {Filter: "a/#"}}}
	c.subs["q"] = subscription{broker: "other", rules: Rules{{Filter: "#"}}}
	var got []capability.Event
	c.Start(context.Background(), func(plugin string, ev capability.Event) bool {
		if plugin != "p" {
			t.Errorf("delivered to %s", plugin)
		}
		got = append(got, ev)
		return true
	})
	c.route("hub", "a/b", []byte("x"), 0, false)
	c.route("hub", "a/b", []byte("y"), 1, false)
	if len(got) != 2 || got[0].Coalesce != "mqtt:hub:a/b" || got[1].Coalesce != "" || abi.EventKind(got[0].Kind) != abi.EventMQTT {
		t.Fatalf("events %+v", got)
	}
}

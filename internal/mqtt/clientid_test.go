package mqtt

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/host/logtest"
	"github.com/airlockhq/airlock/host/manifest"
)

// TestDevicesShareABroker: two devices of a fleet, each with the default
// client id, on one real broker. A broker closes the older of two
// connections with one client id, so a fixed default ("airlock-hub") made
// them take the connection from each other for ever (and two simulated
// devices on one machine too); the default is now unique per device.
func TestDevicesShareABroker(t *testing.T) {
	mq := startBroker(t, "", "")
	device := func(uuid string) (*Capability, *logtest.Log) {
		logs, log := logtest.New(t)
		c := New(Options{Getenv: func(k string) string {
			if k == "BALENA_DEVICE_UUID" {
				return uuid
			}
			return ""
		}})
		text := fmt.Sprintf("[[mqtt.broker]]\nname = \"hub\"\nurl = %q\n", mq.URL)
		rt, err := manifest.ParseRuntime("runtime.toml", []byte(text), map[string]manifest.SectionFunc{Name: c.DecodeConfig})
		if err != nil {
			t.Fatal(err)
		}
		g := gate.New(log)
		t.Cleanup(g.Close)
		if err := c.Provision(context.Background(), capability.Env{Runtime: rt, Config: rt.Sections[Name], Logger: log, Gate: g}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		waitFor(t, "the connection of device "+uuid, func() bool { _, err := c.brokers["hub"].available(); return err == nil })
		return c, logs
	}
	a, alog := device("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	b, blog := device("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
	if ia, ib := a.defaultClientID("hub"), b.defaultClientID("hub"); ia == ib || len(ia) > 23 || !clientID.MatchString(ia) {
		t.Fatalf("client ids %q and %q: want two different portable ids", ia, ib)
	}
	// Each publishes with QoS 1 (the broker's acknowledgement), after both
	// are connected: neither connection was taken by the other.
	for _, c := range []*Capability{a, b} {
		cl, err := c.brokers["hub"].available()
		if err != nil {
			t.Fatal(err)
		}
		if tok := cl.Publish("fleet/hello", 1, false, "hi"); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	for _, l := range []*logtest.Log{alog, blog} {
		if n := l.Count("connection lost"); n != 0 {
			t.Errorf("a device lost its connection %d times:\n%s", n, strings.Join(l.Lines(), "\n"))
		}
	}
}

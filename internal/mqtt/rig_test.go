package mqtt

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/host/logtest"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/httpout"
	"github.com/airlockhq/airlock/internal/mqtt/mosquitto"
	"github.com/airlockhq/airlock/internal/testenv"
)

// rig is the capability provisioned as the host would, against a real
// mosquitto on loopback, with a real gate, captured logs and audit, and a
// Deliver that records each plugin's events.
type rig struct {
	t    *testing.T
	c    *Capability
	g    *gate.Gate
	logs *logtest.Log
	mq   *mosquitto.Broker
	env  map[string]string

	mu     sync.Mutex
	events map[string][]abi.Record
}

type rigOptions struct {
	user, password string // the broker's account
	broker         string // extra keys of [[mqtt.broker]]
	mqtt           string // extra keys of [mqtt]
	http           string // [http] section text (secrets)
	env            map[string]string
}

func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	mq := startBroker(t, o.user, o.password)
	logs, log := logtest.New(t)
	r := &rig{t: t, logs: logs, mq: mq, env: o.env, events: map[string][]abi.Record{}}
	r.c = New(Options{Getenv: func(k string) string { return r.env[k] }})
	h := httpout.New(httpout.Options{})
	text := fmt.Sprintf("[mqtt]\n%s\n[[mqtt.broker]]\nname = \"hub\"\nurl = %q\n%s\n%s", o.mqtt, mq.URL, o.broker, o.http)
	rt, err := manifest.ParseRuntime("runtime.toml", []byte(text), map[string]manifest.SectionFunc{Name: r.c.DecodeConfig, httpout.Name: h.DecodeConfig})
	if err != nil {
		t.Fatalf("runtime.toml: %v", err)
	}
	r.g = gate.New(log)
	t.Cleanup(r.g.Close)
	if err := r.c.Provision(context.Background(), capability.Env{Runtime: rt, Config: rt.Sections[Name], Logger: log, Gate: r.g}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.c.Close() })
	r.c.Start(context.Background(), func(plugin string, ev capability.Event) bool {
		rec, err := abi.DecodeRecord(ev.Payload)
		if err != nil || abi.EventKind(ev.Kind) != abi.EventMQTT {
			t.Errorf("event of kind %d: %v", ev.Kind, err)
		}
		r.mu.Lock()
		r.events[plugin] = append(r.events[plugin], rec)
		r.mu.Unlock()
		return true
	})
	r.waitConnected()
	return r
}

// plugin loads a plugin with grantTOML and triggerTOML as the host does:
// its manifest is parsed, then the capability is told its rules and grant.
func (r *rig) plugin(name, grantTOML, triggerTOML string) *capability.Caller {
	r.t.Helper()
	rt := manifest.DefaultRuntime()
	m, err := manifest.ParseManifest("plugin.toml", []byte("name = \""+name+"\"\nversion = \"1.0.0\"\n"+grantTOML+"\n"+triggerTOML), &rt,
		manifest.Schema{Grants: map[string]manifest.SectionFunc{Name: r.c.DecodeGrant}, Triggers: map[string]manifest.SectionFunc{Name: r.c.DecodeTrigger}})
	if err != nil {
		r.t.Fatalf("plugin.toml: %v", err)
	}
	capability.Subscribe(r.c, name, m)
	return &capability.Caller{Plugin: name, Grants: m.Grants, Log: r.c.log, Gate: r.g}
}

func (r *rig) waitConnected() {
	r.t.Helper()
	waitFor(r.t, "the broker connection", func() bool {
		_, err := r.c.brokers["hub"].available()
		return err == nil
	})
}

// publish publishes as cl with a handler deadline.
func (r *rig) publish(cl *capability.Caller, topic, payload string, qos byte, retain bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return r.c.Publish(ctx, cl, Message{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: retain})
}

// got returns the events plugin has received.
func (r *rig) got(plugin string) []abi.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]abi.Record(nil), r.events[plugin]...)
}

// waitEvent waits until plugin has an event with payload.
func (r *rig) waitEvent(plugin, payload string) abi.Record {
	r.t.Helper()
	var found abi.Record
	waitFor(r.t, plugin+" receiving "+payload, func() bool {
		for _, e := range r.got(plugin) {
			if v, _ := e.Get(fieldPayload); v == payload {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// outsider is a client of the broker that is not the host: a device on
// the network.
func (r *rig) outsider() paho.Client {
	r.t.Helper()
	o := paho.NewClientOptions().AddBroker(r.mq.URL).SetClientID(fmt.Sprintf("outsider-%d", time.Now().UnixNano()%1e6))
	if u := r.mqUser(); u != "" {
		o.SetUsername(u).SetPassword(r.mqPassword())
	}
	c := paho.NewClient(o)
	if t := c.Connect(); !t.WaitTimeout(20*time.Second) || t.Error() != nil {
		r.t.Fatalf("outsider connect: %v", t.Error())
	}
	r.t.Cleanup(func() { c.Disconnect(0) })
	return c
}

func (r *rig) mqUser() string     { return r.env["TEST_MQTT_USER"] }
func (r *rig) mqPassword() string { return r.env["TEST_MQTT_PASSWORD"] }

// startBroker is a mosquitto on loopback, with an account if user is set.
func startBroker(t *testing.T, user, password string) *mosquitto.Broker {
	t.Helper()
	return testenv.StartMosquitto(t, testenv.MosquittoOptions{User: user, Password: password})
}

// waitFor polls cond; only a real hang fails it.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 30s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func errnoOf(err error) abi.Errno { return capability.ErrnoOf(err) }

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

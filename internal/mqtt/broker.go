package mqtt

import (
	"crypto/tls"

	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/internal/httpout"
)

// broker is the host's one connection to a [[mqtt.broker]], shared by the
// plugins granted it. paho reconnects it; on each (re)connection the host
// subscribes again to every filter its plugins hold, so that delivery
// resumes whether or not the broker kept the session.
type broker struct {
	name   string
	client paho.Client // nil when down is set
	down   string      // why the broker is not connected at all

	mu     sync.Mutex
	have   map[string]byte // filters subscribed on the broker, with QoS
	want   map[string]byte // filters the plugins hold
	synced chan struct{}   // closed by a sync; for tests
}

// connect starts b's connection; paho retries it in the background until
// the broker answers.
func (c *Capability) connect(b Broker, password string) (*broker, error) {
	br := &broker{name: b.Name, have: map[string]byte{}, want: map[string]byte{}}
	u, useTLS := b.tlsURL()
	o := paho.NewClientOptions().AddBroker(u).
		SetClientID(b.ClientID).
		SetCleanSession(false).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(30 * time.Second).
		SetOrderMatters(true). // a newer QoS 0 value replaces an older one, never the reverse
		SetConnectTimeout(10 * time.Second)
	if b.ClientID == "" {
		o.SetClientID("airlock-" + b.Name)
	}
	if b.Username != "" {
		o.SetUsername(b.Username)
		o.SetPassword(password)
	}
	if useTLS {
		roots, err := httpout.LoadRoots(b.CAFile)
		if err != nil {
			return nil, err
		}
		o.SetTLSConfig(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
	}
	if b.WillTopic != "" {
		o.SetBinaryWill(b.WillTopic, []byte(b.WillPayload), b.WillQoS, b.WillRetain)
	}
	o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		c.route(b.Name, m.Topic(), m.Payload(), m.Qos(), m.Retained())
	})
	o.SetOnConnectHandler(func(paho.Client) {
		c.log.Info("mqtt broker connected", "broker", b.Name)
		br.mu.Lock()
		br.have = map[string]byte{} // subscribe again to all
		br.mu.Unlock()
		go br.resync()
	})
	o.SetConnectionLostHandler(func(_ paho.Client, err error) {
		// paho's error names the address, never the credentials.
		c.log.Warn("mqtt broker connection lost; reconnecting", "broker", b.Name, "error", err.Error())
	})
	br.client = paho.NewClient(o)
	br.client.Connect() // with SetConnectRetry, it retries until Disconnect
	return br, nil
}

// sync makes the broker's subscriptions want.
func (b *broker) sync(want map[string]byte) {
	b.mu.Lock()
	b.want = want
	b.mu.Unlock()
	b.resync()
}

// resync subscribes to what is wanted and not had, and unsubscribes from
// what is had and no longer wanted. It runs again on each reconnection.
func (b *broker) resync() {
	if b.client == nil || !b.client.IsConnectionOpen() {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for f, q := range b.want {
		if h, ok := b.have[f]; ok && h == q {
			continue
		}
		t := b.client.Subscribe(f, q, nil) // nil: the default handler routes it
		if t.WaitTimeout(10*time.Second) && t.Error() == nil {
			b.have[f] = q
		}
	}
	for f := range b.have {
		if _, ok := b.want[f]; !ok {
			if t := b.client.Unsubscribe(f); t.WaitTimeout(10*time.Second) && t.Error() == nil {
				delete(b.have, f)
			}
		}
	}
	if b.synced != nil {
		select {
		case <-b.synced:
		default:
			close(b.synced)
		}
	}
}

// subscribed returns the filters the broker has from the host now.
func (b *broker) subscribed() map[string]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]byte, len(b.have))
	for f, q := range b.have {
		out[f] = q
	}
	return out
}

// available returns the live client, or an abi.Unavailable error.
func (b *broker) available() (paho.Client, error) {
	switch {
	case b == nil:
		return nil, capability.Errorf(unavailable, "mqtt: the grant's broker is not declared in runtime.toml")
	case b.client == nil:
		return nil, capability.Errorf(unavailable, "mqtt: broker %q is not connected: %s", b.name, b.down)
	case !b.client.IsConnectionOpen():
		return nil, capability.Errorf(unavailable, "mqtt: broker %q is not connected now; the host reconnects, try again later", b.name)
	}
	return b.client, nil
}

func (b *broker) close() {
	if b.client != nil {
		b.client.Disconnect(250)
	}
}

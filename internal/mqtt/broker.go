package mqtt

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
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
		o.SetClientID(c.defaultClientID(b.Name))
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

// defaultClientID is the client id of a broker whose runtime.toml names
// none: "airlock-" and 15 hex digits of a hash of this device's identity
// and the broker's name (23 characters, MQTT 3.1.1's portable limit). A
// broker closes the older of two connections with one client id, so a
// fixed default ("airlock-hub") made every device of a fleet on a shared
// broker, or two simulated devices on one machine, take the connection
// from each other for ever. The id is stable across restarts of a real
// device (its session, with QoS 1 subscriptions, survives); a simulated
// device adds its process id, as two may run side by side.
func (c *Capability) defaultClientID(broker string) string {
	id := c.opts.Getenv("BALENA_DEVICE_UUID")
	if id == "" {
		if b, err := os.ReadFile("/etc/machine-id"); err == nil {
			id = strings.TrimSpace(string(b))
		}
	}
	if id == "" {
		id, _ = os.Hostname()
	}
	if c.onSim {
		id += "/sim/" + strconv.Itoa(os.Getpid())
	}
	sum := sha256.Sum256([]byte(id + "\x00" + broker))
	return "airlock-" + hex.EncodeToString(sum[:])[:15]
}

package mqtt

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"github.com/airlockhq/airlock/host/manifest"
)

// Config is runtime.toml's [mqtt] section.
type Config struct {
	Brokers map[string]Broker
	// MaxTopic bounds a topic or filter, in bytes.
	MaxTopic int
	// MaxPayload bounds a message a plugin publishes or is delivered; a
	// bigger incoming one is dropped, counted in the log.
	MaxPayload int
	// PublishRate and PublishBurst bound each plugin's publishes, as a
	// token bucket.
	PublishRate  float64
	PublishBurst int
	// MaxSubscriptions bounds a plugin's [[trigger.mqtt]] filters.
	MaxSubscriptions int
	// Timeout bounds a QoS 1 publish waiting for the broker's PUBACK; the
	// handler's deadline bounds it further.
	Timeout time.Duration
}

// Broker is one [[mqtt.broker]]: the host keeps one connection to it,
// shared by the plugins granted it.
type Broker struct {
	Name           string
	URL            string // tcp://, mqtt://, ssl://, tls:// or mqtts://
	TLS            bool
	CAFile         string
	Username       string
	PasswordSecret string // a secret of [http.secrets]
	ClientID       string
	WillTopic      string
	WillPayload    string
	WillQoS        byte
	WillRetain     bool
}

// Defaults of an absent [mqtt] section.
const (
	DefaultMaxTopic         = 256
	DefaultMaxPayload       = 256 << 10
	DefaultPublishRate      = 20
	DefaultPublishBurst     = 100
	DefaultMaxSubscriptions = 16
	DefaultTimeout          = 10 * time.Second
	maxPayloadCeiling       = 1 << 20 // capability.MaxResult: an event must fit
)

// DefaultConfig is what an absent [mqtt] section means: no broker.
func DefaultConfig() Config {
	return Config{Brokers: map[string]Broker{}, MaxTopic: DefaultMaxTopic, MaxPayload: DefaultMaxPayload,
		PublishRate: DefaultPublishRate, PublishBurst: DefaultPublishBurst,
		MaxSubscriptions: DefaultMaxSubscriptions, Timeout: DefaultTimeout}
}

type configTOML struct {
	Broker           []brokerTOML      `toml:"broker"`
	MaxTopic         int               `toml:"max_topic"`
	MaxPayload       manifest.Size     `toml:"max_payload"`
	PublishRate      float64           `toml:"publish_rate"`
	PublishBurst     int               `toml:"publish_burst"`
	MaxSubscriptions int               `toml:"max_subscriptions"`
	Timeout          manifest.Duration `toml:"timeout"`
}

type brokerTOML struct {
	Name           string `toml:"name"`
	URL            string `toml:"url"`
	TLS            bool   `toml:"tls"`
	CAFile         string `toml:"ca_file"`
	Username       string `toml:"username"`
	PasswordSecret string `toml:"password_secret"`
	ClientID       string `toml:"client_id"`
	WillTopic      string `toml:"will_topic"`
	WillPayload    string `toml:"will_payload"`
	WillQoS        int    `toml:"will_qos"`
	WillRetain     bool   `toml:"will_retain"`
}

var (
	errBadConfig = errors.New("bad [mqtt] section")
	brokerName   = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)
	clientID     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,23}$`) // MQTT 3.1.1 §3.1.3.1: what every broker takes
)

func decodeConfig(s manifest.Section) (*Config, error) {
	var t configTOML
	if !s.Decode(&t) {
		return nil, errBadConfig
	}
	c := DefaultConfig()
	ok := true
	bad := func(key, hint, format string, args ...any) {
		ok = false
		s.Errorf(key, hint, format, args...)
	}
	if t.MaxTopic != 0 {
		if t.MaxTopic < 1 || t.MaxTopic > 65535 {
			bad("max_topic", "MQTT topics are at most 65535 bytes", "max_topic = %d is outside 1..65535", t.MaxTopic)
		}
		c.MaxTopic = t.MaxTopic
	}
	if t.MaxPayload > 0 {
		if t.MaxPayload > maxPayloadCeiling {
			bad("max_payload", "a message is delivered to a plugin as one event, at most 1MiB", "max_payload = %s is over 1MiB", t.MaxPayload)
		}
		c.MaxPayload = int(t.MaxPayload)
	}
	if t.PublishRate < 0 || t.PublishBurst < 0 || t.MaxSubscriptions < 0 {
		bad("publish_rate", "write positive numbers", "publish_rate, publish_burst and max_subscriptions may not be negative")
	}
	if t.PublishRate > 0 {
		c.PublishRate = t.PublishRate
	}
	if t.PublishBurst > 0 {
		c.PublishBurst = t.PublishBurst
	}
	if t.MaxSubscriptions > 0 {
		c.MaxSubscriptions = t.MaxSubscriptions
	}
	if t.Timeout > 0 {
		c.Timeout = t.Timeout.D()
	}
	for i, b := range t.Broker {
		key := fmt.Sprintf("broker[%d]", i)
		if !brokerName.MatchString(b.Name) {
			bad(key+".name", `name it with lower-case letters, digits, '-' and '_', such as "hub"`, "broker name %q is not a name", b.Name)
		} else if _, dup := c.Brokers[b.Name]; dup {
			bad(key+".name", "give each [[mqtt.broker]] its own name", "broker %q is declared twice", b.Name)
		}
		if why := checkBrokerURL(b.URL); why != "" {
			bad(key+".url", `write a URL such as "tcp://hub.local:1883" or "mqtts://broker.example.com:8883"`, "broker %q: %s", b.Name, why)
		}
		if b.ClientID != "" && !clientID.MatchString(b.ClientID) {
			bad(key+".client_id", "1 to 23 letters, digits, '-' and '_' (MQTT 3.1.1's portable client id)", "client_id %q is not one", b.ClientID)
		}
		if b.PasswordSecret != "" && b.Username == "" {
			bad(key+".password_secret", "set username too", "broker %q has a password but no username", b.Name)
		}
		if b.WillTopic != "" {
			if why := checkTopic(b.WillTopic, c.MaxTopic); why != "" {
				bad(key+".will_topic", "name a topic without wildcards", "broker %q: %s", b.Name, why)
			}
		}
		if b.WillQoS != 0 && b.WillQoS != 1 {
			bad(key+".will_qos", "0 or 1", "will_qos = %d", b.WillQoS)
		}
		c.Brokers[b.Name] = Broker{Name: b.Name, URL: b.URL, TLS: b.TLS, CAFile: b.CAFile, Username: b.Username,
			PasswordSecret: b.PasswordSecret, ClientID: b.ClientID, WillTopic: b.WillTopic,
			WillPayload: b.WillPayload, WillQoS: byte(b.WillQoS), WillRetain: b.WillRetain}
	}
	if !ok {
		return nil, errBadConfig
	}
	return &c, nil
}

// checkBrokerURL says what is wrong with a broker URL, or "".
func checkBrokerURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case s == "":
		return "url is missing"
	case err != nil:
		return err.Error()
	case u.User != nil:
		return "the URL holds credentials; write username and password_secret instead, so that the password stays a host-held secret"
	case u.Hostname() == "" || u.Port() == "":
		return "the URL needs a host and a port"
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts":
		return ""
	}
	return fmt.Sprintf("scheme %q is not one of tcp, mqtt, ssl, tls, mqtts", u.Scheme)
}

// tlsURL reports whether b is reached over TLS, and its URL as paho takes
// it.
func (b Broker) tlsURL() (string, bool) {
	u, _ := url.Parse(b.URL)
	switch u.Scheme {
	case "ssl", "tls", "mqtts":
		return b.URL, true
	}
	if b.TLS {
		u.Scheme = "ssl"
		return u.String(), true
	}
	return b.URL, false
}

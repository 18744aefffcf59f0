package dbus

import (
	"errors"
	"os"
	"strings"
	"time"

	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/manifest"
)

// Config is runtime.toml's [dbus] section.
type Config struct {
	// Address is the bus address. "" means DBUS_SYSTEM_BUS_ADDRESS, else the
	// first of DefaultAddresses whose socket exists (else the first).
	Address string
	// CallTimeout bounds one call; the handler's deadline bounds it further.
	CallTimeout time.Duration
	// MaxReply bounds an encoded reply or signal body delivered to a guest.
	MaxReply int
	// MaxMatchRules bounds the match rules the host's connection holds for
	// all plugins together; a plugin whose rules would pass it gets none.
	MaxMatchRules int
}

// DefaultAddresses are where balena's io.balena.features.dbus label puts
// the host's system bus: the current path, then the older one.
var DefaultAddresses = []string{"unix:path=/host/run/dbus/system_bus_socket", "unix:path=/host_run/dbus/system_bus_socket"}

// defaultMaxMatchRules leaves half of dbus-daemon's default
// max_match_rules_per_connection (512) unused, for the daemon's own
// accounting and for a bus configured tighter.
const defaultMaxMatchRules = 256

// DefaultConfig is what an absent [dbus] section means. 25s is D-Bus's own
// default reply timeout.
func DefaultConfig() Config {
	return Config{CallTimeout: 25 * time.Second, MaxReply: capability.MaxResult, MaxMatchRules: defaultMaxMatchRules}
}

type configTOML struct {
	Address     string            `toml:"address"`
	CallTimeout manifest.Duration `toml:"call_timeout"`
	MaxReply    manifest.Size     `toml:"max_reply"`
	MaxMatch    int               `toml:"max_match_rules"`
}

var errBadConfig = errors.New("bad [dbus] section")

func decodeConfig(s manifest.Section) (*Config, error) {
	var t configTOML
	if !s.Decode(&t) {
		return nil, errBadConfig
	}
	c := DefaultConfig()
	ok := true
	if t.Address != "" {
		if !strings.Contains(t.Address, ":") {
			ok = false
			s.Errorf("address", `write a D-Bus address such as "unix:path=/host/run/dbus/system_bus_socket"`, "%q is not a D-Bus address", t.Address)
		}
		c.Address = t.Address
	}
	if t.CallTimeout > 0 {
		c.CallTimeout = t.CallTimeout.D()
	}
	if t.MaxReply > 0 {
		if t.MaxReply > capability.MaxResult {
			ok = false
			s.Errorf("max_reply", "a result crosses the ABI in at most 1MiB", "max_reply = %s is over 1MiB", t.MaxReply)
		}
		c.MaxReply = int(t.MaxReply)
	}
	if t.MaxMatch < 0 || t.MaxMatch > 512 {
		ok = false
		s.Errorf("max_match_rules", "dbus-daemon allows a connection 512 match rules by default; stay at or below that", "max_match_rules = %d is outside 1..512", t.MaxMatch)
	} else if t.MaxMatch > 0 {
		c.MaxMatchRules = t.MaxMatch
	}
	if !ok {
		return nil, errBadConfig
	}
	return &c, nil
}

// address resolves the bus address to dial.
func (c Config) address() string {
	if c.Address != "" {
		return c.Address
	}
	if a := os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"); a != "" {
		return a
	}
	for _, a := range DefaultAddresses {
		if _, err := os.Stat(strings.TrimPrefix(a, "unix:path=")); err == nil {
			return a
		}
	}
	return DefaultAddresses[0]
}

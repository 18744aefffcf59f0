package testenv

import (
	"errors"
	"testing"

	"github.com/airlockhq/airlock/internal/mqtt/mosquitto"
)

// MosquittoOptions configure StartMosquitto.
type MosquittoOptions struct {
	// User and Password, when set, are the broker's one account, and
	// anonymous clients are refused.
	User, Password string
	// Addr is the address to listen on; "" is a free port on 127.0.0.1.
	Addr string
}

// StartMosquitto starts an MQTT broker, Debian's mosquitto, on loopback
// with a private config (package internal/mqtt/mosquitto), stopped when the test
// ends. Without mosquitto the test is skipped, or fails under
// AIRLOCK_TEST_STRICT=1. .ci/run installs it.
func StartMosquitto(t testing.TB, o MosquittoOptions) *mosquitto.Broker {
	t.Helper()
	if o.Addr == "" {
		o.Addr = FreeLoopbackAddr(t)
	}
	b, err := mosquitto.Start(mosquitto.Options{Dir: t.TempDir(), Addr: o.Addr, User: o.User, Password: o.Password})
	if errors.Is(err, mosquitto.ErrMissing) {
		Missing(t, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	return b
}

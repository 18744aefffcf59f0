package mqtt

import (
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/airlockhq/airlock/internal/mqtt/mosquitto"
	"github.com/airlockhq/airlock/internal/secret"
)

// startSim gives the simulated device its brokers: each [[mqtt.broker]] on
// a loopback address where nothing listens yet gets a mosquitto there
// (package mosquitto), with its username and password if it has them.
// Without mosquitto the device runs on without a broker, and says so:
// publishes get abi.Unavailable.
func (c *Capability) startSim(stateDir string, declared map[string]secret.Source) {
	for _, b := range c.cfg.Brokers {
		u, err := url.Parse(b.URL)
		if _, useTLS := b.tlsURL(); err != nil || useTLS || (u.Hostname() != "127.0.0.1" && u.Hostname() != "localhost") {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", u.Port())
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			continue // a broker of the developer's is there
		}
		o := mosquitto.Options{Dir: filepath.Join(stateDir, "sim-mqtt", b.Name), Addr: addr}
		if b.PasswordSecret != "" {
			if src, ok := declared[b.PasswordSecret]; ok {
				if pw, err := secret.Load(b.PasswordSecret, src, c.opts.Getenv, ""); err == nil {
					o.User, o.Password = b.Username, pw
				}
			}
		}
		if err := os.MkdirAll(o.Dir, 0o700); err != nil {
			c.log.Warn("simulated MQTT broker not started", "broker", b.Name, "error", err.Error())
			continue
		}
		lb, err := mosquitto.Start(o)
		switch {
		case errors.Is(err, mosquitto.ErrMissing):
			c.log.Info("simulated MQTT broker not started: mosquitto is not installed (apt-get install mosquitto); MQTT publishes will be unavailable", "broker", b.Name)
		case err != nil:
			c.log.Warn("simulated MQTT broker not started; MQTT publishes will be unavailable", "broker", b.Name, "error", err.Error())
		default:
			c.log.Info("simulated MQTT broker started", "broker", b.Name, "url", lb.URL)
			c.sim = append(c.sim, lb)
		}
	}
}

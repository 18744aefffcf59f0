package mqtt

import (
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/airlockhq/airlock/internal/mqtt/mosquitto"
)

// For the end-to-end test, which is package mqtt_test: it runs a host,
// and the host imports this package.

func StartBroker(t *testing.T) *mosquitto.Broker { return startBroker(t, "", "") }

// Outside is a rig without the capability: only the outside clients.
func Outside(t *testing.T, mq *mosquitto.Broker) *rig { return &rig{t: t, mq: mq} }

func (r *rig) Listen(filter string) func() []string { return r.listen(filter) }
func (r *rig) Outsider() paho.Client                { return r.outsider() }

var (
	WaitFor  = waitFor
	Contains = contains
)

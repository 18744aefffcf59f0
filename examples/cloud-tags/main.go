// Command cloud-tags shows the cloud capability: on start it logs this
// device's name and tags as the balena cloud has them, then records the
// start time in the tag "airlock.started". The host makes each request with
// its own key; the plugin names no device and holds no key.
package main

import (
	"time"

	airlock "github.com/airlockhq/airlock/sdk/go"
	"github.com/airlockhq/airlock/sdk/go/cloud"
)

func init() {
	airlock.OnStart(func() error {
		dev, err := cloud.ReadDevice()
		if err != nil {
			// Unavailable without the io.balena.features.balena-api label.
			airlock.Warn("cannot read the device from the cloud", "error", err)
			return nil
		}
		tags, err := cloud.Tags()
		if err != nil {
			airlock.Warn("cannot read the device's tags", "error", err)
			return nil
		}
		args := []any{"name", dev.Name, "uuid", dev.UUID}
		for _, t := range tags {
			args = append(args, "tag."+t.Key, string(t.Value))
		}
		airlock.Info("cloud device", args...)
		if err := cloud.SetTag("airlock.started", time.Now().UTC().Format(time.RFC3339)); err != nil {
			airlock.Warn("cannot tag the device", "error", err)
		}
		return nil
	})
}

func main() {}
